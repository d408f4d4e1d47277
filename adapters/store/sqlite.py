"""eventsourcing's SQLite persistence with every commit forced to disk."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import Environment, StoredEvent
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteFactory,
)

from ctilink.adapters.store.inbound import InboundTables, OutcomeChunk
from ctilink.adapters.store.indexes import IdRow, IndexTables
from ctilink.adapters.store.network_index import NetworkTables
from ctilink.domain.arrivals import Rejection
from ctilink.projections.overview import Overview

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


class BatchInsertRecorder(InboundTables, IndexTables, NetworkTables, SQLiteApplicationRecorder):
    """Inserts a batch's events, snapshots and inbound records in one transaction."""

    inserts_snapshots = True

    def construct_create_table_statements(self) -> list[str]:
        """eventsourcing's tables, and the inbound ones (adapters/store/inbound.py)."""
        return [
            *super().construct_create_table_statements(),
            *self.inbound_statements("INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB", "TEXT"),
            *self.index_statements(" WITHOUT ROWID"),
            *self.network_statements(" WITHOUT ROWID"),
        ]

    def _insert_events(
        self,
        c: SQLiteCursor,
        stored_events: Sequence[StoredEvent],
        *,
        snapshots: Sequence[StoredEvent] = (),
        sources: dict[str, tuple[int, int]] | None = None,
        rejections: Sequence[Rejection] = (),
        journal: OutcomeChunk | None = None,
        ids: Sequence[IdRow] = (),
        networks: Sequence[Overview] = (),
        **_: Any,
    ) -> Sequence[int] | None:
        # The stock recorder runs one INSERT per event to collect rowids; nothing
        # here uses them (readers page the log by rowid themselves).
        c.executemany(self.insert_events_statement, _rows(stored_events))
        self.write_ids(c, ids)
        self.write_networks(c, networks)
        if snapshots:
            # Same transaction, so a batch costs one sync of the log, not two.
            c.executemany(SNAPSHOT_INSERT, _rows(snapshots))
        self.write_inbound(c.sqlite_cursor, sources or {}, rejections, journal)
        return None

    def rejection_row(self, r: Rejection) -> tuple[Any, ...]:
        """A rejection as the table's columns (the time as ISO text)."""
        return (*super().rejection_row(r)[:-1], r.received.isoformat())

    def query(self, sql: str, params: tuple[Any, ...]) -> list[Sequence[Any]]:
        """Rows of a read."""
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def execute(self, sql: str, params: tuple[Any, ...]) -> None:
        """One write in a transaction of its own."""
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(sql, params)

    def execute_many(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """One statement for many rows, in a transaction of its own."""
        with self.datastore.transaction(commit=True) as cursor:
            cursor.executemany(sql, rows)

    @contextmanager
    def exclusive(self) -> Iterator[Any]:
        """A write transaction holding SQLite's write lock from its first statement."""
        with self.datastore.transaction(commit=True) as cursor:
            # A write first: a deferred transaction that read first could not
            # take the lock later without failing at once (SQLITE_BUSY_SNAPSHOT).
            cursor.execute("DELETE FROM ctilink_meta WHERE key = 'lock'")
            yield cursor

    def fetch(self, cursor: Any) -> list[Sequence[Any]]:
        """The cursor's rows."""
        return list(cursor.fetchall())

    def heads(self) -> list[tuple[str, int]]:
        """Every network with its last position, sorted by name."""
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(HEADS)
            return sorted((row[0], row[1]) for row in cursor.fetchall())

    def events_after(self, notification_id: int) -> int:
        """How many events were logged after that notification."""
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute("SELECT COUNT(*) FROM stored_events WHERE rowid > ?", (notification_id,))
            return int(cursor.fetchone()[0])

    def networks_changed(self, after: int, upto: int) -> set[str]:
        """The networks with events logged after notification `after`, up to `upto`."""
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(CHANGED, (after, upto))
            return {row[0] for row in cursor.fetchall()}

    def records(
        self, network: str, low: int, high: int, limit: int, *, desc: bool = False
    ) -> list[tuple[int, str, bytes]]:
        """(position, topic, stored record) of positions low..high, at most `limit`."""
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(RECORDS[desc], (network, low, high, limit))
            return [(row[0], row[1], row[2]) for row in cursor.fetchall()]


HEADS = "SELECT originator_id, MAX(originator_version) FROM stored_events GROUP BY originator_id"
RECORDS = {
    desc: "SELECT originator_version, topic, state FROM stored_events WHERE originator_id=? "
    "AND originator_version BETWEEN ? AND ? "
    f"ORDER BY originator_version {'DESC' if desc else 'ASC'} LIMIT ?"
    for desc in (False, True)
}
SNAPSHOT_INSERT = "INSERT INTO stored_snapshots VALUES (?,?,?,?)"
CHANGED = "SELECT DISTINCT originator_id FROM stored_events WHERE rowid > ? AND rowid <= ?"


def _rows(stored: Sequence[StoredEvent]) -> list[tuple[Any, ...]]:
    """Row tuples in the column order of eventsourcing's tables."""
    return [(s.originator_id, s.originator_version, s.topic, s.state) for s in stored]


class Factory(SQLiteFactory):
    """SQLiteFactory with durable commits and batched inserts."""

    application_recorder_class = BatchInsertRecorder

    def __init__(self, env: Environment | dict[str, Any] | None) -> None:
        super().__init__(env)
        old = self.datastore.pool
        self.datastore.pool = DurableConnectionPool(
            db_name=old.db_name, lock_timeout=old.lock_timeout
        )
        old.close()
