-- (image, node) pairs whose last prepull failed (retried later) or that are parked (no more
-- attempts until unparked), parked first, with the last reason.
SELECT node, tag, status, consecutive_failures, failures_total, attempts, finished_at, reason
FROM dashboard.prepull_queue
WHERE status IN ('failed', 'parked')
ORDER BY status = 'parked' DESC, consecutive_failures DESC, node, tag
LIMIT 500
