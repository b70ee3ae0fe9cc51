-- Per prepull target: counted nodes, how many have it, how many lack it.
SELECT tag, display_name, eligible_nodes, present_nodes, missing_nodes, prepulled
FROM dashboard.prepull_status
ORDER BY registry, repository, display_position
