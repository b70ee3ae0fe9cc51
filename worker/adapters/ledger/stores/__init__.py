"""The ledger reads and writes of each use case, over the event log and the projections."""

from worker.adapters.ledger.stores import dashboard
from worker.adapters.ledger.stores.console import ConsoleStore
from worker.adapters.ledger.stores.explain import ExplainStore
from worker.adapters.ledger.stores.figures import FiguresStore
from worker.adapters.ledger.stores.history import HistoryStore
from worker.adapters.ledger.stores.prepull import LedgerStatus, WorkStore
from worker.adapters.ledger.stores.refresh import LedgerRefreshStore
from worker.adapters.ledger.stores.spawner import SpawnerStore
from worker.adapters.ledger.stores.unpark import UnparkStore

__all__ = [
    "ConsoleStore",
    "ExplainStore",
    "FiguresStore",
    "HistoryStore",
    "LedgerRefreshStore",
    "LedgerStatus",
    "SpawnerStore",
    "UnparkStore",
    "WorkStore",
    "dashboard",
]
