-- Per prepull target: the counts of dashboard.prepull_status, and how long the counted node
-- that has waited longest has lacked it, since the later of the digest's first sighting (else
-- the tag's) and the node's: the earliest-seen node that lacks it (only where one does). The
-- age is clamped at 0 (times come from the events).
WITH counted AS (
    SELECT n.node, n.first_seen_at FROM ledger.nodes n WHERE n.eligible AND n.gone_at IS NULL
),
targets AS (
    SELECT
        t.registry, t.repository, t.tag, t.digest,
        coalesce(
            (SELECT min(h.valid_from) FROM ledger.tag_history h
             WHERE h.digest = t.digest AND h.registry = t.registry
               AND h.repository = t.repository),
            (SELECT min(h.valid_from) FROM ledger.tag_history h
             WHERE h.tag = t.tag AND h.registry = t.registry AND h.repository = t.repository)
        ) AS first_seen_at
    FROM ledger.prepull_targets t
    WHERE t.registry = :registry AND t.repository = :repository
)
SELECT
    s.registry, s.repository, s.tag, s.eligible_nodes, s.present_nodes, s.missing_nodes,
    coalesce((
        SELECT extract(epoch FROM now() - greatest(x.first_seen_at, c.first_seen_at))
        FROM counted c
        WHERE s.missing_nodes > 0 AND NOT EXISTS (
            SELECT 1 FROM ledger.node_images ni
            WHERE ni.node = c.node AND ni.digest = x.digest AND ni.present
        )
        ORDER BY c.first_seen_at
        LIMIT 1
    ), 0) AS oldest_missing_age_seconds
FROM dashboard.prepull_status s
JOIN targets x ON x.registry = s.registry AND x.repository = s.repository AND x.tag = s.tag
ORDER BY s.display_position, s.tag
