-- dashboard.tags v1: the tags a repository holds now, with derived columns and aliases.
CREATE VIEW dashboard.tags AS
WITH latest_refresh AS (
    SELECT DISTINCT ON (r.registry, r.repository) r.registry, r.repository, r.flagged_tags
    FROM ledger.refreshes r
    WHERE r.status = 'completed'
    ORDER BY r.registry, r.repository, r.finished_at DESC, r.refresh_id DESC
)
SELECT
    t.registry,
    t.repository,
    t.tag,
    t.digest,
    coalesce(i.image_type, t.image_type) AS image_type,
    coalesce(i.display_name, t.display_name) AS display_name,
    coalesce(i.type_rank, t.type_rank) AS type_rank,
    i.position AS display_position,
    t.sort_text,
    t.image_type AS parsed_type,
    t.version,
    t.cycle,
    t.cycle_build,
    t.build,
    t.extra,
    t.architecture,
    t.tag_date,
    i.alias_target,
    coalesce(i.aliases, ARRAY[]::text[]) AS aliases,
    t.first_seen_at,
    t.changed_at,
    coalesce(t.tag = ANY (lr.flagged_tags), false) AS flagged
FROM ledger.tags t
LEFT JOIN ledger.images i
    ON i.registry = t.registry AND i.repository = t.repository AND i.tag = t.tag
LEFT JOIN latest_refresh lr
    ON lr.registry = t.registry AND lr.repository = t.repository
WHERE t.removed_at IS NULL;
