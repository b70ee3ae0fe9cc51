-- Refreshes started in the time range, newest first: outcome, changes, cost and reason.
SELECT
    started_at,
    registry || '/' || repository AS source,
    status,
    duration_seconds,
    tags_total,
    discovered,
    resolved,
    moved,
    removed,
    requests_total,
    retries,
    bytes_received,
    cardinality(flagged_tags) AS flagged,
    reason
FROM dashboard.refreshes
WHERE $__timeFilter(started_at)
ORDER BY started_at DESC, refresh_id
LIMIT 500
