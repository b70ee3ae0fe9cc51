-- dashboard.image_for_tag(tag) v1: the image a tag names now, per repository holding it.
CREATE FUNCTION dashboard.image_for_tag(p_tag text)
RETURNS TABLE (
    registry text,
    repository text,
    tag text,
    digest text,
    display_name text,
    image_type text,
    alias_target text,
    aliases text[],
    reference text,
    reference_with_digest text,
    prepulled boolean,
    flagged boolean
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH counted AS (
        SELECT count(*)::integer AS nodes
        FROM ledger.nodes n
        WHERE n.eligible AND n.gone_at IS NULL
    )
    SELECT
        t.registry,
        t.repository,
        t.tag,
        t.digest,
        t.display_name,
        t.image_type,
        t.alias_target,
        t.aliases,
        t.registry || '/' || t.repository || ':' || t.tag,
        CASE WHEN t.digest IS NOT NULL
            THEN t.registry || '/' || t.repository || ':' || t.tag || '@' || t.digest
        END,
        t.digest IS NOT NULL AND coalesce(p.eligible_nodes, 0) >= c.nodes,
        t.flagged
    FROM dashboard.tags t
    CROSS JOIN counted c
    LEFT JOIN ledger.image_presence p ON p.digest = t.digest
    WHERE t.tag = p_tag
    ORDER BY t.registry, t.repository
$$;
