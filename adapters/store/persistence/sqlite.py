"""eventsourcing's SQLite persistence: a batch in one durable commit, lookups in one query."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import msgspec
from eventsourcing.persistence import Environment, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteFactory

from ctilink.adapters.store.persistence import compat
from ctilink.adapters.store.persistence.compat import check_durable
from ctilink.adapters.store.persistence.ids import IdRow, IndexTables
from ctilink.adapters.store.persistence.inbound import InboundTables, OutcomeChunk
from ctilink.adapters.store.persistence.network_index import NetworkTables
from ctilink.adapters.store.persistence.times import TimeRow, TimeTables
from ctilink.domain.arrivals import Rejection
from ctilink.projections.overview import Overview


class BatchInsertRecorder(
    InboundTables, IndexTables, TimeTables, NetworkTables, SQLiteApplicationRecorder
):
    """Inserts a batch's events, snapshots and inbound records in one transaction."""

    durable = True  # its connections sync every commit (else each write checks: compat.py)

    def construct_create_table_statements(self) -> list[str]:
        """eventsourcing's tables, and the inbound ones (persistence/inbound.py)."""
        return [
            *super().construct_create_table_statements(),
            *self.inbound_statements("INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB", "TEXT"),
            *self.index_statements(" WITHOUT ROWID"),
            *self.time_statements(" WITHOUT ROWID"),
            *self.network_statements(" WITHOUT ROWID"),
        ]

    def insert_events(
        self,
        stored_events: Sequence[StoredEvent],
        *,
        snapshots: Sequence[StoredEvent] = (),
        sources: dict[str, tuple[int, int]] | None = None,
        rejections: Sequence[Rejection] = (),
        journal: OutcomeChunk | None = None,
        ids: Sequence[IdRow] = (),
        times: Sequence[TimeRow] = (),
        networks: Sequence[Overview] = (),
        **_: Any,
    ) -> Sequence[int] | None:
        """Insert the events, their snapshots, ids, lines and inbound records: one commit."""
        with self.datastore.transaction(commit=True) as c:
            if not self.durable:
                check_durable(c)
            # One statement for all the rows: eventsourcing's own insert runs one per
            # event to collect rowids, which nothing here uses (readers page by rowid).
            c.executemany(self.insert_events_statement, _rows(stored_events))
            self.write_ids(c, ids)
            self.write_times(c, times)
            self.write_networks(c, networks)
            if snapshots:  # same transaction: a batch costs one sync of the log, not two
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

    def lookup_query(self, pairs: list[tuple[str, str]]) -> tuple[str, tuple[Any, ...]]:
        """The pairs as one JSON array, joined to the index and the events by primary key."""
        return LOOKUP, (_json(pairs),)

    def heads_query(self, networks: Sequence[str]) -> tuple[str, tuple[Any, ...]]:
        """The networks as one JSON array."""
        return HEADS_OF, (_json(list(networks)),)


HEADS_OF = (
    "SELECT originator_id, MAX(originator_version) FROM stored_events "
    "WHERE originator_id IN (SELECT value FROM json_each(?)) GROUP BY originator_id"
)
LOOKUP = (
    "SELECT i.network, i.event_id, i.position, e.state FROM json_each(?) AS q "
    "JOIN ctilink_ids AS i ON i.network = json_extract(q.value, '$[0]') "
    "AND i.event_id = json_extract(q.value, '$[1]') "
    "JOIN stored_events AS e ON e.originator_id = i.network AND e.originator_version = i.position"
)
_json = msgspec.json.Encoder().encode
SNAPSHOT_INSERT = "INSERT INTO stored_snapshots VALUES (?,?,?,?)"


def _rows(stored: Sequence[StoredEvent]) -> list[tuple[Any, ...]]:
    """Row tuples in the column order of eventsourcing's tables."""
    return [(s.originator_id, s.originator_version, s.topic, s.state) for s in stored]


class Factory(SQLiteFactory):
    """SQLiteFactory with durable commits and batched inserts."""

    application_recorder_class = BatchInsertRecorder

    def __init__(self, env: Environment | dict[str, Any] | None) -> None:
        super().__init__(env)
        self.durable = compat.durable(self.datastore)

    def application_recorder(self) -> Any:
        """The events recorder, told whether its connections sync by themselves."""
        recorder = super().application_recorder()
        recorder.durable = self.durable
        return recorder
