-- dashboard.prepull_status v1: per prepull target, eligible nodes that have it and lack it.
CREATE VIEW dashboard.prepull_status AS
WITH counted AS (
    SELECT count(*)::integer AS nodes FROM ledger.nodes n WHERE n.eligible AND n.gone_at IS NULL
)
SELECT
    t.registry,
    t.repository,
    t.tag,
    t.digest,
    t.display_name,
    t.position AS display_position,
    c.nodes AS eligible_nodes,
    coalesce(p.eligible_nodes, 0) AS present_nodes,
    CASE WHEN t.digest IS NULL THEN c.nodes ELSE c.nodes - coalesce(p.eligible_nodes, 0) END
        AS missing_nodes,
    t.digest IS NOT NULL AND coalesce(p.eligible_nodes, 0) >= c.nodes AS prepulled
FROM ledger.prepull_targets t
CROSS JOIN counted c
LEFT JOIN ledger.image_presence p ON p.digest = t.digest;
