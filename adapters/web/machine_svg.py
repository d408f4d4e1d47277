"""The mode machine (projections/machine.py) laid out as an SVG picture, modes marked."""

from __future__ import annotations

import math

import msgspec

from ctilink.domain.mode import LEGACY, Mode, shown_setting
from ctilink.projections.machine import diagram

BOX_W, BOX_H = 230, 80
COLUMNS = (190, 560)  # legacy modes on the left, the modern ones on the right
ROWS = (20, 230)
WIDTH, HEIGHT = 940, 330


class Box(msgspec.Struct, frozen=True):
    """One state: where it is drawn and what it is to the network."""

    name: str
    shows: str  # the setting shown in this mode (M3)
    x: int
    y: int
    configured: bool
    effective: bool
    stays: list[str]  # triggers that leave it as it is (M6)


class Arrow(msgspec.Struct, frozen=True):
    """One or more transitions between two states, drawn as one arrow."""

    x1: float
    y1: float
    x2: float
    y2: float
    label: str
    label_x: float
    label_y: float
    anchor: str  # where the label's text hangs from its point (SVG text-anchor)


class Drawing(msgspec.Struct, frozen=True):
    """The whole picture."""

    boxes: list[Box]
    arrows: list[Arrow]
    width: int = WIDTH
    height: int = HEIGHT


def drawing(configured: str, effective: str) -> Drawing:
    """The machine with the network's configured and effective modes marked."""
    machine = diagram()
    places: dict[str, tuple[int, int]] = {}
    for column, group in enumerate((LEGACY, tuple(m for m in Mode if m not in LEGACY))):
        for row, mode in enumerate(group):
            places[mode.value] = (COLUMNS[column], ROWS[row])
    stays: dict[str, list[str]] = {state: [] for state in machine.states}
    labels: dict[tuple[str, str], list[str]] = {}
    for edge in machine.transitions:
        if edge.source == edge.dest:
            stays[edge.source].append(edge.trigger)
        else:
            labels.setdefault((edge.source, edge.dest), []).append(edge.trigger)
    boxes = [
        Box(
            state,
            shown_setting(Mode(state)).value,
            *places[state],
            state == configured,
            state == effective,
            stays[state],
        )
        for state in machine.states
    ]
    arrows = [
        _arrow(places[source], places[dest], ", ".join(names), (dest, source) in labels)
        for (source, dest), names in labels.items()
    ]
    return Drawing(boxes, arrows)


def _arrow(source: tuple[int, int], dest: tuple[int, int], label: str, both: bool) -> Arrow:
    """From box edge to box edge; two ways between the same boxes are drawn apart."""
    (sx, sy), (dx, dy) = _centre(source), _centre(dest)
    length = math.hypot(dx - sx, dy - sy)
    ux, uy = (dx - sx) / length, (dy - sy) / length
    shift = 10 if both else 0  # to the right of the direction of travel
    ox, oy = -uy * shift, ux * shift
    start = _edge_point(sx, sy, ux, uy)
    end = _edge_point(dx, dy, -ux, -uy)
    x1, y1 = start[0] + ox, start[1] + oy
    x2, y2 = end[0] + ox, end[1] + oy
    side = 14
    label_x = (x1 + x2) / 2 - uy * side
    label_y = (y1 + y2) / 2 + ux * side
    upright = abs(ux) < 0.3  # the label beside the arrow, on its side
    anchor = ("start" if label_x > x1 else "end") if upright else "middle"
    return Arrow(
        round(x1, 1),
        round(y1, 1),
        round(x2, 1),
        round(y2, 1),
        label,
        round(label_x, 1),
        round(label_y, 1),
        anchor,
    )


def _centre(place: tuple[int, int]) -> tuple[float, float]:
    """A box's centre."""
    return place[0] + BOX_W / 2, place[1] + BOX_H / 2


def _edge_point(cx: float, cy: float, ux: float, uy: float) -> tuple[float, float]:
    """Where a line leaving the centre along (ux, uy) crosses the box's border."""
    scale = min(
        (BOX_W / 2) / abs(ux) if ux else math.inf,
        (BOX_H / 2) / abs(uy) if uy else math.inf,
    )
    return cx + ux * (scale + 4), cy + uy * (scale + 4)
