"""`ctilink diagram`: the SPEC §4 mode machine as Mermaid, drawn from the domain's own table.

The diagram must follow `ctilink.domain.mode.TRANSITIONS`: these tests draw it from
modified copies of the table and see the edges appear and disappear.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from transitions import Machine

from ctilink.adapters.cli.commands.diagram import mermaid
from ctilink.adapters.cli.main import main
from ctilink.domain.mode import TRANSITIONS, Mode, initial_mode
from ctilink.projections.machine import diagram

CTILINK = Path(sys.executable).parent / "ctilink"


def machine(table: list[dict[str, object]]) -> Machine:
    """A machine built as domain/mode.py builds MACHINE, from another table."""
    return Machine(model=None, states=Mode, transitions=table, initial=None, auto_transitions=False)


def edge_lines(text: str) -> list[str]:
    """The Mermaid transition lines between two modes (not the [*] entries)."""
    return [line.strip() for line in text.splitlines() if "-->" in line and "[*]" not in line]


def test_every_row_of_the_table_is_one_labelled_edge():
    text = mermaid()

    expected = sorted(
        (Mode(source).value, Mode(row["dest"]).value, row["trigger"])
        for row in TRANSITIONS
        for source in row["source"]
    )
    drawn = sorted(
        (
            line.split(" --> ")[0],
            line.split(" --> ")[1].split(" : ")[0],
            line.split(" : ")[1].split()[0],
        )
        for line in edge_lines(text)
    )
    assert drawn == expected
    assert text.splitlines()[3] == "stateDiagram-v2"


def test_adding_a_transition_to_the_table_adds_its_edge():
    undo = {"trigger": "unconvert", "source": [Mode.CENTRAL], "dest": Mode.LEGACY_AUTO}

    text = mermaid(machine([*TRANSITIONS, undo]))

    assert "central --> legacy_auto : unconvert" in edge_lines(text)
    assert len(edge_lines(text)) == len(edge_lines(mermaid())) + 1


def test_removing_a_transition_from_the_table_removes_its_edges():
    without_convert = [row for row in TRANSITIONS if row["trigger"] != "convert"]

    text = mermaid(machine(without_convert))

    assert not [line for line in edge_lines(text) if "convert" in line]
    assert len(edge_lines(text)) == len(edge_lines(mermaid())) - 2


def test_edges_cite_the_rules_they_implement():
    lines = edge_lines(mermaid())

    # M4: conversion, from either legacy mode; M2: only where Central CTI Link exists.
    assert "legacy_auto --> central : convert (M2, M4, M5)" in lines
    assert "legacy_manual --> central : convert (M2, M4, M5)" in lines
    # M3/M5: a setting changes the configured mode; the effective one waits for a restart.
    assert "central --> manual : disable_central (M3, M5)" in lines
    # M6: a setting that leaves the mode as it was changes nothing (no restart pending).
    assert "manual --> manual : disable_central (M3, M6)" in lines


def test_no_edge_leads_back_from_a_modern_mode_to_a_legacy_one_m4():
    legacy = {Mode.LEGACY_AUTO.value, Mode.LEGACY_MANUAL.value}

    backwards = [e for e in diagram().transitions if e.source not in legacy and e.dest in legacy]

    assert backwards == []


def test_entry_edges_are_m1_as_the_domain_computes_it():
    entries = [line.strip() for line in mermaid().splitlines() if "[*]" in line]

    assert entries == [
        "[*] --> central : new on linux_server_edition (M1)",
        "[*] --> manual : new elsewhere (M1)",
        "[*] --> manual : upgrade from 10.0 or later (M1)",
        "[*] --> legacy_auto : upgrade before 10.0, auto_provisioning true (M1)",
        "[*] --> legacy_manual : upgrade before 10.0, auto_provisioning false (M1)",
    ]
    assert initial_mode("ucm", "9.1", True) is Mode.LEGACY_AUTO


def test_json_gives_the_same_machine_as_data(capsys):
    assert main(["diagram", "--json"]) == 0
    drawn = json.loads(capsys.readouterr().out)

    assert drawn["states"] == [mode.value for mode in Mode]
    assert len(drawn["transitions"]) == sum(len(row["source"]) for row in TRANSITIONS)
    assert {
        "trigger": "convert",
        "source": "legacy_manual",
        "dest": "central",
        "rules": ["M2", "M4", "M5"],
    } in drawn["transitions"]


def test_the_console_script_prints_it_and_creates_no_store(tmp_path):
    run = subprocess.run(
        [str(CTILINK), "diagram"], capture_output=True, cwd=tmp_path, timeout=60, check=False
    )

    assert (run.returncode, run.stderr) == (0, b"")
    assert run.stdout.decode() == mermaid()
    assert list(tmp_path.iterdir()) == []  # no ./ctilink.db for a command that reads no store
