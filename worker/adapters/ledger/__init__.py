"""PostgreSQL: the ledger schema, the event log, its folds and projections, stores, migrations."""
