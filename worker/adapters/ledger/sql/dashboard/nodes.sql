-- Per current node: eligibility (and why not) and the target images it still lacks,
-- with their prepull state.
SELECT n.node, n.eligible, n.comment AS reason,
       count(q.tag) AS missing_count,
       coalesce(
           array_agg(
               q.tag || CASE WHEN q.status = 'pending' THEN '' ELSE ' (' || q.status || ')' END
               ORDER BY q.display_position, q.tag
           ) FILTER (WHERE q.tag IS NOT NULL),
           '{}'
       ) AS missing
FROM dashboard.nodes n
LEFT JOIN dashboard.prepull_queue q ON q.node = n.node
WHERE n.current
GROUP BY n.node, n.eligible, n.comment
ORDER BY n.node
