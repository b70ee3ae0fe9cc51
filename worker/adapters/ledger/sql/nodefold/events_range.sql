-- The fold's events for a replay: the node and prepull events (types) of the position
-- range (after, upto] of the log whose node falls in hash partition number partition
-- of partitions.
ev AS (
    SELECT e.position, e.type, e.data, e.occurred_at AS at
    FROM ledger.events e
    WHERE e.position > :after AND e.position <= :upto AND e.type = ANY(CAST(:types AS text[]))
        AND (hashtext(e.data ->> 'node') & 2147483647) % :partitions = :partition
)
