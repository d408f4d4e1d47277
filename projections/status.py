"""The status document of SPEC §8: mode, providers and component rows (§4–§6)."""

from __future__ import annotations

import msgspec

from domain.mode import Mode, shown_setting
from domain.rules import CENTRAL_PLATFORM
from domain.state import NetworkState
from projections.providers import KINDS, Provider, providers


class ModeView(msgspec.Struct, frozen=True):
    """The mode block of the status document."""

    setting: str
    configured: str
    effective: str
    restart_pending: bool
    converted: bool
    central_available: bool


class ComponentRow(msgspec.Struct, frozen=True):
    """One system's component (C1)."""

    system: str
    role: str
    component: str
    state: str
    via: str | None


class Status(msgspec.Struct, frozen=True):
    """The whole status document, keys in the order of §8."""

    network: str
    position: int
    mode: ModeView
    providers: list[Provider]
    components: list[ComponentRow]


def mode_view(state: NetworkState) -> ModeView:
    """M3–M5 as the status document shows them."""
    return ModeView(
        setting=shown_setting(state.configured).value,
        configured=state.configured.value,
        effective=state.effective.value,
        restart_pending=state.configured != state.effective,
        converted=state.converted,
        central_available=state.platform == CENTRAL_PLATFORM,
    )


def _healthy(state: NetworkState, system: str | None) -> bool:
    """The system is in the network and not failed over."""
    return system is not None and system in state.systems and system not in state.failed


def via(state: NetworkState, system: str, kind: str, active: set[tuple[str, str]]) -> str | None:
    """C2: the system whose provider serves this row, or None."""
    secondary = state.role_holder("secondary")
    standby = secondary if state.resilience and _healthy(state, secondary) else None
    if state.effective is Mode.CENTRAL:
        primary = state.role_holder("primary")
        if primary is None:
            return None
        return primary if primary not in state.failed else standby
    if (kind, system) not in active:
        return None
    if system not in state.failed:
        return system
    if standby is not None and (kind, standby) in active:
        return standby
    return None


def component_rows(state: NetworkState, active: set[tuple[str, str]]) -> list[ComponentRow]:
    """C1–C3: one row per system and component, sorted by system then component."""
    central = state.effective is Mode.CENTRAL
    rows = []
    for name in sorted(state.systems):
        role = state.systems[name].role
        for kind in KINDS:
            served_by = via(state, name, kind, active)
            if served_by is not None and state.links.get(served_by, {}).get(kind) is True:
                row_state = "available"
            elif not central and (kind, name) not in active:
                row_state = "not_configured"
            else:
                row_state = "unavailable"
            rows.append(ComponentRow(name, role, kind, row_state, served_by))
    return rows


def status(state: NetworkState, position: int) -> Status:
    """The status document right after `position`."""
    provider_set = providers(state)
    active = {(p.kind, p.target) for p in provider_set if p.kind in KINDS}
    return Status(
        network=state.name,
        position=position,
        mode=mode_view(state),
        providers=provider_set,
        components=component_rows(state, active),
    )
