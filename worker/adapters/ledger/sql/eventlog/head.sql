-- The position of the log's last event (0 for an empty log): positions are dense and
-- appends serialized, so this is the head a reader in this snapshot has seen all of.
SELECT coalesce(max(position), 0) AS position FROM ledger.events
