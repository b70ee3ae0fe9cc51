"""PostgreSQL: the ledger schema, the event log, its folds and projections, stores, migrations.

The package face: callers outside it import from here, never from its modules.
"""

from worker.adapters.ledger.database import (
    DATABASE_URL_ENV,
    DEFAULT_DATABASE_URL,
    DatabaseMissingError,
    LedgerError,
    TransientLedgerError,
    database_url,
    make_engine,
    naming_database,
    safe_url,
)
from worker.adapters.ledger.eventlog import EventLog
from worker.adapters.ledger.migrate import current_revision, revisions, upgrade
from worker.adapters.ledger.outbox import OutboxRelay
from worker.adapters.ledger.rebuild import RebuildReport
from worker.adapters.ledger.rebuild import rebuild as rebuild_projections
from worker.adapters.ledger.retention import PruneReport, prune
from worker.adapters.ledger.stores import (
    ConsoleStore,
    ExplainStore,
    FiguresStore,
    HistoryStore,
    LedgerRefreshStore,
    LedgerStatus,
    SpawnerStore,
    UnparkStore,
    WorkStore,
    dashboard,
)

__all__ = [
    "DATABASE_URL_ENV",
    "DEFAULT_DATABASE_URL",
    "ConsoleStore",
    "DatabaseMissingError",
    "EventLog",
    "ExplainStore",
    "FiguresStore",
    "HistoryStore",
    "LedgerError",
    "LedgerRefreshStore",
    "LedgerStatus",
    "OutboxRelay",
    "PruneReport",
    "RebuildReport",
    "SpawnerStore",
    "TransientLedgerError",
    "UnparkStore",
    "WorkStore",
    "current_revision",
    "dashboard",
    "database_url",
    "make_engine",
    "naming_database",
    "prune",
    "rebuild_projections",
    "revisions",
    "safe_url",
    "upgrade",
]
