"""The mode machine of SPEC §4 as data, drawn from the domain's own table.

The edges are read from the `transitions` machine that the rules and the fold
use (domain/mode.py `MACHINE`, built from `TRANSITIONS`), and the entry edges
from `initial_mode` (M1), so no picture of it can drift from the code.
"""

from __future__ import annotations

import msgspec
from transitions import Machine

from ctilink.domain.mode import MACHINE, Mode, edges_of, initial_mode

# The SPEC §4 rules each trigger implements (M2: where Central CTI Link exists,
# M3: which setting is shown, M4: conversion, M5: effective at the next restart).
TRIGGER_RULES: dict[str, tuple[str, ...]] = {
    "enable_central": ("M2", "M3", "M5"),
    "disable_central": ("M3", "M5"),
    "enable_auto_provisioning": ("M3", "M5"),
    "disable_auto_provisioning": ("M3", "M5"),
    "convert": ("M2", "M4", "M5"),
}
# A transition back to its own state is a setting that changes nothing (M6), so
# there is no restart to wait for (M5).
NO_CHANGE, DEFERRED = "M6", "M5"

# M1's cases, each with a representative portal_installed: (platform, upgraded_from, auto).
INITIAL_CASES: tuple[tuple[str, tuple[str, str | None, bool]], ...] = (
    ("new on linux_server_edition", ("linux_server_edition", None, True)),
    ("new elsewhere", ("windows", None, True)),
    ("upgrade from 10.0 or later", ("windows", "10.0", True)),
    ("upgrade before 10.0, auto_provisioning true", ("windows", "9.1", True)),
    ("upgrade before 10.0, auto_provisioning false", ("windows", "9.1", False)),
)


class Edge(msgspec.Struct, frozen=True):
    """One transition of the configured mode."""

    trigger: str
    source: str
    dest: str
    rules: tuple[str, ...]


class Entry(msgspec.Struct, frozen=True):
    """Where `portal_installed` puts a new network (M1)."""

    case: str
    dest: str
    rules: tuple[str, ...] = ("M1",)


class Diagram(msgspec.Struct, frozen=True):
    """`diagram --json`: the machine as data."""

    states: list[str]
    initial: list[Entry]
    transitions: list[Edge]


def edges(machine: Machine) -> list[Edge]:
    """Every (trigger, source) of the machine's table, in table order."""
    found = []
    for (trigger, source), dest in edges_of(machine).items():
        rules = TRIGGER_RULES.get(trigger, ())
        if source == dest:
            rules = (*(r for r in rules if r != DEFERRED), NO_CHANGE)
        found.append(Edge(trigger, source.value, dest.value, rules))
    return found


def entries() -> list[Entry]:
    """M1's initial modes, from the domain's own `initial_mode`."""
    return [Entry(case, initial_mode(*inputs).value) for case, inputs in INITIAL_CASES]


def diagram(machine: Machine = MACHINE) -> Diagram:
    """The machine's states, entry edges and transitions."""
    return Diagram(
        states=[Mode[name].value for name in machine.states],
        initial=entries(),
        transitions=edges(machine),
    )
