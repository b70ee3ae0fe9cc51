-- The newest prepull events of one (node, digest) pair, oldest first.
SELECT type, version, data FROM (
    SELECT position, type, version, data FROM ledger.events
    WHERE stream = :stream AND type LIKE 'prepull.%' AND data ->> 'digest' = :digest
    ORDER BY position DESC LIMIT :newest
) newest ORDER BY position
