"""The checks of SPEC §3–§7, in the order I2 gives: installation, systems, own rule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ctilink.domain import messages as m
from ctilink.domain.errors import Code, Rejected
from ctilink.domain.mode import (
    CENTRAL_PLATFORM,
    central_available,
    next_mode,
    setting_trigger,
    shown_setting,
)
from ctilink.domain.state import NetworkState

MAX_PERSONAL_ENTRIES = 250
MAX_DIRECTORY_ENTRIES = 10_000
UNIQUE_ROLES = ("primary", "secondary")


def check_installation(state: NetworkState | None, message: m.Message) -> None:
    """I5: everything but `portal_installed` needs an installed network; install once."""
    if isinstance(message, m.PortalInstalled):
        if state is not None:
            raise Rejected(
                Code.ALREADY_INSTALLED, f"network {message.network!r} is already installed"
            )
    elif state is None:
        raise Rejected(
            Code.NOT_INSTALLED, f"network {message.network!r} has no portal_installed event yet"
        )


def check_system_added(state: NetworkState, message: m.SystemAdded) -> None:
    """I6: names are unique; one primary and one secondary."""
    if message.system in state.systems:
        raise Rejected(
            Code.DUPLICATE_SYSTEM, f"system {message.system!r} is already in the network"
        )
    if message.role in UNIQUE_ROLES:
        holder = state.role_holder(message.role)
        if holder is not None:
            raise Rejected(Code.ROLE_TAKEN, f"the network already has a {message.role}: {holder!r}")


def check_system_known(state: NetworkState, message: m.Message) -> None:
    """I6: the system an event names must be in the network."""
    system = message.system  # type: ignore[union-attr]
    if system not in state.systems:
        raise Rejected(Code.UNKNOWN_SYSTEM, f"system {system!r} is not in the network")


def check_setting(state: NetworkState, message: m.Message) -> None:
    """M2–M4: where Central CTI Link exists, what is shown, conversion once."""
    enabling = isinstance(message, m.ConvertedToCentral) or (
        isinstance(message, m.CentralCtiLinkSet) and message.enabled
    )
    if enabling and not central_available(state.platform):
        raise Rejected(
            Code.CENTRAL_NOT_AVAILABLE,
            f"Central CTI Link exists only on {CENTRAL_PLATFORM}, not on {state.platform}",
        )
    if isinstance(message, m.ConvertedToCentral) and state.converted:
        raise Rejected(
            Code.ALREADY_CONVERTED, "the network was already converted to Central CTI Link"
        )
    if next_mode(state.configured, setting_trigger(message)) is None:
        shown = shown_setting(state.configured)
        raise Rejected(
            Code.WRONG_SETTING, f"{m.type_of(message)} does not apply while {shown} is shown"
        )


def check_user(state: NetworkState, message: m.Message) -> None:
    """D3: personal directories come from the user's host, at most 250 entries."""
    if message.user not in state.users:
        raise Rejected(Code.UNKNOWN_USER, f"user {message.user!r} is not known in the network")
    if isinstance(message, m.PersonalDirectoryChanged):
        host = state.users[message.user]
        if message.system != host:
            raise Rejected(
                Code.NOT_HOST_SYSTEM,
                f"user {message.user!r} is homed on {host!r}, not on {message.system!r}",
            )
        if len(message.entries) > MAX_PERSONAL_ENTRIES:
            raise Rejected(
                Code.TOO_MANY_ENTRIES,
                f"a personal directory holds at most {MAX_PERSONAL_ENTRIES} entries, "
                f"got {len(message.entries)}",
            )


def check_directory_size(state: NetworkState, message: m.DirectoryChanged) -> None:
    """D5: a system directory holds at most 10,000 entries (checked after I6)."""
    if len(message.entries) > MAX_DIRECTORY_ENTRIES:
        raise Rejected(
            Code.TOO_MANY_ENTRIES,
            f"a system directory holds at most {MAX_DIRECTORY_ENTRIES:,} entries, "
            f"got {len(message.entries):,}",
        )


Check = Callable[[NetworkState, Any], None]
SETTING_EVENTS = (m.CentralCtiLinkSet, m.AutoProvisioningSet, m.ConvertedToCentral)
USER_EVENTS = (m.UserRemoved, m.PersonalDirectoryChanged)


def _checks_for(cls: type) -> tuple[Check, ...]:
    """The checks an installed network runs for one event type, in I2's order."""
    checks: list[Check] = []
    if cls is m.SystemAdded:
        checks.append(check_system_added)
    elif "system" in cls.__struct_fields__ and cls is not m.ProviderRemoved:
        checks.append(check_system_known)  # I6's exceptions: system_added, provider_removed
    if cls in SETTING_EVENTS:
        checks.append(check_setting)
    if cls in USER_EVENTS:
        checks.append(check_user)
    if cls is m.DirectoryChanged:
        checks.append(check_directory_size)
    return tuple(checks)


# Decided once per type, so checking an event is a lookup and a few calls.
CHECKS: dict[type, tuple[Check, ...]] = {cls: _checks_for(cls) for cls in m.Message.__args__}


def check(state: NetworkState | None, message: m.Message) -> None:
    """Raise Rejected when `message` may not be appended to a network in `state`."""
    cls = type(message)
    if state is None or cls is m.PortalInstalled:
        check_installation(state, message)
        return
    for rule in CHECKS[cls]:
        rule(state, message)
