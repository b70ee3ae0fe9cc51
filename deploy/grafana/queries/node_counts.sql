-- Nodes by standing: counted (eligible and present), ineligible, gone, truncated lists.
SELECT
    count(*) FILTER (WHERE counted) AS eligible,
    count(*) FILTER (WHERE current AND NOT eligible) AS ineligible,
    count(*) FILTER (WHERE NOT current) AS gone,
    count(*) FILTER (WHERE counted AND truncated) AS truncated_lists
FROM dashboard.nodes
