-- Every tag move in the time range, newest first.
SELECT valid_from AS moved_at, registry || '/' || repository AS source, tag, previous_digest, digest
FROM dashboard.tag_history
WHERE previous_digest IS NOT NULL AND digest <> previous_digest AND $__timeFilter(valid_from)
ORDER BY valid_from DESC, tag
LIMIT 500
