"""The network index: each network's line of the listings, written in its events' transaction.

- `ctilink_networks`: one row per network, its line (projections/overview.py)
  at its last position, so that listing 100,000 networks reads rows rather than
  folding 100,000 logs. A line only ever moves to a later position.
- `ctilink_damaged`: the networks whose log could not be folded when the index
  was last built, so that listings still name them (`verify` says what is wrong).

Builds (adapters/store/maintenance/reindex.py) run beside writers, a page at a time: a
build takes a token in `ctilink_meta` when it starts and marks the index
complete only if it still holds the token when it ends, so of two builds at
once only the later completes it, and a build that dies completes nothing.

`NetworkTables` is mixed into the SQLite and PostgreSQL recorders beside
`InboundTables` and `IndexTables`, which supply the names and placeholders.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from ctilink.adapters.store.persistence.ids import RecorderParts
from ctilink.domain.messages import is_name
from ctilink.projections.overview import Overview

NETWORKS_COMPLETE = "networks"
NETWORKS_BUILD = "networks-build"  # the token of the build in progress
COLUMNS = (
    "network, position, setting, configured, effective, restart_pending, converted, "
    "available, unavailable, not_configured, recorded"
)
SORTS = {"position": "position", "last_event": "recorded", "unavailable": "unavailable"}


class Filters(msgspec.Struct, frozen=True):
    """Which networks a listing shows: a page of them, sorted by name, after `after`."""

    after: str | None = None
    limit: int | None = None  # None: every one
    effective: str | None = None
    restart_pending: bool | None = None
    name_prefix: str | None = None
    # Another order than by name: one of SORTS, greatest first, then by name;
    # its pages go by `offset` (`after` pages by name only).
    sort: str | None = None
    offset: int = 0

    def admits(self, row: Overview) -> bool:
        """Whether a network's line passes the filters (not the page bounds)."""
        return (
            (self.effective is None or row.effective == self.effective)
            and (self.restart_pending is None or row.restart_pending == self.restart_pending)
            and (self.name_prefix is None or row.network.startswith(self.name_prefix))
        )

    def names(self, name: str) -> bool:
        """Whether a name is within the page bounds and the prefix."""
        return (self.after is None or name > self.after) and (
            self.name_prefix is None or name.startswith(self.name_prefix)
        )


