-- The stored rows of a table for the keys in a CTE, with their row ids (row_id), for a
-- replay: a range touches most of its (staging) table, and the planner joins.
SELECT t.ctid AS row_id, t.* FROM {{table}} t JOIN {{keys}} k ON {{match}}
