"""`ctilink diagram`: the mode machine of SPEC §4 as Mermaid, from projections/machine.py.

The Mermaid text is built here rather than by `transitions`' GraphMachine: its
output depends on which graph backend happens to be installed, names states by
enum member, and marks a current state, which a table has not.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable

from transitions import Machine

from ctilink.adapters.cli.output import emit_json
from ctilink.adapters.cli.parents import Parents
from ctilink.domain.application import NetworkService
from ctilink.domain.mode import MACHINE, Mode, shown_setting
from ctilink.projections.machine import diagram


def _label(name: str, rules: Iterable[str]) -> str:
    """An edge label: the trigger or case, then its SPEC rules."""
    listed = ", ".join(rules)
    return f"{name} ({listed})" if listed else name


def mermaid(machine: Machine = MACHINE) -> str:
    """The machine as a Mermaid state diagram (stateDiagram-v2)."""
    drawn = diagram(machine)
    lines = [
        "---",
        "title: ctilink configured mode (SPEC §4); the effective mode follows at the next "
        "portal_restarted (M5)",
        "---",
        "stateDiagram-v2",
        "  direction LR",
    ]
    for state in drawn.states:
        lines.append(f'  state "{state}<br/>shows {shown_setting(Mode(state)).value}" as {state}')
    for entry in drawn.initial:
        lines.append(f"  [*] --> {entry.dest} : {_label(entry.case, entry.rules)}")
    for edge in drawn.transitions:
        lines.append(f"  {edge.source} --> {edge.dest} : {_label(edge.trigger, edge.rules)}")
    return "\n".join(lines) + "\n"


def cmd_diagram(service: NetworkService | None, args: argparse.Namespace) -> int:
    """Print the mode machine (the store is not read)."""
    if args.json:
        emit_json(diagram())
    else:
        print(mermaid(), end="")
    return 0


def register(verbs: argparse._SubParsersAction, parents: Parents) -> None:
    """Add the command to the parser."""
    p = verbs.add_parser("diagram")
    p.add_argument("--json", action="store_true", help="states and transitions as JSON")
    p.set_defaults(run=cmd_diagram, uses_store=False)
