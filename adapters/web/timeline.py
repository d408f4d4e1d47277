"""The timeline page: a window of a network's positions drawn on the server as SVG.

A window holds at most WINDOW positions (the last ones, or those up to `upto`,
or those around `at`); earlier and later windows are links, so a log of any
length costs what WINDOW positions do: one state read from a snapshot, then
the window's events folded (projections/timeline.py). Lanes show the configured
and effective modes, systems failed over and links down as runs; each run, each
mark and each position is a link to the state right after it (`?at=P`).
"""

from __future__ import annotations

import msgspec

from ctilink.adapters.web.reads import BadQuery, whole
from ctilink.domain.application import NetworkService
from ctilink.projections.log import entry
from ctilink.projections.timeline import Mark, Run, Tick, Timeline, timeline

WINDOW = 500  # positions a timeline shows at most
WIDTH = 1200  # the picture's width (it scales down to the page)
LEFT, RIGHT = 120, 90  # room for the lanes' names; for the last time under the axis
LANE_H, GAP, TOP = 24, 8, 8
LANES = (
    "configured",
    "effective",
    "mode changes",
    "failed over",
    "failover, back",
    "links down",
    "link changes",
)
AXIS = 46  # room under the lanes for the positions and their times
TICKS = 6  # times written under the axis
MODE_COLOURS = {
    "central": "#0969da",
    "manual": "#8250df",
    "legacy_auto": "#1a7f37",
    "legacy_manual": "#9a6700",
}
MARK_COLOURS = {
    "installed": "#6e7781",
    "setting": "#0969da",
    "conversion": "#8250df",
    "restart": "#0a7d8c",
    "failover": "#bc4c00",
    "failback": "#1a7f37",
    "link_down": "#cf222e",
    "link_up": "#1a7f37",
}
MARK_LANE = {
    "installed": 2,
    "setting": 2,
    "conversion": 2,
    "restart": 2,
    "failover": 4,
    "failback": 4,
    "link_down": 6,
    "link_up": 6,
}


class Bar(msgspec.Struct, frozen=True):
    """A run drawn as a rectangle, linking to where it begins."""

    x: float
    y: float
    width: float
    colour: str
    label: str  # written inside when it fits, and in its title
    fits: bool
    run: Run


class Dot(msgspec.Struct, frozen=True):
    """A mark drawn as a dot on its lane."""

    x: float
    y: float
    colour: str
    mark: Mark


class Column(msgspec.Struct, frozen=True):
    """One position's strip over every lane: a link to the state right after it."""

    x: float
    width: float
    tick: Tick


class Label(msgspec.Struct, frozen=True):
    """A position written under the axis, with its recorded time."""

    x: float
    tick: Tick


class Drawing(msgspec.Struct, frozen=True):
    """The whole picture."""

    width: int
    height: int
    lanes: list[tuple[str, float]]  # name, the y of its top
    bars: list[Bar]
    dots: list[Dot]
    columns: list[Column]
    labels: list[Label]
    here: float | None  # the x of the position asked for, if it is in the window
    axis: float  # the y of the axis
    left: int = LEFT  # where the positions start
    right: int = WIDTH - RIGHT  # and end


class TimelinePage(msgspec.Struct, frozen=True):
    """One window of a network's timeline, and the windows beside it."""

    head: int
    at: int | None
    timeline: Timeline
    drawing: Drawing
    earlier: int | None  # `upto` of the window before (None: this one starts at 1)
    later: int | None  # `upto` of the window after (None: this one ends at the last)


def timeline_page(service: NetworkService, name: str, query: dict[str, str]) -> TimelinePage:
    """The window of positions asked for: up to `upto`, around `at`, or the last ones."""
    head = service.head(name)  # UnknownNetwork: 404
    at = _within(query.get("at"), "at", head)
    upto = _within(query.get("upto"), "upto", head)
    if upto is None:
        upto = head if at is None else min(head, max(at + WINDOW // 2, WINDOW))
    first = max(1, upto - WINDOW + 1)
    start = service.state_at(name, first - 1)[0] if first > 1 else None  # from a snapshot
    found = timeline(start, (entry(e) for e in service.log(name, upto=upto, after=first - 1)))
    earlier = first - 1 if first > 1 else None
    later = min(head, upto + WINDOW) if upto < head else None
    return TimelinePage(head, at, found, drawing(found, at), earlier, later)


def _within(text: str | None, key: str, head: int) -> int | None:
    """A position parameter, if given (BadQuery: not a position of the log)."""
    if not text:
        return None
    position = whole(text, key)
    if not 1 <= position <= head:
        raise BadQuery(f"{key}: position {position} is out of range (1..{head})")
    return position


def drawing(found: Timeline, at: int | None) -> Drawing:
    """The timeline laid out: x by position, one lane per kind of run or mark."""
    count = max(found.last - found.first + 1, 1)
    step = (WIDTH - LEFT - RIGHT) / count

    def x(position: int) -> float:
        return round(LEFT + (position - found.first) * step, 2)

    tops = [TOP + lane * (LANE_H + GAP) for lane in range(len(LANES))]
    bars = []
    for lane, runs, colour in (
        (0, found.configured, None),
        (1, found.effective, None),
        (3, [r for r in found.failed if r.value], "#bc4c00"),
        (5, [r for r in found.down if r.value != "0"], "#cf222e"),
    ):
        for run in runs:
            width = round((run.last - run.first + 1) * step, 2)
            label = f"{run.value} down" if lane == 5 else run.value
            fill = colour or MODE_COLOURS.get(run.value, "#6e7781")
            fits = width >= 7.5 * len(label) + 8
            bars.append(Bar(x(run.first), tops[lane], width, fill, label, fits, run))
    dots = [
        Dot(
            round(x(mark.position) + step / 2, 2),
            tops[MARK_LANE[mark.kind]] + LANE_H / 2,
            MARK_COLOURS[mark.kind],
            mark,
        )
        for mark in found.marks
    ]
    columns = [Column(x(tick.position), round(step, 2), tick) for tick in found.ticks]
    every = max(1, -(-len(found.ticks) // TICKS))  # ceiling: at most TICKS labels
    labels = [Label(x(tick.position), tick) for tick in found.ticks[::every]]
    axis = tops[-1] + LANE_H + GAP
    here = x(at) + step / 2 if at is not None and found.first <= at <= found.last else None
    lanes = [(name, float(top)) for name, top in zip(LANES, tops, strict=True)]
    return Drawing(WIDTH, int(axis + AXIS), lanes, bars, dots, columns, labels, here, axis)
