"""A network's timeline: a window of its positions, what an operator watches marked.

Folded from the state right before the window (a snapshot's, caught up) over the
window's log entries: the runs of the configured and effective modes (M5: they
differ while a restart is pending), of systems failed over (C2) and of links
reported down (C3), and a mark at each position that changed one of them:
a setting, a conversion (M4), a restart that moved the effective mode, a failover,
a failback, a link going down or coming back.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import datetime

import msgspec

from ctilink.domain import messages as m
from ctilink.domain.state import NetworkState, step
from ctilink.projections.log import LogEntry

# What a mark says happened; the console draws each kind its own way.
MARK_KINDS = (
    "installed",
    "setting",
    "conversion",
    "restart",
    "failover",
    "failback",
    "link_down",
    "link_up",
)


class Mark(msgspec.Struct, frozen=True):
    """One position that changed what the timeline shows."""

    position: int
    at: datetime
    kind: str  # one of MARK_KINDS
    label: str


class Tick(msgspec.Struct, frozen=True):
    """One position of the window: when it was recorded, and its event's type."""

    position: int
    at: datetime
    type: str


class Run(msgspec.Struct, frozen=True):
    """Consecutive positions sharing one value."""

    first: int
    last: int
    value: str


class Timeline(msgspec.Struct, frozen=True):
    """Positions `first`..`last` of one network, their recorded times, runs and marks."""

    first: int
    last: int
    ticks: list[Tick]
    marks: list[Mark]
    configured: list[Run]
    effective: list[Run]
    failed: list[Run]  # value: the systems failed over, comma-separated ("" none)
    down: list[Run]  # value: how many links are reported down ("0" none)


class _Watched(msgspec.Struct, frozen=True):
    """What the timeline reads of a state."""

    configured: str
    effective: str
    failed: frozenset[str]
    links: frozenset[tuple[str, str, bool]]

    @classmethod
    def of(cls, state: NetworkState | None) -> _Watched | None:
        if state is None:
            return None
        links = frozenset(
            (system, component, up)
            for system, components in state.links.items()
            for component, up in components.items()
        )
        return cls(state.configured.value, state.effective.value, frozenset(state.failed), links)

    @property
    def down(self) -> int:
        return sum(1 for _, _, up in self.links if not up)


def timeline(start: NetworkState | None, entries: Iterable[LogEntry]) -> Timeline:
    """The timeline of `entries` (consecutive positions), `start` being the state before them."""
    state = copy.deepcopy(start)  # the fold steps in place: the caller's state stays as it was
    ticks: list[Tick] = []
    marks: list[Mark] = []
    runs: dict[str, list[Run]] = {"configured": [], "effective": [], "failed": [], "down": []}
    for item in entries:
        before = _Watched.of(state)
        state = step(state, item.event)
        after = _Watched.of(state)
        assert after is not None
        ticks.append(Tick(item.position, item.at, item.type))
        marks += [
            Mark(item.position, item.at, kind, label) for kind, label in _marks(before, after, item)
        ]
        values = {
            "configured": after.configured,
            "effective": after.effective,
            "failed": ", ".join(sorted(after.failed)),
            "down": str(after.down),
        }
        for key, value in values.items():
            _extend(runs[key], item.position, value)
    first = ticks[0].position if ticks else 0
    last = ticks[-1].position if ticks else 0
    return Timeline(first, last, ticks, marks, **runs)


def _extend(runs: list[Run], position: int, value: str) -> None:
    """Add a position to the last run if it has the same value, else start a run."""
    if runs and runs[-1].value == value and runs[-1].last == position - 1:
        runs[-1] = Run(runs[-1].first, position, value)
    else:
        runs.append(Run(position, position, value))


def _marks(before: _Watched | None, after: _Watched, item: LogEntry) -> list[tuple[str, str]]:
    """(kind, label) for what one position changed."""
    event = item.event
    if before is None:
        return [("installed", f"installed: {after.configured}")]
    found = []
    if before.configured != after.configured:
        kind = "conversion" if isinstance(event, m.ConvertedToCentral) else "setting"
        found.append((kind, f"configured {before.configured} → {after.configured}"))
    if before.effective != after.effective:
        found.append(("restart", f"effective {before.effective} → {after.effective}"))
    for system in sorted(after.failed - before.failed):
        found.append(("failover", f"{system} failed over"))
    for system in sorted(before.failed - after.failed):
        if isinstance(event, m.Failback):  # a removed system is forgotten, not back (I7)
            found.append(("failback", f"{system} is back"))
    if isinstance(event, m.LinkChanged):
        was_down = (event.system, event.component, False) in before.links
        if event.up and was_down:
            found.append(("link_up", f"{event.system} {event.component} up"))
        elif not event.up and not was_down:
            found.append(("link_down", f"{event.system} {event.component} down"))
    return found
