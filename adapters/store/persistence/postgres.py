"""eventsourcing's PostgreSQL persistence with a batch's snapshots in its transaction."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import (
    Environment,
    InterfaceError,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresFactory
from eventsourcing.utils import retry
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from ctilink.adapters.store.persistence.ids import IdRow, IndexTables
from ctilink.adapters.store.persistence.inbound import InboundTables, OutcomeChunk
from ctilink.adapters.store.persistence.network_index import NetworkTables
from ctilink.adapters.store.persistence.times import TimeRow, TimeTables, earliest_times
from ctilink.domain.arrivals import Rejection
from ctilink.projections.overview import Overview


class BatchInsertRecorder(
    InboundTables, IndexTables, TimeTables, NetworkTables, PostgresApplicationRecorder
):
    """Inserts a batch's events, snapshots and inbound records in one transaction."""

    mark = "%s"
    notification_sql = "notification_id"

    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.sql_create_statements += [
            SQL(statement)  # type: ignore[arg-type]
            for statement in [
                *self.index_statements(),
                *self.time_statements(),
                *self.network_statements(binary=' COLLATE "C"'),
                *self.inbound_statements("BIGSERIAL PRIMARY KEY", "BYTEA", "TIMESTAMPTZ"),
            ]
        ]
        schema = Identifier(self.datastore.schema)
        # The writers' lock of this store: per database, and per schema within it.
        self.writer_lock = _lock_key(f"ctilink-writers:{self.datastore.schema}")
        self.events_sql = self.table(events_table_name)
        self.ids_copy = SQL(
            "COPY {}.ctilink_ids (network, event_id, position) FROM STDIN (FORMAT BINARY)"
        ).format(schema)
        table = Identifier(events_table_name)
        snapshots = Identifier(events_table_name.removesuffix("_events") + "_snapshots")
        self.snapshot_insert = SQL("INSERT INTO {}.{} VALUES (%s, %s, %s, %s)").format(
            schema, snapshots
        )
        self.copy_statement = SQL(
            "COPY {}.{} (originator_id, originator_version, topic, state) "
            "FROM STDIN (FORMAT BINARY)"
        ).format(schema, table)
        self.times_copy = SQL(
            "COPY {}.ctilink_times (network, time, position) FROM STDIN (FORMAT BINARY)"
        ).format(schema)
        self.times_delete = SQL(
            "DELETE FROM {}.ctilink_times AS t USING unnest(%s::text[], %s::int8[]) "
            "AS d (network, time) WHERE t.network = d.network AND t.time >= d.time"
        ).format(schema)
        ids = Identifier("ctilink_ids")
        self.lookup_statement = SQL(
            "SELECT i.network, i.event_id, i.position, e.state "
            "FROM unnest(%s::text[], %s::text[]) AS q (network, event_id) "
            "JOIN {}.{} AS i USING (network, event_id) "
            "JOIN {}.{} AS e ON e.originator_id = i.network AND e.originator_version = i.position"
        ).format(schema, ids, schema, table)
        self.heads_of_statement = SQL(
            "SELECT originator_id, MAX(originator_version) FROM {}.{} "
            "WHERE originator_id = ANY(%s) GROUP BY originator_id"
        ).format(schema, table)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
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
        """Insert the events, their snapshots and inbound records in one transaction."""
        # A binary COPY: the stock insert dumps an array of composites in Python,
        # which costs more than the rest of the commit. Nothing here needs the
        # notification ids back (readers page the log themselves).
        with (
            self.datastore.get_connection() as connection,
            connection.transaction(),
            connection.cursor() as cursor,
        ):
            # One writer at a time makes commit order the id order, so that a reader
            # paging by id never passes a gap that a slower writer fills later. An
            # advisory lock, not LOCK TABLE: that would need UPDATE on the log.
            cursor.execute(WRITER_LOCK, (self.writer_lock,))
            if snapshots:
                cursor.executemany(self.snapshot_insert, _rows(snapshots))
            if stored_events:
                with cursor.copy(self.copy_statement) as copy:
                    copy.set_types(COLUMN_TYPES)
                    for row in _rows(stored_events):
                        copy.write_row(row)
            # Under the same table lock: rejections, too, get their ids in commit order.
            self.write_inbound(cursor, sources or {}, rejections, journal)
            self.write_ids(cursor, ids)
            self.write_times(cursor, times)
            self.write_networks(cursor, networks)
        return None

    def lookup_query(self, pairs: list[tuple[str, str]]) -> tuple[Any, tuple[Any, ...]]:
        """The pairs as two arrays, joined to the index and the events by primary key."""
        return self.lookup_statement, ([p[0] for p in pairs], [p[1] for p in pairs])

    def heads_query(self, networks: Sequence[str]) -> tuple[Any, tuple[Any, ...]]:
        """The networks as one array."""
        return self.heads_of_statement, (list(networks),)

    def table(self, name: str) -> str:
        """The table in this store's schema (a checked lower-case name: safe to quote)."""
        return f'"{self.datastore.schema}".{name}'

    def query(self, sql: str, params: tuple[Any, ...]) -> list[Sequence[Any]]:
        """Rows of a read, as tuples: a dict row would fold columns of the same name."""
        with self.datastore.transaction(commit=False) as cursor:
            cursor.row_factory = tuple_row
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def execute(self, sql: str, params: tuple[Any, ...]) -> None:
        """One write in a transaction of its own."""
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(sql, params)

    def execute_many(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """One statement for many rows, in a transaction of its own."""
        with self.datastore.transaction(commit=True) as cursor:
            cursor.executemany(sql, rows)

    def write_ids(self, cursor: Any, rows: Sequence[IdRow]) -> None:
        """Add the accepted events' ids by COPY; one already there fails the transaction."""
        if rows:
            with cursor.copy(self.ids_copy) as copy:
                copy.set_types(["text", "text", "int8"])
                for row in sorted(rows):
                    copy.write_row(row)

    def write_times(self, cursor: Any, rows: Sequence[TimeRow]) -> None:
        """The batch's chains: one DELETE for every network's superseded entries, then COPY."""
        if not rows:
            return
        earliest = earliest_times(rows)
        cursor.execute(self.times_delete, (list(earliest), list(earliest.values())))
        with cursor.copy(self.times_copy) as copy:
            copy.set_types(["text", "int8", "int8"])
            for row in sorted(rows):
                copy.write_row(row)

    @contextmanager
    def exclusive(self) -> Iterator[Any]:
        """A write transaction holding the writers' lock, as every batch takes it."""
        with (
            self.datastore.get_connection() as connection,
            connection.transaction(),
            connection.cursor() as cursor,
        ):
            cursor.execute(WRITER_LOCK, (self.writer_lock,))
            yield cursor

    def fetch(self, cursor: Any) -> list[Sequence[Any]]:
        """The cursor's rows, as tuples (the pool hands out dict rows)."""
        return [tuple(row.values()) if isinstance(row, dict) else row for row in cursor.fetchall()]


COLUMN_TYPES = ["text", "int8", "text", "bytea"]
WRITER_LOCK = "SELECT pg_advisory_xact_lock(%s)"


def _lock_key(text: str) -> int:
    """A bigint advisory lock key for a name."""
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _rows(stored: Sequence[StoredEvent]) -> list[tuple[Any, ...]]:
    """Row tuples in the column order of eventsourcing's tables."""
    return [(s.originator_id, s.originator_version, s.topic, s.state) for s in stored]


# Any bigint: the advisory lock that serialises creating tables across processes.
CREATION_LOCK = 0x6374_696C_696E_6B  # "ctilink"


class Factory(PostgresFactory):
    """PostgresFactory with batched snapshots, in a schema it creates when missing."""

    application_recorder_class = BatchInsertRecorder

    def __init__(self, env: Environment | dict[str, Any] | None) -> None:
        super().__init__(env)
        if self.datastore.schema != "public" and self.env_create_table():
            with self._creating(), self.datastore.transaction(commit=True) as cursor:
                cursor.execute(
                    SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(self.datastore.schema))
                )

    @contextmanager
    def _creating(self) -> Iterator[None]:
        """Hold the creation lock while creating tables."""
        # Instances starting together would race on the catalogue ("tuple
        # concurrently updated"), IF NOT EXISTS notwithstanding.
        with self.datastore.get_connection() as connection:
            connection.execute("SELECT pg_advisory_lock(%s)", (CREATION_LOCK,))
            try:
                yield
            finally:
                connection.execute("SELECT pg_advisory_unlock(%s)", (CREATION_LOCK,))

    def application_recorder(self) -> Any:
        """The events recorder, its tables created under the creation lock."""
        with self._creating():
            return super().application_recorder()

    def aggregate_recorder(self, purpose: str = "events") -> Any:
        """The snapshots recorder, its table created under the creation lock."""
        with self._creating():
            return super().aggregate_recorder(purpose)

    def tracking_recorder(self, tracking_recorder_class: Any = None) -> Any:
        """The tracking recorder, its table created under the creation lock."""
        with self._creating():
            return super().tracking_recorder(tracking_recorder_class)
