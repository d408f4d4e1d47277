"""The store's indexes over the log, written in the events' own transaction.

- `ctilink_ids`: (network, event id) → position, unique, so that I3 is a
  lookup rather than a scan of a network's whole log (the fingerprint is read
  from the event's own row, only when an id is found: most never are);
- `ctilink_networks`: one row per network, its line of the listings
  (projections/overview.py) at its last position, so that listing thousands of
  networks reads rows rather than folding every log;
- `ctilink_meta`: which indexes are complete (a store written before an index
  existed gets it built on first open for writing, or by `ctilink reindex`).

`IndexTables` is mixed into the SQLite and PostgreSQL recorders, beside
`InboundTables`, which supplies `table`, `mark`, `query` and `execute`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from ctilink.adapters.store.codec import stored_fingerprint
from ctilink.projections.overview import Overview

IdRow = tuple[str, str, int]  # network, event id, position
Seen = dict[tuple[str, str], tuple[int, bytes]]  # (network, event id) -> (position, fp)
LOOKUP_CHUNK = 500  # ids per query
BUILD_PAGE = 5000
IDS_COMPLETE = "ids"
NETWORKS_COMPLETE = "networks"
NETWORK_COLUMNS = (
    "network, position, setting, configured, effective, restart_pending, converted, "
    "available, unavailable, not_configured, recorded"
)


class Filters(msgspec.Struct, frozen=True):
    """Which networks a listing shows: a page of them, sorted by name, after `after`."""

    after: str | None = None
    limit: int | None = None  # None: every one
    effective: str | None = None
    restart_pending: bool | None = None
    name_prefix: str | None = None

    def admits(self, row: Overview) -> bool:
        """Whether a network's line passes the filters (not the page bounds)."""
        return (
            (self.effective is None or row.effective == self.effective)
            and (self.restart_pending is None or row.restart_pending == self.restart_pending)
            and (self.name_prefix is None or row.network.startswith(self.name_prefix))
        )


