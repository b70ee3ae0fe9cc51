-- Parked pairs of these digests, on one node or everywhere, with their newest park event.
SELECT coalesce(ni.registry, p.data ->> 'registry', ''),
       coalesce(ni.repository, p.data ->> 'repository', ''),
       ni.node, ni.digest, ni.tag,
       coalesce(CAST(p.data ->> 'failures' AS integer), ni.prepull_failures), ni.prepull_reason,
       coalesce(p.position, 0), p.occurred_at
FROM ledger.node_images ni
LEFT JOIN LATERAL (
    SELECT e.position, e.occurred_at, e.data FROM ledger.events e
    WHERE e.stream = 'prepull:' || ni.node AND e.type = 'prepull.parked'
      AND e.data ->> 'digest' = ni.digest
    ORDER BY e.position DESC LIMIT 1
) p ON true
WHERE ni.prepull_state = 'parked' AND ni.digest = ANY(CAST(:digests AS text[]))
  AND (CAST(:node AS text) IS NULL OR ni.node = :node)
ORDER BY ni.node, ni.digest
