-- dashboard.prepull_queue v1: every (image to pull, eligible node) pair still without the image.
CREATE VIEW dashboard.prepull_queue AS
SELECT
    t.registry,
    t.repository,
    t.tag,
    t.digest,
    t.reference || '@' || t.digest AS reference_with_digest,
    t.position AS display_position,
    n.node,
    CASE ni.prepull_state
        WHEN 'requested' THEN 'in_flight'
        WHEN 'failed' THEN 'failed'
        WHEN 'parked' THEN 'parked'
        ELSE 'pending'
    END AS status,
    coalesce(ni.prepull_requests, 0) AS attempts,
    coalesce(ni.prepull_failures, 0) AS consecutive_failures,
    coalesce(ni.prepull_failures_total, 0) AS failures_total,
    ni.prepull_requested_at AS requested_at,
    ni.prepull_deadline AS deadline,
    ni.prepull_finished_at AS finished_at,
    ni.prepull_reason AS reason,
    coalesce(ni.prepull_state = 'requested' AND ni.prepull_deadline < now(), false) AS overdue
FROM ledger.prepull_targets t
JOIN ledger.nodes n ON n.eligible AND n.gone_at IS NULL
LEFT JOIN ledger.node_images ni ON ni.node = n.node AND ni.digest = t.digest
WHERE t.pull AND t.digest IS NOT NULL AND ni.present IS NOT TRUE;
