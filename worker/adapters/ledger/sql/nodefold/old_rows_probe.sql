-- The stored rows of a table for the keys in a CTE, with their row ids (row_id), for an
-- append: it touches a few hundred keys of tables that grow with nodes x images, and its
-- plan is made once (eventlog.GENERIC_PLAN), so it probes them, one index probe per key,
-- never a scan.
SELECT t.* FROM {{keys}} k
CROSS JOIN LATERAL (
    SELECT t.ctid AS row_id, * FROM {{table}} t WHERE {{match}}
    OFFSET 0  -- one index probe per key, never a scan of the table
) t
