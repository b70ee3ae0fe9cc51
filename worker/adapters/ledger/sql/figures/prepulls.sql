-- Prepulls in flight, failed, parked (not present) and succeeded, by state.
SELECT CASE prepull_state WHEN 'requested' THEN 'in_flight' ELSE prepull_state END, count(*)
FROM ledger.node_images
WHERE (prepull_state IN ('requested', 'failed', 'parked') AND present IS NOT TRUE)
   OR prepull_state = 'succeeded'
GROUP BY prepull_state
