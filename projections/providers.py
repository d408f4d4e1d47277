"""The provider set of SPEC §5, a pure function of the network state."""

from __future__ import annotations

import msgspec

from ctilink.domain.mode import Mode
from ctilink.domain.state import NetworkState

KINDS = ("csta", "dsml")


class Provider(msgspec.Struct, frozen=True, order=True):
    """A connection the portal holds; sorts by kind, then target (§8)."""

    kind: str
    target: str
    origin: str


def manual_records(state: NetworkState) -> list[tuple[str, str]]:
    """Manual (kind, system) records whose system is in the network (P2, P5)."""
    records = (record.split(":", 1) for record in state.manual)
    return [(kind, system) for kind, system in records if system in state.systems]


def central_targets(state: NetworkState) -> list[str]:
    """P1: the primary, and the secondary while resilience is on."""
    targets = []
    primary = state.role_holder("primary")
    if primary is not None:
        targets.append(primary)
    secondary = state.role_holder("secondary")
    if state.resilience and secondary is not None:
        targets.append(secondary)
    return targets


def providers(state: NetworkState) -> list[Provider]:
    """Every provider the portal must hold in the effective mode, sorted."""
    mode = state.effective
    result: list[Provider] = []
    if mode is Mode.CENTRAL:
        result += [Provider(k, t, "central") for t in central_targets(state) for k in KINDS]
    else:
        manual = manual_records(state)
        result += [Provider(kind, system, "manual") for kind, system in manual]
        if mode is Mode.LEGACY_AUTO:
            # P3: auto providers fill every (system, kind) with no manual record.
            have = set(manual)
            result += [
                Provider(kind, system, "auto")
                for system in state.systems
                for kind in KINDS
                if (kind, system) not in have
            ]
    if state.voicemail is not None:
        result.append(Provider("voicemail", state.voicemail, "auto"))  # P4
    result.sort()
    return result
