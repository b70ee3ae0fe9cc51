"""The ledger reads and writes of each use case, over the event log and the projections."""