class IndexTables:
    """Create, write and read the index tables; the recorder supplies names and placeholders."""

    mark = "?"

    def table(self, name: str) -> str:  # pragma: no cover - supplied by InboundTables
        raise NotImplementedError

    def query(self, sql: str, params: tuple[Any, ...]) -> list[Sequence[Any]]:  # pragma: no cover
        raise NotImplementedError

    def execute(self, sql: str, params: tuple[Any, ...]) -> None:  # pragma: no cover
        raise NotImplementedError

    def index_statements(self, clustered: str = "", binary: str = "") -> list[str]:
        """CREATE statements for the index tables, in the store's column types.

        `binary`: the collation that orders names by code point, as Python does
        (PostgreSQL's default follows the locale, so pages would not be in name order).
        """
        return [
            f"CREATE TABLE IF NOT EXISTS {self.table('ctilink_ids')} (network TEXT NOT NULL, "
            "event_id TEXT NOT NULL, position BIGINT NOT NULL, "
            f"PRIMARY KEY (network, event_id)){clustered}",
            f"CREATE TABLE IF NOT EXISTS {self.table('ctilink_meta')} "
            "(key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {self.table('ctilink_networks')} ("
            f"network TEXT{binary} PRIMARY KEY, position BIGINT NOT NULL, setting TEXT NOT NULL, "
            "configured TEXT NOT NULL, effective TEXT NOT NULL, "
            "restart_pending INTEGER NOT NULL, converted INTEGER NOT NULL, "
            "available INTEGER NOT NULL, unavailable INTEGER NOT NULL, "
            f"not_configured INTEGER NOT NULL, recorded TEXT NOT NULL){clustered}",
        ]

    # --- writing, inside the events' transaction --------------------------------------

    def write_ids(self, cursor: Any, rows: Sequence[IdRow]) -> None:
        """Add the accepted events' ids; one already there fails the transaction (I3)."""
        if rows:
            q = self.mark
            # In key order: each insert lands beside the last, not all over the tree.
            cursor.executemany(
                f"INSERT INTO {self.table('ctilink_ids')} VALUES ({q}, {q}, {q})", sorted(rows)
            )

    def write_networks(self, cursor: Any, rows: Sequence[Overview]) -> None:
        """Set the networks' lines; a line never goes back to an earlier position."""
        if rows:
            # Monotonic, so that a build of the index racing a writer cannot put
            # back a line older than the one the writer committed.
            cursor.executemany(self.network_upsert, [network_values(row) for row in rows])

    def put_networks(self, rows: Sequence[Overview]) -> None:
        """Set networks' lines in a transaction of their own (building the index)."""
        if rows:
            self.execute_many(self.network_upsert, [network_values(row) for row in rows])

    def execute_many(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:  # pragma: no cover
        raise NotImplementedError

    @property
    def network_upsert(self) -> str:
        """Insert a network's line, or replace it by a later one."""
        q, table = self.mark, self.table("ctilink_networks")
        columns = NETWORK_COLUMNS.split(", ")
        changes = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
        return (
            f"INSERT INTO {table} ({NETWORK_COLUMNS}) VALUES ({', '.join([q] * len(columns))}) "
            f"ON CONFLICT (network) DO UPDATE SET {changes} "
            "WHERE excluded.position > ctilink_networks.position"
        )

    # --- reading ------------------------------------------------------------------------

    def list_networks(self, filters: Filters) -> list[Overview]:
        """The networks' lines that pass the filters, sorted by name."""
        q = self.mark
        where, params = ["1 = 1"], []
        if filters.after is not None:
            where.append(f"network > {q}")
            params.append(filters.after)
        if filters.name_prefix:
            # A range on the key, then the exact test (no LIKE: it ignores case in SQLite).
            where.append(f"network >= {q} AND substr(network, 1, {q}) = {q}")
            params += [filters.name_prefix, len(filters.name_prefix), filters.name_prefix]
        if filters.effective is not None:
            where.append(f"effective = {q}")
            params.append(filters.effective)
        if filters.restart_pending is not None:
            where.append(f"restart_pending = {q}")
            params.append(int(filters.restart_pending))
        limit = "" if filters.limit is None else f" LIMIT {int(filters.limit)}"
        rows = self.query(
            f"SELECT {NETWORK_COLUMNS} FROM {self.table('ctilink_networks')} "
            f"WHERE {' AND '.join(where)} ORDER BY network{limit}",
            tuple(params),
        )
        return [overview_of(row) for row in rows]

    def indexed_names(self) -> list[str]:
        """The names the network index holds a line for."""
        return [
            row[0]
            for row in self.query(f"SELECT network FROM {self.table('ctilink_networks')}", ())
        ]

    def network_line(self, network: str) -> Overview | None:
        """One network's line, as the index holds it (None: it holds none)."""
        rows = self.query(
            f"SELECT {NETWORK_COLUMNS} FROM {self.table('ctilink_networks')} "
            f"WHERE network = {self.mark}",
            (network,),
        )
        return overview_of(rows[0]) if rows else None

    def lookup_ids(self, pairs: Iterable[tuple[str, str]]) -> Seen:
        """Which of these (network, event id) pairs were accepted, where, and their digests."""
        by_network: dict[str, list[str]] = {}
        for network, event_id in dict.fromkeys(pairs):
            by_network.setdefault(network, []).append(event_id)
        found: Seen = {}
        for network, ids in by_network.items():
            for start in range(0, len(ids), LOOKUP_CHUNK):
                positions = self._positions(network, ids[start : start + LOOKUP_CHUNK])
                digests = self._digests(network, list(positions.values()))
                found.update(
                    {
                        (network, event_id): (position, digests.get(position, b""))
                        for event_id, position in positions.items()
                    }
                )
        return found

    def _positions(self, network: str, ids: list[str]) -> dict[str, int]:
        """event id -> position, for those of the ids the network accepted."""
        # `network = ? AND event_id IN (…)` walks the primary key; a row-value
        # IN list would scan the whole table in SQLite.
        rows = self.query(
            f"SELECT event_id, position FROM {self.table('ctilink_ids')} "
            f"WHERE network = {self.mark} AND event_id IN ({', '.join([self.mark] * len(ids))})",
            (network, *ids),
        )
        return {row[0]: int(row[1]) for row in rows}

    def _digests(self, network: str, positions: list[int]) -> dict[int, bytes]:
        """position -> fingerprint, read from the events' own rows (b"": unreadable)."""
        if not positions:
            return {}
        rows = self.query(
            f"SELECT originator_version, state FROM {self.events_sql} "
            f"WHERE originator_id = {self.mark} "
            f"AND originator_version IN ({', '.join([self.mark] * len(positions))})",
            (network, *positions),
        )
        digests = {}
        for position, state in rows:
            try:
                digests[int(position)] = stored_fingerprint(bytes(state))[1]
            except Exception:  # a damaged row: no digest matches it (`verify` names it)
                digests[int(position)] = b""
        return digests

    def id_count(self, network: str) -> int:
        """How many ids the index holds for a network."""
        rows = self.query(
            f"SELECT COUNT(*) FROM {self.table('ctilink_ids')} WHERE network = {self.mark}",
            (network,),
        )
        return int(rows[0][0])

    def set_complete(self, name: str, complete: bool) -> None:
        """Mark an index complete (kept since by every write), or not."""
        q, meta = self.mark, self.table("ctilink_meta")
        self.execute(f"DELETE FROM {meta} WHERE key = {q}", (name,))
        if complete:
            self.execute(f"INSERT INTO {meta} VALUES ({q}, '1') ON CONFLICT DO NOTHING", (name,))

    def forget_networks(self) -> None:
        """Empty the network index, marked incomplete, before it is built again."""
        self.set_complete(NETWORKS_COMPLETE, False)
        self.execute(f"DELETE FROM {self.table('ctilink_networks')}", ())

    def index_complete(self, name: str = IDS_COMPLETE) -> bool:
        """Whether an index was built over the whole log (and kept since)."""
        try:
            rows = self.query(
                f"SELECT value FROM {self.table('ctilink_meta')} WHERE key = {self.mark}", (name,)
            )
        except Exception:  # a store from before the index, opened read-only: no table
            return False
        return bool(rows)

    # --- building -------------------------------------------------------------------------

    def exclusive(self) -> Any:  # pragma: no cover - supplied by the recorder
        """A write transaction that keeps other writers of events out until it ends."""
        raise NotImplementedError

    def fetch(self, cursor: Any) -> list[Sequence[Any]]:  # pragma: no cover - by the recorder
        """The cursor's rows, as sequences."""
        raise NotImplementedError

    events_sql = "stored_events"  # the events table, as SQL

    def build_ids(
        self,
        progress: Callable[[int], None],
        *,
        again: bool = False,
    ) -> Build | None:
        """Build the id index from the whole log, a page at a time (None: it was complete).

        One transaction: writers wait, and a crash leaves the store as it was.
        """
        q, meta, ids = self.mark, self.table("ctilink_meta"), self.table("ctilink_ids")
        with self.exclusive() as cursor:
            cursor.execute(f"SELECT value FROM {meta} WHERE key = {q}", (IDS_COMPLETE,))
            if self.fetch(cursor) and not again:
                return None  # another process built it meanwhile
            cursor.execute(f"DELETE FROM {meta} WHERE key = {q}", (IDS_COMPLETE,))
            cursor.execute(f"DELETE FROM {ids}", ())
            build = Build()
            after: tuple[str, int] = ("", 0)
            while True:
                cursor.execute(
                    "SELECT originator_id, originator_version, state FROM "
                    f"{self.events_sql} WHERE (originator_id, originator_version) > ({q}, {q}) "
                    f"ORDER BY originator_id, originator_version LIMIT {BUILD_PAGE}",
                    after,
                )
                page = self.fetch(cursor)
                if not page:
                    break
                rows: list[IdRow] = []
                for network, position, state in page:
                    try:
                        event_id = stored_fingerprint(bytes(state))[0]
                    except Exception:  # a damaged row: `verify` says which; index the rest
                        build.unreadable += 1
                        continue
                    rows.append((network, event_id, int(position)))
                self.insert_ids(cursor, rows)
                build.indexed += len(rows)
                after = (page[-1][0], int(page[-1][1]))
                progress(build.indexed + build.unreadable)
            cursor.execute(f"INSERT INTO {meta} VALUES ({q}, '1')", (IDS_COMPLETE,))
        return build

    def insert_ids(self, cursor: Any, rows: Sequence[IdRow]) -> None:
        """Rows of a rebuild; an id twice in one network (damage) keeps its first position."""
        q = self.mark
        cursor.executemany(
            f"INSERT INTO {self.table('ctilink_ids')} VALUES ({q}, {q}, {q}) "
            "ON CONFLICT (network, event_id) DO NOTHING",
            rows,
        )


def network_values(row: Overview) -> tuple[Any, ...]:
    """A network's line as the table's columns (flags as 0/1, the time as UTC ISO text)."""
    return (
        row.network,
        row.position,
        row.setting,
        row.configured,
        row.effective,
        int(row.restart_pending),
        int(row.converted),
        row.available,
        row.unavailable,
        row.not_configured,
        row.recorded.astimezone(UTC).isoformat(),
    )


def overview_of(row: Sequence[Any]) -> Overview:
    """A network's line from the table's columns."""
    return Overview(
        network=row[0],
        position=int(row[1]),
        setting=row[2],
        configured=row[3],
        effective=row[4],
        restart_pending=bool(row[5]),
        converted=bool(row[6]),
        available=int(row[7]),
        unavailable=int(row[8]),
        not_configured=int(row[9]),
        recorded=datetime.fromisoformat(row[10]),
    )


class Build:
    """What a build of the id index did."""

    __slots__ = ("indexed", "unreadable")

    def __init__(self) -> None:
        self.indexed = 0
        self.unreadable = 0  # rows that cannot be decoded (damage `verify` reports)
