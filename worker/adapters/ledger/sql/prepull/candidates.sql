-- The pairs without pending state that a plan may request, within prepull.request_window:
-- per node its first (cap - busy) in target order, then the first `total` in (target, node)
-- order. Targets held everywhere are left out by the caller: nothing to request there.
WITH target AS (
    SELECT t.digest, t.ord
    FROM unnest(CAST(:digests AS text[])) WITH ORDINALITY AS t(digest, ord)
),
room AS (
    SELECT n.node, CAST(:per_node AS integer) - coalesce(b.busy, 0) AS room
    FROM ledger.nodes n
    LEFT JOIN unnest(CAST(:busy_nodes AS text[]), CAST(:busy_counts AS integer[])) AS b(node, busy)
        ON b.node = n.node
    WHERE n.eligible AND n.gone_at IS NULL AND CAST(:per_node AS integer) > coalesce(b.busy, 0)
),
missing AS (
    SELECT r.node, t.digest, t.ord,
           row_number() OVER (PARTITION BY r.node ORDER BY t.ord) AS k, r.room
    FROM target t CROSS JOIN room r
    WHERE NOT EXISTS (
        SELECT 1 FROM ledger.node_images ni
        WHERE ni.node = r.node AND ni.digest = t.digest
          AND (ni.present OR ni.prepull_state IN ('requested', 'failed', 'parked'))
    )
)
SELECT m.node, m.digest, false, ni.prepull_state, coalesce(ni.prepull_requests, 0),
       coalesce(ni.prepull_failures, 0), ni.prepull_deadline, ni.prepull_finished_at,
       ni.registry, ni.repository, ni.tag, ni.prepull_reason
FROM missing m
LEFT JOIN ledger.node_images ni ON ni.node = m.node AND ni.digest = m.digest
WHERE m.k <= m.room
ORDER BY m.ord, m.node
LIMIT :total
