-- The fold's events for an append: the node and prepull events among those the same
-- statement inserts (the CTE appended), so they are not read back from the log.
ev AS (
    SELECT a.position, a.type, a.data, a.occurred_at AS at
    FROM appended a WHERE a.type IN ({{node_event_types}})
)
