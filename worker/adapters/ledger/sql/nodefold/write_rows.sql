-- Write a CTE of new rows (a value for every column, and the old row's id) into a table.
-- The old rows were read by the same statement, with their row ids, under the append
-- lock: new rows are plain inserts (no speculative insertion) and old ones are updated
-- by row id (no second key lookup, no join to plan, no tuple lock as with ON CONFLICT).
{{inserted}} AS (
    INSERT INTO {{table}} ({{columns}})
    SELECT {{columns}} FROM {{rows}} WHERE row_id IS NULL{{returning}}
),
{{updated}} AS (
    UPDATE {{table}} t SET {{assignments}}
    FROM {{rows}} n WHERE t.ctid = n.row_id{{returning}}
)
