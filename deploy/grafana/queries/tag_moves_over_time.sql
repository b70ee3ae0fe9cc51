-- Tag moves (a tag naming another digest) per interval and repository.
SELECT
    $__timeGroupAlias(valid_from, $__interval, 0),
    registry || '/' || repository AS metric,
    count(*) AS moves
FROM dashboard.tag_history
WHERE previous_digest IS NOT NULL AND digest <> previous_digest AND $__timeFilter(valid_from)
GROUP BY 1, 2
ORDER BY 1, 2
