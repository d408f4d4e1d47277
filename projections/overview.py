"""One network in a line: what the listings and the console's overview show."""

from __future__ import annotations

from datetime import datetime

import msgspec

from ctilink.domain.state import NetworkState
from ctilink.projections.providers import providers
from ctilink.projections.status import component_rows, mode_view, serving

COMPONENT_STATES = ("available", "unavailable", "not_configured")


class Overview(msgspec.Struct, frozen=True):
    """A network at its last position: mode, pending restart, component rows by state."""

    network: str
    position: int
    setting: str  # as the status document shows it (M3)
    configured: str
    effective: str
    restart_pending: bool
    converted: bool
    available: int  # component rows (C1–C3) in each state
    unavailable: int
    not_configured: int
    recorded: datetime  # the last event's `at`, else when it was received


def overview(state: NetworkState, position: int, recorded: datetime) -> Overview:
    """The network's line right after `position` (`recorded`: that event's time)."""
    mode = mode_view(state)
    counts = dict.fromkeys(COMPONENT_STATES, 0)
    for row in component_rows(state, serving(state, providers(state))):
        counts[row.state] += 1
    return Overview(
        network=state.name,
        position=position,
        setting=mode.setting,
        configured=mode.configured,
        effective=mode.effective,
        restart_pending=mode.restart_pending,
        converted=mode.converted,
        available=counts["available"],
        unavailable=counts["unavailable"],
        not_configured=counts["not_configured"],
        recorded=recorded,
    )
