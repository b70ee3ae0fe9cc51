-- Refresh cost and failures per interval: registry requests, retries, failed refreshes.
SELECT
    $__timeGroupAlias(started_at, $__interval, 0),
    sum(requests_total) AS requests,
    sum(retries) AS retries,
    count(*) FILTER (WHERE status = 'failed') AS failures
FROM dashboard.refreshes
WHERE $__timeFilter(started_at)
GROUP BY 1
ORDER BY 1
