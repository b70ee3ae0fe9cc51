-- The node's other prepulls in flight (requested, not yet present).
SELECT node, digest, coalesce(present, false), prepull_state, prepull_requests,
       prepull_failures, prepull_deadline, prepull_finished_at, registry, repository, tag
FROM ledger.node_images
WHERE node = :node AND digest <> :digest AND prepull_state = 'requested'
  AND present IS NOT TRUE