class NetworkTables(RecorderParts):
    """Create, write and read the network index; the recorder supplies names and placeholders."""

    def network_statements(self, clustered: str = "", binary: str = "") -> list[str]:
        """CREATE statements for the network index, in the store's column types.

        `binary`: the collation that orders names by code point, as Python does
        (PostgreSQL's default follows the locale, so pages would not be in name order).
        """
        return [
            f"CREATE TABLE IF NOT EXISTS {self.table('ctilink_networks')} ("
            f"network TEXT{binary} PRIMARY KEY, position BIGINT NOT NULL, setting TEXT NOT NULL, "
            "configured TEXT NOT NULL, effective TEXT NOT NULL, "
            "restart_pending INTEGER NOT NULL, converted INTEGER NOT NULL, "
            "available INTEGER NOT NULL, unavailable INTEGER NOT NULL, "
            f"not_configured INTEGER NOT NULL, recorded TEXT NOT NULL){clustered}",
            f"CREATE TABLE IF NOT EXISTS {self.table('ctilink_damaged')} ("
            f"network TEXT{binary} PRIMARY KEY, position BIGINT NOT NULL, reason TEXT NOT NULL)",
        ]

    # --- writing --------------------------------------------------------------------------

    def write_networks(self, cursor: Any, rows: Sequence[Overview]) -> None:
        """Set the networks' lines inside the events' transaction."""
        if rows:
            # In name order, as builds write theirs: two transactions that take
            # the same rows' locks in one order cannot deadlock (PostgreSQL).
            values = sorted(network_values(row) for row in rows)
            cursor.executemany(self.network_upsert, values)

    def put_networks(self, rows: Sequence[Overview]) -> None:
        """Set networks' lines in a transaction of their own (building the index)."""
        if rows:
            self.execute_many(self.network_upsert, sorted(network_values(row) for row in rows))

    @property
    def network_upsert(self) -> str:
        """Insert a network's line, or replace it by a later one (never by an earlier one)."""
        q, table = self.mark, self.table("ctilink_networks")
        columns = COLUMNS.split(", ")
        changes = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
        # Monotonic, so that a build racing a writer cannot put back an older line.
        return (
            f"INSERT INTO {table} ({COLUMNS}) VALUES ({', '.join([q] * len(columns))}) "
            f"ON CONFLICT (network) DO UPDATE SET {changes} "
            "WHERE excluded.position > ctilink_networks.position"
        )

    def put_damaged(self, rows: Sequence[tuple[str, int, str]]) -> None:
        """Name the networks whose logs could not be folded: (network, position, reason)."""
        if rows:
            q = self.mark
            self.execute_many(
                f"INSERT INTO {self.table('ctilink_damaged')} VALUES ({q}, {q}, {q}) "
                "ON CONFLICT (network) DO UPDATE SET position = excluded.position, "
                "reason = excluded.reason",
                sorted(rows),
            )

    # --- building -------------------------------------------------------------------------

    def start_networks_build(self, token: str) -> None:
        """Take the build over: incomplete, emptied, the token this build's."""
        q, meta = self.mark, self.table("ctilink_meta")
        with self.exclusive() as cursor:
            cursor.execute(
                f"DELETE FROM {meta} WHERE key IN ({q}, {q})", (NETWORKS_COMPLETE, NETWORKS_BUILD)
            )
            cursor.execute(f"INSERT INTO {meta} VALUES ({q}, {q})", (NETWORKS_BUILD, token))
            cursor.execute(f"DELETE FROM {self.table('ctilink_networks')}", ())
            cursor.execute(f"DELETE FROM {self.table('ctilink_damaged')}", ())

    def finish_networks_build(self, token: str) -> bool:
        """Mark the index complete if this build still holds the token (False: superseded)."""
        q, meta = self.mark, self.table("ctilink_meta")
        with self.exclusive() as cursor:
            cursor.execute(f"SELECT value FROM {meta} WHERE key = {q}", (NETWORKS_BUILD,))
            held = self.fetch(cursor)
            if not held or held[0][0] != token:
                return False  # another build took over since, and completes it
            cursor.execute(f"DELETE FROM {meta} WHERE key = {q}", (NETWORKS_BUILD,))
            cursor.execute(f"INSERT INTO {meta} VALUES ({q}, '1')", (NETWORKS_COMPLETE,))
        return True

    def forget_networks_index(self) -> None:
        """Mark the index incomplete (a table found missing): the next write-open builds it."""
        q, meta = self.mark, self.table("ctilink_meta")
        with self.exclusive() as cursor:
            cursor.execute(f"DELETE FROM {meta} WHERE key = {q}", (NETWORKS_COMPLETE,))

    # --- reading --------------------------------------------------------------------------

    def networks_complete(self) -> bool:
        """Whether the index was built over the whole log, and its tables are there."""
        try:
            rows = self.query(
                f"SELECT value FROM {self.table('ctilink_meta')} WHERE key = {self.mark}",
                (NETWORKS_COMPLETE,),
            )
            if rows:  # a table dropped by hand leaves the mark behind
                self.query(f"SELECT 1 FROM {self.table('ctilink_networks')} LIMIT 1", ())
                self.query(f"SELECT 1 FROM {self.table('ctilink_damaged')} LIMIT 1", ())
        except Exception:  # a store from before the index, opened read-only: no tables
            return False
        return bool(rows)

    def list_networks(self, filters: Filters) -> list[Overview]:
        """The networks' lines that pass the filters, sorted by name (ValueError: a bad row)."""
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
        if filters.offset:
            limit += f" OFFSET {int(filters.offset)}"
        # Only names from SORTS reach the SQL: never the text a reader sent.
        order = "network" if filters.sort is None else f"{SORTS[filters.sort]} DESC, network"
        rows = self.query(
            f"SELECT {COLUMNS} FROM {self.table('ctilink_networks')} "
            f"WHERE {' AND '.join(where)} ORDER BY {order}{limit}",
            tuple(params),
        )
        return [overview_of(row) for row in rows]

    def network_line(self, network: str) -> Overview | None:
        """One network's line, as the index holds it (None: none; ValueError: a bad row)."""
        rows = self.query(
            f"SELECT {COLUMNS} FROM {self.table('ctilink_networks')} WHERE network = {self.mark}",
            (network,),
        )
        return overview_of(rows[0]) if rows else None

    def indexed_names(self) -> list[Any]:
        """The names the network index holds a line for (as stored: maybe not text)."""
        return [
            row[0]
            for row in self.query(f"SELECT network FROM {self.table('ctilink_networks')}", ())
        ]

    def network_totals(self) -> list[tuple[str, int, int, int, int, int]]:
        """Per effective mode: networks, component rows by state, restarts pending."""
        rows = self.query(
            # Every computed column named: PostgreSQL calls each SUM(...) `sum`.
            "SELECT effective, COUNT(*) AS networks, SUM(available) AS available, "
            "SUM(unavailable) AS unavailable, SUM(not_configured) AS not_configured, "
            f"SUM(restart_pending) AS restart_pending FROM {self.table('ctilink_networks')} "
            "GROUP BY effective",
            (),
        )
        return [(str(r[0]), *(int(v or 0) for v in r[1:])) for r in rows]  # type: ignore[misc]

    def damaged_networks(self) -> list[tuple[str, int, str]]:
        """The networks the last build could not fold: (network, position, reason), by name."""
        rows = self.query(
            f"SELECT network, position, reason FROM {self.table('ctilink_damaged')} "
            "ORDER BY network",
            (),
        )
        return [(str(row[0]), int(row[1]), str(row[2])) for row in rows]


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
    """A network's line from the table's columns, each of exactly its type (ValueError if not)."""
    name = row[0]
    if not is_name(name):
        raise ValueError(f"a line names the network {name!r}, not a network name")
    for column, value in zip(COLUMNS.split(", ")[1:], row[1:], strict=True):
        if column in ("restart_pending", "converted"):
            fits = type(value) is int and value in (0, 1)
        elif column in ("setting", "configured", "effective", "recorded"):
            fits = isinstance(value, str)
        else:  # a position or a count
            fits = type(value) is int and value >= 0
        if not fits:
            raise ValueError(f"the line of {name!r} has {column} {value!r}")
    try:
        recorded = datetime.fromisoformat(row[10])
    except ValueError:
        raise ValueError(f"the line of {name!r} has recorded {row[10]!r}, not a time") from None
    if recorded.tzinfo is None:
        raise ValueError(f"the line of {name!r} has recorded {row[10]!r}, without an offset")
    return Overview(
        network=name,
        position=row[1],
        setting=row[2],
        configured=row[3],
        effective=row[4],
        restart_pending=bool(row[5]),
        converted=bool(row[6]),
        available=row[7],
        unavailable=row[8],
        not_configured=row[9],
        recorded=recorded,
    )
