-- The CTEs of an append, ending in appended: the events given as one array per column
-- (parameters named after the columns), those whose idempotency keys the log lacks (under
-- the append lock the check is exact, so the insert needs no ON CONFLICT: speculative
-- insertion costs a fifth of it), inserted at the next positions in the order given.
input AS (
    SELECT * FROM unnest({{arrays}})
        WITH ORDINALITY AS i({{columns}}, ord)
),
fresh AS (
    SELECT i.* FROM input i
    WHERE NOT EXISTS (
        SELECT 1 FROM ledger.events e WHERE e.idempotency_key = i.idempotency_key
        OFFSET 0  -- one index probe per event, never a scan of the log
    )
),
head AS ({{head}}),
appended AS (
    INSERT INTO ledger.events (position, {{columns}})
    SELECT head.position + row_number() OVER (ORDER BY fresh.ord), {{fresh_columns}}
    FROM fresh CROSS JOIN head
    ORDER BY fresh.ord
    RETURNING position, type, data, occurred_at, recorded_at, idempotency_key
)
