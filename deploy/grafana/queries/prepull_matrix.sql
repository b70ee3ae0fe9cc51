-- The prepull matrix, long form: per target image (one pulled image per digest) and counted
-- node, the pair's state: present, or its prepull_queue status (pending, in_flight, failed,
-- parked). Only the 200 nodes worst off (a parked pair first, then failed, in flight,
-- pending; then the most images missing) are shown; Grafana pivots the rows into a matrix.
WITH lacking AS (
    SELECT node, tag, status,
        CASE status WHEN 'parked' THEN 4 WHEN 'failed' THEN 3 WHEN 'in_flight' THEN 2 ELSE 1 END
            AS severity
    FROM dashboard.prepull_queue
),
worst AS (
    SELECT node, max(severity) AS severity, count(*) AS missing
    FROM lacking
    GROUP BY node
    ORDER BY max(severity) DESC, count(*) DESC, node
    LIMIT 200
)
SELECT w.node, t.tag, coalesce(l.status, 'present') AS state
FROM worst AS w
CROSS JOIN dashboard.prepull_targets AS t
LEFT JOIN lacking AS l ON l.node = w.node AND l.tag = t.tag
WHERE t.pull AND t.digest IS NOT NULL
ORDER BY w.severity DESC, w.missing DESC, w.node, t.registry, t.repository, t.display_position
