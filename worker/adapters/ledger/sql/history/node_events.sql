-- The newest `limit` events of a node up to a time (its labels, inventories, departure,
-- prepull successes), oldest first.
SELECT type, version, data FROM (
    SELECT position, type, version, data FROM ledger.events
    WHERE ((stream = :node_stream
            AND type IN ('node.seen', 'node.inventory_observed', 'node.gone'))
           OR (stream = :prepull_stream AND type = 'prepull.succeeded'))
      AND occurred_at <= :until
    ORDER BY occurred_at DESC, position DESC
    LIMIT :limit
) newest
ORDER BY position
