-- The fold's events for a replay: the node and prepull events (types) of the position
-- range (after, upto] of the log whose node falls in hash partition number partition
-- of partitions, each at the time the fold counts it (at): its observation, but no later
-- than its recording plus fold_skew (worker.domain.ledger.as_folded).
ev AS (
    SELECT e.position, e.type, e.data,
           least(e.occurred_at, e.recorded_at + CAST(:fold_skew AS interval)) AS at
    FROM ledger.events e
    WHERE e.position > :after AND e.position <= :upto AND e.type = ANY(CAST(:types AS text[]))
        AND (hashtext(e.data ->> 'node') & 2147483647) % :partitions = :partition
)
