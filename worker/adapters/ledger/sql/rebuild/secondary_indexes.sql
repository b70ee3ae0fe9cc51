-- The indexes of a ledger table other than its primary key, with their definitions.
SELECT indexname, indexdef FROM pg_indexes
WHERE schemaname = :schema AND tablename = :table AND indexname <> :primary_key
ORDER BY indexname
