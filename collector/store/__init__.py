"""collector.store: the only package that imports asyncpg.

PostgreSQL access for kubeinv: the migrations runner, the change-only write path, the run
ledger, cluster claims and the embedded server used when no database is configured.
"""

from collector.store.database import Store, open_store, redact_dsn
from collector.store.writing import PartStats, StoreStats

__all__ = ["PartStats", "Store", "StoreStats", "open_store", "redact_dsn"]
