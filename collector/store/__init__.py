"""collector.store: the only package that imports asyncpg.

PostgreSQL access for kubeinv: the migrations runner, the change-only write path, the run
ledger, cluster claims and the embedded server used when no database is configured.
"""

from collector.store.database import (
    DEMO_DATABASE,
    Store,
    open_demo_store,
    open_store,
    redact_dsn,
)
from collector.store.writing import PartStats, StoreStats

__all__ = [
    "DEMO_DATABASE",
    "PartStats",
    "Store",
    "StoreStats",
    "open_demo_store",
    "open_store",
    "redact_dsn",
]
