"""Search: networks whose name holds some text, and directory entries that hold it.

Networks are searched in the network index with a query of its own (as
adapters/store/queries/networks.py reads it, plus a `LIKE` on the lower-cased name;
names hold only `[A-Za-z0-9_-]`, so `_` is the one character to escape): one
page at a time, in the index's orders. A store from before the index, opened
only to read, is searched over its folded lines instead.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

import msgspec

from ctilink.adapters.store.persistence.network_index import COLUMNS
from ctilink.adapters.store.queries.listing import each_line
from ctilink.adapters.store.queries.networks import SORTS, Filters, overview_of
from ctilink.domain.application import NetworkService
from ctilink.projections.overview import Overview


def networks_holding(service: NetworkService, text: str, filters: Filters) -> list[Overview]:
    """The lines of the networks whose name holds `text` (any case) and that pass `filters`."""
    recorder: Any = service.recorder
    if not recorder.networks_complete():
        every = msgspec.structs.replace(filters, limit=None)
        found = (line for line in each_line(service, every, []) if holds(line.network, text))
        return list(islice(found, filters.limit))
    q = recorder.mark
    where = [f"lower(network) LIKE {q} ESCAPE '!'"]
    params: list[Any] = ["%" + text.lower().replace("_", "!_") + "%"]
    if filters.after is not None:
        where.append(f"network > {q}")
        params.append(filters.after)
    if filters.name_prefix:
        where.append(f"substr(network, 1, {q}) = {q}")
        params += [len(filters.name_prefix), filters.name_prefix]
    if filters.effective is not None:
        where.append(f"effective = {q}")
        params.append(filters.effective)
    if filters.restart_pending is not None:
        where.append(f"restart_pending = {q}")
        params.append(int(filters.restart_pending))
    # Only names from SORTS reach the SQL: never the text a reader sent.
    order = "network" if filters.sort is None else f"{SORTS[filters.sort]} DESC, network"
    rows = recorder.query(
        f"SELECT {COLUMNS} FROM {recorder.table('ctilink_networks')} "
        f"WHERE {' AND '.join(where)} ORDER BY {order} "
        f"LIMIT {int(filters.limit or 1000)} OFFSET {int(filters.offset)}",
        tuple(params),
    )
    return [overview_of(row) for row in rows]


def holds(value: str, text: str) -> bool:
    """Whether `value` holds `text`, whatever the case of either."""
    return text.casefold() in value.casefold()


def any_holds(text: str, *values: str | None) -> bool:
    """Whether one of the values holds `text` (None holds nothing)."""
    return any(value is not None and holds(value, text) for value in values)
