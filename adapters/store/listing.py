"""The listings of networks: rows of the network index, or, for a store from before it, folds."""

from __future__ import annotations

from typing import Any

from ctilink.adapters.errors import UserError
from ctilink.adapters.store.indexes import NETWORKS_COMPLETE, Filters
from ctilink.adapters.store.service import StoredNetworks
from ctilink.domain.errors import DamagedLog
from ctilink.domain.network import recorded_at
from ctilink.projections.overview import Overview, overview


class DamagedIndex(UserError):
    """A row of the network index cannot be read."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"the network index cannot be read ({reason}); `ctilink reindex` rebuilds it"
        )


def network_lines(
    service: StoredNetworks, filters: Filters
) -> tuple[list[Overview], list[DamagedLog]]:
    """The networks that pass the filters, sorted by name; and the damaged ones passed over."""
    recorder: Any = service.recorder
    if recorder.index_complete(NETWORKS_COMPLETE):
        try:
            return recorder.list_networks(filters), []
        except (ValueError, TypeError) as error:  # a row edited by hand
            raise DamagedIndex(str(error).splitlines()[0] if str(error) else "a bad row") from None
    # A store from before the index, opened only to read: fold every log, as before.
    lines: list[Overview] = []
    damaged: list[DamagedLog] = []
    for name, _ in recorder.heads():
        if filters.limit is not None and len(lines) == filters.limit:
            break
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
            lines.append(line)
    return lines, damaged


def folded_line(service: StoredNetworks, name: str) -> Overview:
    """A network's line at its last position, folded from the log (DamagedLog: it cannot be)."""
    network = service.latest(name, hold=False)
    try:
        (last,) = service.events.get(name, gt=network.version - 1, lte=network.version)
    except Exception as error:  # a damaged row fails in many ways
        raise DamagedLog(name, network.version, f"its row cannot be decoded: {error}") from None
    return overview(network.state, network.version, recorded_at(last))
