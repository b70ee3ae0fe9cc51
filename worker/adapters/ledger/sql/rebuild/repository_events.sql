-- The repository events (of no type in node_types) of the position range (after, upto],
-- in position order: the rebuild folds them in Python.
SELECT type, version, data FROM ledger.events
WHERE position > :after AND position <= :upto AND type <> ALL(CAST(:node_types AS text[]))
ORDER BY position
