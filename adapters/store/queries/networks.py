"""The network index as the listings read it: pages of lines, one line, totals, damaged logs.

The rows are written by adapters/store/persistence/network_index.py; these
reads serve `ctilink networks`, `ctilink.api.networks`, the console, the
metrics and `verify`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from ctilink.adapters.store.persistence.dialect import RecorderParts
from ctilink.adapters.store.persistence.network_index import COLUMNS
from ctilink.domain.messages import is_name
from ctilink.projections.overview import Overview

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


def list_networks(
    recorder: RecorderParts, filters: Filters, holding: str | None = None
) -> list[Overview]:
    """The networks' lines that pass the filters, sorted by name (ValueError: a bad row);
    with `holding`, only those whose name holds that text, in any case."""
    q = recorder.mark
    where, params = ["1 = 1"], []
    if holding is not None:
        # Names hold only [A-Za-z0-9_-]: `_` is the one character LIKE needs escaped.
        where.append(f"lower(network) LIKE {q} ESCAPE '!'")
        params.append("%" + holding.lower().replace("_", "!_") + "%")
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
    rows = recorder.query(
        f"SELECT {COLUMNS} FROM {recorder.table('ctilink_networks')} "
        f"WHERE {' AND '.join(where)} ORDER BY {order}{limit}",
        tuple(params),
    )
    return [overview_of(row) for row in rows]


def network_line(recorder: RecorderParts, network: str) -> Overview | None:
    """One network's line, as the index holds it (None: none; ValueError: a bad row)."""
    table = recorder.table("ctilink_networks")
    rows = recorder.query(
        f"SELECT {COLUMNS} FROM {table} WHERE network = {recorder.mark}", (network,)
    )
    return overview_of(rows[0]) if rows else None


def indexed_names(recorder: RecorderParts) -> list[Any]:
    """The names the network index holds a line for (as stored: maybe not text)."""
    return [
        row[0]
        for row in recorder.query(f"SELECT network FROM {recorder.table('ctilink_networks')}", ())
    ]


def network_totals(recorder: RecorderParts) -> list[tuple[str, int, int, int, int, int]]:
    """Per effective mode: networks, component rows by state, restarts pending."""
    rows = recorder.query(
        # Every computed column named: PostgreSQL calls each SUM(...) `sum`.
        "SELECT effective, COUNT(*) AS networks, SUM(available) AS available, "
        "SUM(unavailable) AS unavailable, SUM(not_configured) AS not_configured, "
        f"SUM(restart_pending) AS restart_pending FROM {recorder.table('ctilink_networks')} "
        "GROUP BY effective",
        (),
    )
    return [(str(r[0]), *(int(v or 0) for v in r[1:])) for r in rows]  # type: ignore[misc]


def damaged_networks(recorder: RecorderParts) -> list[tuple[str, int, str]]:
    """The networks the last build could not fold: (network, position, reason), by name."""
    rows = recorder.query(
        f"SELECT network, position, reason FROM {recorder.table('ctilink_damaged')} "
        "ORDER BY network",
        (),
    )
    return [(str(row[0]), int(row[1]), str(row[2])) for row in rows]


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
