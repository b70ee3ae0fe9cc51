-- The fold of nodes: each node's newest applied node.seen / node.gone (by observation
-- time, ties to the later arrival) gives its labels, taints and eligibility; inventory
-- bookkeeping keeps the newest list's truncation and size. Reads the CTE ev; ends in
-- new_nodes, one row per node the events touch, with the old row's id (row_id) and a
-- value for every column of ledger.nodes: the column's fold rule.
life AS (
    SELECT (ev.data ->> 'node') COLLATE "C" AS node, ev.position, ev.at,
           ev.type = 'node.gone' AS gone,
           ev.data -> 'labels' AS labels, ev.data -> 'taints' AS taints,
           (ev.data ->> 'eligible')::boolean AS eligible, ev.data ->> 'comment' AS comment
    FROM ev WHERE ev.type IN ('node.seen', 'node.gone')
),
inv AS (
    SELECT (ev.data ->> 'node') COLLATE "C" AS node, ev.position, ev.at,
           (ev.data ->> 'truncated')::boolean AS truncated,
           (ev.data ->> 'image_count')::integer AS image_count
    FROM ev WHERE ev.type = 'node.inventory_observed'
),
node_keys AS (
    SELECT x.node, min(x.at) AS first_at
    FROM (SELECT node, at FROM life UNION ALL SELECT node, at FROM inv) x
    GROUP BY x.node
),
old_nodes AS ({{old_nodes}}),
life_ranked AS (
    SELECT l.*, l.at >= coalesce(greatest(o.seen_at, max(l.at) OVER w), '-infinity') AS applied
    FROM life l LEFT JOIN old_nodes o ON o.node = l.node
    WINDOW w AS (PARTITION BY l.node ORDER BY l.position
                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
last_life AS (
    SELECT DISTINCT ON (node) node, at, gone
    FROM life_ranked WHERE applied ORDER BY node, position DESC
),
last_seen AS (
    SELECT DISTINCT ON (node) node, labels, taints, eligible, comment
    FROM life_ranked WHERE applied AND NOT gone ORDER BY node, position DESC
),
inv_ranked AS (
    SELECT i.*,
           i.at >= coalesce(greatest(o.last_inventory_at, max(i.at) OVER w), '-infinity')
               AS applied
    FROM inv i LEFT JOIN old_nodes o ON o.node = i.node
    WINDOW w AS (PARTITION BY i.node ORDER BY i.position
                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
last_inv AS (
    SELECT DISTINCT ON (node) node, truncated, image_count
    FROM inv_ranked WHERE applied ORDER BY node, position DESC
),
inv_times AS (
    SELECT node, max(at) AS last_at, max(at) FILTER (WHERE NOT truncated) AS complete_at
    FROM inv GROUP BY node
),
new_nodes AS (
    SELECT k.node, o.row_id,
        least(o.first_seen_at, k.first_at) AS first_seen_at,
        coalesce(s.labels, o.labels, '{}'::jsonb) AS labels,
        coalesce(s.taints, o.taints, '[]'::jsonb) AS taints,
        coalesce(s.eligible, o.eligible, false) AS eligible,
        CASE WHEN s.node IS NOT NULL THEN s.comment ELSE o.comment END AS comment,
        coalesce(ll.at, o.seen_at) AS seen_at,
        CASE WHEN ll.node IS NULL THEN o.gone_at WHEN ll.gone THEN ll.at END AS gone_at,
        greatest(o.last_inventory_at, it.last_at) AS last_inventory_at,
        greatest(o.last_complete_at, it.complete_at) AS last_complete_at,
        CASE WHEN li.node IS NOT NULL THEN li.truncated ELSE o.truncated END AS truncated,
        CASE WHEN li.node IS NOT NULL THEN li.image_count ELSE o.image_count END AS image_count
    FROM node_keys k
    LEFT JOIN old_nodes o ON o.node = k.node
    LEFT JOIN last_seen s ON s.node = k.node
    LEFT JOIN last_life ll ON ll.node = k.node
    LEFT JOIN last_inv li ON li.node = k.node
    LEFT JOIN inv_times it ON it.node = k.node
)
