-- Failing and parked pairs grouped by their last reason.
SELECT
    reason,
    status,
    count(*) AS pairs,
    count(DISTINCT node) AS nodes,
    count(DISTINCT tag) AS images
FROM dashboard.prepull_queue
WHERE status IN ('failed', 'parked')
GROUP BY reason, status
ORDER BY pairs DESC, reason, status
