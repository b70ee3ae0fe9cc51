-- How image_presence moves (an append): the difference of (eligible, current node) x
-- (present) over every pair the events touch, and every image of a node that comes or
-- goes, from the rows before (the tables) and after (new_nodes, new_images). Ends in
-- delta (digest, change).
life_images AS (
    SELECT ni.node, ni.digest, ni.present FROM (SELECT DISTINCT node FROM life) l
    CROSS JOIN LATERAL (
        SELECT ni.node, ni.digest, ni.present FROM ledger.node_images ni
        WHERE ni.node = l.node
        OFFSET 0  -- an index range per node that comes or goes
    ) ni
),
contributions AS (
    SELECT o.digest, -1 AS change
    FROM (
        SELECT node, digest, present FROM old_images
        UNION ALL
        SELECT li.node, li.digest, li.present FROM life_images li
        WHERE NOT EXISTS (
            SELECT 1 FROM image_keys k WHERE k.node = li.node AND k.digest = li.digest
        )
    ) o
    WHERE o.present AND EXISTS (
        SELECT 1 FROM ledger.nodes n
        WHERE n.node = o.node AND n.eligible AND n.gone_at IS NULL
        OFFSET 0  -- one index probe per row, never a scan of every node
    )
    UNION ALL
    SELECT ni.digest, 1
    FROM new_images ni
    LEFT JOIN new_nodes nn ON nn.node = ni.node
    LEFT JOIN LATERAL (
        SELECT n.eligible, n.gone_at FROM ledger.nodes n WHERE n.node = ni.node
        OFFSET 0  -- as above
    ) n ON true
    WHERE ni.present AND CASE WHEN nn.node IS NOT NULL THEN nn.eligible AND nn.gone_at IS NULL
                              ELSE coalesce(n.eligible AND n.gone_at IS NULL, false) END
    UNION ALL
    SELECT li.digest, 1
    FROM life_images li JOIN new_nodes nn ON nn.node = li.node
    WHERE li.present AND nn.eligible AND nn.gone_at IS NULL
        AND NOT EXISTS (
            SELECT 1 FROM image_keys k WHERE k.node = li.node AND k.digest = li.digest
        )
),
delta AS (SELECT digest, sum(change) AS change FROM contributions GROUP BY digest)
