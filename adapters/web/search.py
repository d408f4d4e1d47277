"""Search: networks whose name holds some text, and directory entries that hold it.

Networks are searched in the network index by the listing's own query
(adapters/store/queries/networks.py, with a `LIKE` on the lower-cased name): one
page at a time, in the index's orders. A store from before the index, opened
only to read, is searched over its folded lines instead.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

import msgspec

from ctilink.adapters.store.queries.listing import each_line
from ctilink.adapters.store.queries.networks import Filters, list_networks
from ctilink.domain.application import NetworkService
from ctilink.projections.overview import Overview


def networks_holding(service: NetworkService, text: str, filters: Filters) -> list[Overview]:
    """The lines of the networks whose name holds `text` (any case) and that pass `filters`."""
    recorder: Any = service.recorder
    if not recorder.networks_complete():
        every = msgspec.structs.replace(filters, limit=None)
        found = (line for line in each_line(service, every, []) if holds(line.network, text))
        return list(islice(found, filters.limit))
    return list_networks(
        recorder, msgspec.structs.replace(filters, limit=filters.limit or 1000), text
    )


def holds(value: str, text: str) -> bool:
    """Whether `value` holds `text`, whatever the case of either."""
    return text.casefold() in value.casefold()


def any_holds(text: str, *values: str | None) -> bool:
    """Whether one of the values holds `text` (None holds nothing)."""
    return any(value is not None and holds(value, text) for value in values)
