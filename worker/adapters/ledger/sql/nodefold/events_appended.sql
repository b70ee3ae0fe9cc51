-- The fold's events for an append: the node and prepull events among those the same
-- statement inserts (the CTE appended), so they are not read back from the log, each at
-- the time the fold counts it (at): its observation, but no later than its recording plus
-- fold_skew (worker.domain.ledger.as_folded).
ev AS (
    SELECT a.position, a.type, a.data,
           least(a.occurred_at, a.recorded_at + CAST(:fold_skew AS interval)) AS at
    FROM appended a WHERE a.type IN ({{node_event_types}})
)
