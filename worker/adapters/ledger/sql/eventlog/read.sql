-- Events after a position, in position order.
SELECT {{columns}} FROM ledger.events
WHERE position > :after
ORDER BY position
LIMIT :limit
