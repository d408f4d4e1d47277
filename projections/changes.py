"""What changed: status documents compared, a log replayed, an audit trail, a time lookup.

Pure functions over status documents (ctilink.projections.status) and decoded log
messages: no I/O, no store. The adapters read the log and print what these
return (adapters/commands/history.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, cast

import msgspec

from ctilink.domain import messages as m
from ctilink.domain.state import NetworkState, step
from ctilink.projections.log import LogEntry
from ctilink.projections.providers import Provider, providers
from ctilink.projections.status import (
    ComponentRow,
    ModeView,
    Serving,
    Status,
    component_rows,
    mode_view,
    serving,
)

# --- comparing two status documents -------------------------------------------

MODE_KEYS: tuple[str, ...] = ModeView.__struct_fields__

ModeChanges = dict[str, tuple[Any, Any]]  # changed key of the mode block -> (old, new)


class ProviderChanges(msgspec.Struct, frozen=True):
    """Providers present on one side only; an origin change is one removed, one added."""

    added: list[Provider]
    removed: list[Provider]


class RowChange(msgspec.Struct, frozen=True):
    """One component row that differs; a side where the row does not exist is None."""

    system: str
    component: str
    before: ComponentRow | None
    after: ComponentRow | None


class Changes(msgspec.Struct, frozen=True):
    """Everything that differs between two status documents of one network."""

    mode: ModeChanges
    providers: ProviderChanges
    components: list[RowChange]

    @property
    def empty(self) -> bool:
        """True when the two documents differ in nothing but their position."""
        return not (self.mode or self.providers.added or self.providers.removed or self.components)


NO_PROVIDER_CHANGES = ProviderChanges([], [])
NO_CHANGES = Changes({}, NO_PROVIDER_CHANGES, [])


def mode_changes(before: ModeView | None, after: ModeView) -> ModeChanges:
    """The keys of the mode block whose value differs, as (old, new); old is None at first."""
    if before == after:
        return {}
    changed: ModeChanges = {}
    for key in MODE_KEYS:
        new = getattr(after, key)
        old = None if before is None else getattr(before, key)
        if old != new:
            changed[key] = (old, new)
    return changed


def provider_changes(before: Sequence[Provider], after: Sequence[Provider]) -> ProviderChanges:
    """Providers added and removed, each list sorted as in the status document."""
    if before == after:
        return NO_PROVIDER_CHANGES
    old, new = set(before), set(after)
    return ProviderChanges(added=sorted(new - old), removed=sorted(old - new))


def row_changes(before: Sequence[ComponentRow], after: Sequence[ComponentRow]) -> list[RowChange]:
    """Rows added, removed or changed, by (system, component), sorted like the rows (C1)."""
    if before == after:
        return []
    old = {(r.system, r.component): r for r in before}
    new = {(r.system, r.component): r for r in after}
    return [
        RowChange(system, component, old.get(key), new.get(key))
        for key in sorted(old.keys() | new.keys())
        for system, component in (key,)
        if old.get(key) != new.get(key)
    ]


def compare(before: Status | None, after: Status) -> Changes:
    """What differs from `before` to `after` (None: nothing before, so all of `after` is new)."""
    return Changes(
        mode=mode_changes(None if before is None else before.mode, after.mode),
        providers=provider_changes([] if before is None else before.providers, after.providers),
        components=row_changes([] if before is None else before.components, after.components),
    )


class Diff(msgspec.Struct, frozen=True):
    """`diff --json`: what differs between the status at two positions of one network."""

    network: str
    from_: int = msgspec.field(name="from")
    to: int
    mode: ModeChanges
    providers: ProviderChanges
    components: list[RowChange]


def diff(before: Status, after: Status) -> Diff:
    """The status document at `after.position` compared with the one at `before.position`."""
    changes = compare(before, after)
    return Diff(
        after.network,
        before.position,
        after.position,
        changes.mode,
        changes.providers,
        changes.components,
    )


# --- replaying a log ------------------------------------------------------------


class Step(msgspec.Struct, frozen=True):
    """`replay --json`: one log position and what it changed in the status document."""

    position: int
    type: str
    mode: ModeChanges
    providers: ProviderChanges
    components: list[RowChange]


# What of the status document an event can change, judged before it is applied.
NOTHING, MODE, PROVIDERS, LINK, ALL, DEPENDS = range(6)

# Users and directories (§7): the status document does not read them.
_NEUTRAL = frozenset({m.UserHomed, m.UserRemoved, m.DirectoryChanged, m.PersonalDirectoryChanged})
# Settings move only the configured mode (M5); providers and rows follow the effective one.
_SETTINGS = frozenset({m.CentralCtiLinkSet, m.AutoProvisioningSet, m.ConvertedToCentral})
_TAGS = {cls: cls.__struct_config__.tag for cls in m.Message.__args__}  # type: ignore[attr-defined]


# The part each event type can change (DEPENDS: on the state, see reach).
_PART: dict[type, int] = {
    **{cls: ALL for cls in m.Message.__args__},  # type: ignore[attr-defined]
    **{cls: NOTHING for cls in _NEUTRAL},
    **{cls: MODE for cls in _SETTINGS},
    m.LinkChanged: LINK,  # C3: only the state of rows served through that link
    m.VoicemailDiscovered: PROVIDERS,  # P4; rows read only the csta and dsml providers (C2)
    m.PortalRestarted: DEPENDS,
    m.Failover: DEPENDS,
    m.Failback: DEPENDS,
}


def reach(state: NetworkState, message: m.Message) -> int:
    """What of the status document `message` can change in `state` (before it is applied)."""
    part = _PART[type(message)]
    if part != DEPENDS:
        return part
    if isinstance(message, m.PortalRestarted):
        return ALL if state.configured != state.effective else NOTHING  # M5
    if isinstance(message, m.Failover):
        return NOTHING if message.system in state.failed else ALL  # C4
    assert isinstance(message, m.Failback)
    return ALL if message.system in state.failed else NOTHING  # C4


def replay(log: Iterable[tuple[int, m.Message]]) -> Iterator[Step]:
    """Fold a log from position 1 and say what each position changed in the status.

    The same as comparing `status` right before and right after every position,
    but each event rebuilds only the part of the document it can change (`reach`):
    most positions of a long log are link changes and directories.
    tests/test_history.py checks the equivalence on generated logs.
    """
    state: NetworkState | None = None
    mode: ModeView | None = None
    provider_set: list[Provider] = []
    rows: list[ComponentRow] = []
    serve: Serving | None = None
    served: frozenset[tuple[str | None, str]] = frozenset()
    link: m.LinkChanged | None = None
    was: bool | None = None
    for position, message in log:
        kind = _TAGS[type(message)]
        if state is None:
            part = ALL
        else:
            part = reach(state, message)
            if part == LINK:
                link = cast(m.LinkChanged, message)
                was = state.links.get(link.system, {}).get(link.component)
        state = step(state, message)
        if part == NOTHING:
            yield Step(position, kind, {}, NO_PROVIDER_CHANGES, [])
        elif part == LINK:
            assert link is not None and serve is not None
            if was == link.up or (link.system, link.component) not in served:
                yield Step(position, kind, {}, NO_PROVIDER_CHANGES, [])
                continue
            new_rows = component_rows(state, serve)
            yield Step(position, kind, {}, NO_PROVIDER_CHANGES, row_changes(rows, new_rows))
            rows = new_rows
        elif part == MODE:
            new_mode = mode_view(state)
            yield Step(position, kind, mode_changes(mode, new_mode), NO_PROVIDER_CHANGES, [])
            mode = new_mode
        elif part == PROVIDERS:
            new_providers = providers(state)
            changed = provider_changes(provider_set, new_providers)
            yield Step(position, kind, {}, changed, [])
            provider_set = new_providers
        else:
            new_mode = mode_view(state)
            new_providers = providers(state)
            serve = serving(state, new_providers)
            new_rows = component_rows(state, serve)
            yield Step(
                position,
                kind,
                mode_changes(mode, new_mode),
                provider_changes(provider_set, new_providers),
                row_changes(rows, new_rows),
            )
            mode, provider_set, rows = new_mode, new_providers, new_rows
            served = frozenset((r.via, r.component) for r in rows if r.via is not None)


# --- the audit trail -----------------------------------------------------------

# Administration and topology: installation, settings, conversion, restarts,
# provider records, systems, resilience, failover and failback. Links, voicemail
# discovery, users and directories are reports from the systems, not changes
# made to the network, and are left out.
AUDITED: tuple[str, ...] = (
    "portal_installed",
    "central_cti_link_set",
    "auto_provisioning_set",
    "converted_to_central",
    "portal_restarted",
    "provider_configured",
    "provider_removed",
    "system_added",
    "system_removed",
    "resilience_set",
    "failover",
    "failback",
)


class AuditEntry(LogEntry, frozen=True):
    """`audit --json`: a `log --json` line plus the modes before and after it."""

    configured: tuple[str | None, str]  # (before, after); before is None at position 1
    effective: tuple[str | None, str]


def audit(
    entries: Iterable[LogEntry],
    since: datetime | None = None,
    types: Iterable[str] | None = None,
    start: NetworkState | None = None,
) -> Iterator[AuditEntry]:
    """The audited positions of a log given from position 1 (or from `start`'s), in order.

    `since` keeps the entries recorded at or after that time; as `at` may go
    backwards in a log (I4), this filters each entry, it does not cut the log.
    """
    wanted = frozenset(AUDITED if types is None else types)
    state = start
    for item in entries:
        configured = effective = None
        if state is not None:
            configured, effective = state.configured.value, state.effective.value
        state = step(state, item.event)
        if item.type not in wanted or (since is not None and item.at < since):
            continue
        yield AuditEntry(
            network=item.network,
            position=item.position,
            at=item.at,
            actor=item.actor,
            type=item.type,
            event=item.event,
            configured=(configured, state.configured.value),
            effective=(effective, state.effective.value),
        )


# --- time travel --------------------------------------------------------------


def position_at_time(newest_first: Iterable[tuple[int, datetime]], moment: datetime) -> int | None:
    """The highest position recorded at or before `moment`, or None when there is none.

    `newest_first` gives (position, recorded time) from the last position down.
    Recorded times need not grow with the position (`at` is recorded, never used
    to reorder, I4), so the answer is the first position met whose time is not
    after `moment`: later positions may hold earlier times, and they win.
    """
    previous: int | None = None
    for position, recorded in newest_first:
        if previous is not None and position >= previous:
            raise ValueError("positions must be given from the last one down")
        previous = position
        if recorded <= moment:
            return position
    return None


def time_index(oldest_first: Iterable[tuple[int, datetime]]) -> list[tuple[datetime, int]]:
    """The positions `position_at_time` can answer, as (recorded time, position), time ascending.

    A position can be an answer only if every later position was recorded later
    (else that later one wins for any moment it could answer): these are the
    strict suffix minima of the times, and their times grow with their
    positions. So the answer for a moment is the entry with the latest time at
    or before it, one lookup in a table keyed by time, and appending position p
    at time t drops the entries at t or later and adds (t, p).
    """
    chain: list[tuple[datetime, int]] = []
    for position, recorded in oldest_first:
        while chain and chain[-1][0] >= recorded:
            chain.pop()
        chain.append((recorded, position))
    return chain
