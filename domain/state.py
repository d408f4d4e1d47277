"""A network's state, and the fold step that applies one accepted event to it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from ctilink.domain import messages as m
from ctilink.domain.mode import Mode, initial_mode, next_mode, setting_trigger


class System(msgspec.Struct, frozen=True, gc=False):
    """One IP Office in the network."""

    role: str
    platform: str
    address: str


class NetworkState(msgspec.Struct, kw_only=True):
    """Everything the rules and the projections need about one network."""

    name: str
    platform: str
    configured: Mode
    effective: Mode
    converted: bool = False
    resilience: bool = False
    voicemail: str | None = None
    systems: dict[str, System] = msgspec.field(default_factory=dict)
    # Manual provider records as "kind:system"; they outlive modes and systems (P5).
    manual: set[str] = msgspec.field(default_factory=set)
    failed: set[str] = msgspec.field(default_factory=set)
    # system -> component -> last reported `up`
    links: dict[str, dict[str, bool]] = msgspec.field(default_factory=dict)
    users: dict[str, str] = msgspec.field(default_factory=dict)
    personal: dict[str, tuple[m.PersonalEntry, ...]] = msgspec.field(default_factory=dict)
    directories: dict[str, tuple[m.Entry, ...]] = msgspec.field(default_factory=dict)

    def role_holder(self, role: str) -> str | None:
        """The system holding a unique role (primary or secondary), if any."""
        for name, system in self.systems.items():
            if system.role == role:
                return name
        return None


def install(message: m.PortalInstalled) -> NetworkState:
    """The state right after `portal_installed` (M1)."""
    mode = initial_mode(message.platform, message.upgraded_from, message.auto_provisioning)
    return NetworkState(
        name=message.network, platform=message.platform, configured=mode, effective=mode
    )


Applier = Callable[[NetworkState, Any], None]
APPLIERS: dict[type, Applier] = {}


def applies(*types: type) -> Callable[[Applier], Applier]:
    """Register the fold step for some event types (one routing table, no match chain)."""

    def register(func: Applier) -> Applier:
        for cls in types:
            APPLIERS[cls] = func
        return func

    return register


def evolve(state: NetworkState, message: m.Message) -> None:
    """Apply one accepted event to the state; never raises for a checked event."""
    APPLIERS[type(message)](state, message)


def step(state: NetworkState | None, message: m.Message) -> NetworkState:
    """The fold step over a log: position 1 installs the network, every later one evolves it."""
    if state is None:
        if not isinstance(message, m.PortalInstalled):
            raise ValueError(f"a log starts with portal_installed, not {m.type_of(message)}")
        return install(message)
    evolve(state, message)
    return state


@applies(m.PortalInstalled)
def _installed(state: NetworkState, message: m.PortalInstalled) -> None:
    """Position 1 builds the state itself (see install); nothing more to do."""


@applies(m.PortalRestarted)
def _restarted(state: NetworkState, message: m.PortalRestarted) -> None:
    state.effective = state.configured  # M5


@applies(m.CentralCtiLinkSet, m.AutoProvisioningSet, m.ConvertedToCentral)
def _setting(state: NetworkState, message: m.Message) -> None:
    dest = next_mode(state.configured, setting_trigger(message))
    assert dest is not None, "rules.check admits only table transitions"
    state.configured = dest
    if isinstance(message, m.ConvertedToCentral):
        state.converted = True


@applies(m.ProviderConfigured)
def _provider_configured(state: NetworkState, message: m.ProviderConfigured) -> None:
    state.manual.add(f"{message.kind}:{message.system}")


@applies(m.ProviderRemoved)
def _provider_removed(state: NetworkState, message: m.ProviderRemoved) -> None:
    state.manual.discard(f"{message.kind}:{message.system}")


@applies(m.SystemAdded)
def _system_added(state: NetworkState, message: m.SystemAdded) -> None:
    state.systems[message.system] = System(message.role, message.platform, message.address)


@applies(m.SystemRemoved)
def _system_removed(state: NetworkState, message: m.SystemRemoved) -> None:
    # I7: forget links, failover and directory; manual records and users stay.
    name = message.system
    del state.systems[name]
    state.links.pop(name, None)
    state.failed.discard(name)
    state.directories.pop(name, None)


@applies(m.ResilienceSet)
def _resilience(state: NetworkState, message: m.ResilienceSet) -> None:
    state.resilience = message.enabled


@applies(m.Failover)
def _failover(state: NetworkState, message: m.Failover) -> None:
    state.failed.add(message.system)  # C4: a second failover changes nothing


@applies(m.Failback)
def _failback(state: NetworkState, message: m.Failback) -> None:
    state.failed.discard(message.system)


@applies(m.LinkChanged)
def _link(state: NetworkState, message: m.LinkChanged) -> None:
    state.links.setdefault(message.system, {})[message.component] = message.up


@applies(m.VoicemailDiscovered)
def _voicemail(state: NetworkState, message: m.VoicemailDiscovered) -> None:
    state.voicemail = message.address  # P4: the last discovered address


@applies(m.UserHomed)
def _user_homed(state: NetworkState, message: m.UserHomed) -> None:
    state.users[message.user] = message.system  # D4: a move keeps the personal directory


@applies(m.UserRemoved)
def _user_removed(state: NetworkState, message: m.UserRemoved) -> None:
    del state.users[message.user]
    state.personal.pop(message.user, None)


@applies(m.DirectoryChanged)
def _directory(state: NetworkState, message: m.DirectoryChanged) -> None:
    state.directories[message.system] = message.entries


@applies(m.PersonalDirectoryChanged)
def _personal(state: NetworkState, message: m.PersonalDirectoryChanged) -> None:
    state.personal[message.user] = message.entries
