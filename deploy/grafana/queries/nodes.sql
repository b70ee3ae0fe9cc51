-- Every node: eligibility and why not, the targets it lacks, its kubelet list. Ineligible
-- nodes first, then eligible, then those gone.
SELECT
    n.node,
    n.eligible,
    n.current,
    n.comment,
    coalesce(q.missing, 0) AS missing_targets,
    n.image_count,
    n.truncated,
    n.last_inventory_at,
    n.gone_at
FROM dashboard.nodes AS n
LEFT JOIN (
    SELECT node, count(*) AS missing FROM dashboard.prepull_queue GROUP BY node
) AS q ON q.node = n.node
ORDER BY NOT n.current, n.eligible, n.node
