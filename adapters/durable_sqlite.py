"""eventsourcing's SQLite persistence with every commit forced to disk."""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import Environment
from eventsourcing.sqlite import SQLiteConnection, SQLiteConnectionPool, SQLiteFactory

# WAL with synchronous=FULL syncs the log on every commit, so an accepted event
# survives a crash of the machine, not only of the process (NORMAL would not).
PRAGMAS = ("PRAGMA synchronous=FULL", "PRAGMA busy_timeout=30000")


class DurableConnectionPool(SQLiteConnectionPool):
    """Connections that sync every commit."""

    def _create_connection(self) -> SQLiteConnection:
        connection = super()._create_connection()
        for pragma in PRAGMAS:
            connection._sqlite_conn.execute(pragma)
        return connection


class Factory(SQLiteFactory):
    """SQLiteFactory whose datastore uses DurableConnectionPool."""

    def __init__(self, env: Environment | dict[str, Any] | None) -> None:
        super().__init__(env)
        old = self.datastore.pool
        self.datastore.pool = DurableConnectionPool(
            db_name=old.db_name, lock_timeout=old.lock_timeout
        )
        old.close()
