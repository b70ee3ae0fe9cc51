-- dashboard.image_rollout v1: from first seen in the registry to present on every eligible node.
CREATE VIEW dashboard.image_rollout AS
WITH counted AS (
    SELECT count(*)::integer AS nodes FROM ledger.nodes n WHERE n.eligible AND n.gone_at IS NULL
),
targets AS (
    SELECT
        t.registry,
        t.repository,
        t.tag,
        t.digest,
        t.digest IS NOT NULL AND coalesce(p.eligible_nodes, 0) >= c.nodes AS prepulled,
        (
            SELECT min(h.valid_from)
            FROM ledger.tag_history h
            WHERE h.digest = t.digest AND h.registry = t.registry AND h.repository = t.repository
        ) AS first_seen_at
    FROM ledger.prepull_targets t
    CROSS JOIN counted c
    LEFT JOIN ledger.image_presence p ON p.digest = t.digest
    WHERE t.pull
)
SELECT
    x.registry,
    x.repository,
    x.tag,
    x.digest,
    x.first_seen_at,
    x.prepulled,
    d.completed_at,
    d.completed_at - x.first_seen_at AS time_to_prepull
FROM targets x
LEFT JOIN LATERAL (
    SELECT max(ni.present_since) AS completed_at
    FROM ledger.node_images ni
    JOIN ledger.nodes n ON n.node = ni.node AND n.eligible AND n.gone_at IS NULL
    WHERE x.prepulled AND ni.digest = x.digest AND ni.present
) d ON true;
