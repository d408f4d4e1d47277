"""The status document of SPEC §8: mode, providers and component rows (§4–§6)."""

from __future__ import annotations

import msgspec

from ctilink.domain.mode import Mode, central_available, shown_setting
from ctilink.domain.state import NetworkState
from ctilink.projections.providers import KINDS, Provider, providers


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
        central_available=central_available(state.platform),
    )


class Serving(msgspec.Struct, frozen=True):
    """What C2 needs to know once per network, not once per row."""

    central: bool
    primary: str | None
    standby: str | None  # the secondary, when it can take over (resilience, healthy)
    active: frozenset[tuple[str, str]]  # (kind, system) of active csta/dsml providers
    failed: frozenset[str]


def serving(state: NetworkState, provider_set: list[Provider]) -> Serving:
    """Collect the facts that decide every row's `via`."""
    secondary = state.role_holder("secondary")
    healthy = secondary is not None and secondary not in state.failed
    return Serving(
        central=state.effective is Mode.CENTRAL,
        primary=state.role_holder("primary"),
        standby=secondary if state.resilience and healthy else None,
        active=frozenset((p.kind, p.target) for p in provider_set if p.kind in KINDS),
        failed=frozenset(state.failed),
    )


def via(serve: Serving, system: str, kind: str) -> str | None:
    """C2: the system whose provider serves this row, or None."""
    if serve.central:
        if serve.primary is None:
            return None
        return serve.primary if serve.primary not in serve.failed else serve.standby
    if (kind, system) not in serve.active:
        return None
    if system not in serve.failed:
        return system
    if serve.standby is not None and (kind, serve.standby) in serve.active:
        return serve.standby
    return None


def component_rows(state: NetworkState, serve: Serving) -> list[ComponentRow]:
    """C1–C3: one row per system and component, sorted by system then component."""
    rows = []
    for name in sorted(state.systems):
        role = state.systems[name].role
        for kind in KINDS:
            served_by = via(serve, name, kind)
            if served_by is not None and state.links.get(served_by, {}).get(kind) is True:
                row_state = "available"
            elif not serve.central and (kind, name) not in serve.active:
                row_state = "not_configured"
            else:
                row_state = "unavailable"
            rows.append(ComponentRow(name, role, kind, row_state, served_by))
    return rows


def status(state: NetworkState, position: int) -> Status:
    """The status document right after `position`."""
    provider_set = providers(state)
    return Status(
        network=state.name,
        position=position,
        mode=mode_view(state),
        providers=provider_set,
        components=component_rows(state, serving(state, provider_set)),
    )
