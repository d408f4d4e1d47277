"""The listings of networks: rows of the network index, or, for a store from before it, folds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from ctilink.adapters.errors import UserError
from ctilink.adapters.store.persistence.codec import first_line
from ctilink.adapters.store.queries.log import heads
from ctilink.adapters.store.queries.networks import (
    SORTS,
    Filters,
    damaged_networks,
    list_networks,
    network_line,
)
from ctilink.domain.application import NetworkService
from ctilink.domain.errors import DamagedLog
from ctilink.domain.network import recorded_at
from ctilink.projections.overview import Overview, overview


class DamagedIndex(UserError):
    """A row of the network index cannot be read."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"the network index cannot be read ({reason}); `ctilink reindex` rebuilds it"
        )


LISTING_PAGE = 5_000  # index rows read at a time by a whole listing


def network_lines(
    service: NetworkService, filters: Filters
) -> tuple[list[Overview], list[DamagedLog]]:
    """The networks that pass the filters, sorted by name; and the damaged ones passed over."""
    damaged: list[DamagedLog] = []
    return list(each_line(service, filters, damaged)), damaged


def each_line(
    service: NetworkService, filters: Filters, damaged: list[DamagedLog]
) -> Iterator[Overview]:
    """The lines that pass the filters, by name, a page at a time; damaged logs into `damaged`."""
    recorder: Any = service.recorder
    if not recorder.networks_complete():
        # A store from before the index, opened only to read: fold every log, as before.
        if filters.sort is None:
            yield from _folded(service, filters, damaged)
            return
        every = msgspec.structs.replace(filters, limit=None, sort=None, offset=0)
        key = SORTS[filters.sort]
        ordered = sorted(
            _folded(service, every, damaged), key=lambda line: getattr(line, key), reverse=True
        )
        end = None if filters.limit is None else filters.offset + filters.limit
        yield from ordered[filters.offset : end]
        return
    # Networks whose log could not be folded when the index was built have no
    # line: they are named, as a fold would name them.
    for name, position, reason in damaged_networks(recorder):
        if filters.names(name) and _line(recorder, name) is None:
            damaged.append(DamagedLog(name, position, reason))
    if filters.sort is not None:  # one page, in that order (offset paging)
        yield from _page(recorder, filters)
        return
    left = filters.limit
    after = filters.after
    while left is None or left > 0:
        size = LISTING_PAGE if left is None else min(left, LISTING_PAGE)
        page = _page(recorder, msgspec.structs.replace(filters, after=after, limit=size))
        yield from page
        if len(page) < size:
            return
        after = page[-1].network
        left = None if left is None else left - len(page)


def _page(recorder: Any, filters: Filters) -> list[Overview]:
    """One page of index rows (DamagedIndex: a row cannot be read)."""
    return _reading(list_networks, recorder, filters)


def _line(recorder: Any, name: str) -> Overview | None:
    """One network's index line (DamagedIndex: it cannot be read)."""
    return _reading(network_line, recorder, name)


def _reading(read: Any, *args: Any) -> Any:
    """A read of the index; a row edited by hand is DamagedIndex, told in one line."""
    try:
        return read(*args)
    except (ValueError, TypeError) as error:
        raise DamagedIndex(first_line(error)) from None


def _folded(
    service: NetworkService, filters: Filters, damaged: list[DamagedLog]
) -> Iterator[Overview]:
    """The lines folded from each log, for a store without the network index."""
    recorder: Any = service.recorder
    listed = 0
    for name, _ in heads(recorder):
        if filters.limit is not None and listed == filters.limit:
            return
        if filters.after is not None and name <= filters.after:
            continue
        if filters.name_prefix is not None and not name.startswith(filters.name_prefix):
            continue
        try:
            line = folded_line(service, name)
        except DamagedLog as error:  # the healthy networks are listed all the same
            damaged.append(error)
            continue
        if filters.admits(line):
            listed += 1
            yield line


def folded_line(service: NetworkService, name: str) -> Overview:
    """A network's line at its last position, folded from the log (DamagedLog: it cannot be)."""
    network = service.latest(name, hold=False)
    try:
        (last,) = service.events.get(name, gt=network.version - 1, lte=network.version)
    except Exception as error:  # a damaged row fails in many ways
        raise DamagedLog(name, network.version, f"its row cannot be decoded: {error}") from None
    return overview(network.state, network.version, recorded_at(last))
