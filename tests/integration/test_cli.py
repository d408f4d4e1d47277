"""End-to-end tests of the `ctilink` console script, run as a real subprocess.

Every test drives the installed entry point with `--store` inside a temporary
directory. Read-only queries share one module-scoped store holding the example
scenario (examples/scenario.jsonl); tests that write get a store of their own.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CTILINK = Path(sys.executable).parent / "ctilink"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCENARIO = EXAMPLES / "scenario.jsonl"
REPORT_KEYS = ["line", "id", "outcome", "position", "code", "message"]
MIB = 1 << 20


# --- running the CLI ----------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One finished `ctilink` process."""

    rc: int
    out: str
    err: str

    def json(self) -> Any:
        """stdout as one JSON document."""
        return json.loads(self.out)

    def json_lines(self) -> list[dict[str, Any]]:
        """stdout as JSON Lines."""
        return [json.loads(line) for line in self.out.splitlines()]


def ctilink(
    *args: str,
    store: Path | str | None = None,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Run:
    """Run the console script; CTILINK_STORE is unset unless `env` sets it."""
    environ = {k: v for k, v in os.environ.items() if k != "CTILINK_STORE"}
    environ.update(env or {})
    command = [str(CTILINK), *args]
    if store is not None:
        command += ["--store", str(store)]
    proc = subprocess.run(
        command, input=stdin, capture_output=True, env=environ, cwd=cwd, timeout=120, check=False
    )
    return Run(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def query(store: Path | str, *args: str) -> Any:
    """A `--json` query that must succeed quietly."""
    run = ctilink(*args, "--json", store=store)
    assert (run.rc, run.err) == (0, ""), run
    return run.json()


def assert_one_line_error(run: Run) -> None:
    """Exit 2, nothing on stdout, one `ctilink:` line on stderr, no traceback."""
    assert run.rc == 2, run
    assert run.out == ""
    assert "Traceback" not in run.err
    assert len(run.err.splitlines()) == 1, run.err
    assert run.err.startswith("ctilink: ")


def line(type_: str, network: str = "t1", **fields: Any) -> str:
    """One JSON line."""
    return json.dumps({"type": type_, "network": network, **fields})


def write(path: Path, lines: Iterable[str], end: str = "\n") -> Path:
    """A JSON Lines file from raw lines."""
    path.write_text("".join(text + end for text in lines), encoding="utf-8")
    return path


def padded(text: str, size: int) -> str:
    """A JSON object line padded with blanks before its closing brace to `size` bytes."""
    assert text.endswith("}")
    return text[:-1] + " " * (size - len(text)) + "}"


# --- the example scenario -------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """The example scenario, ingested once into a module-wide store."""

    store: Path | str
    run: Run
    events: list[dict[str, Any]]
    reports: list[dict[str, Any]]

    def position(self, event_id: str) -> int:
        """The log position the scenario's event `event_id` was accepted at."""
        (found,) = [r["position"] for r in self.reports if r["id"] == event_id]
        return found

    def of(self, network: str) -> list[dict[str, Any]]:
        """The scenario's events for one network, in file order."""
        return [e for e in self.events if e["network"] == network]


@pytest.fixture(scope="module")
def scenario(new_store) -> Scenario:  # type: ignore[no-untyped-def]
    store = new_store()
    run = ctilink("ingest", str(SCENARIO), "--json", store=store)
    events = [json.loads(text) for text in SCENARIO.read_text().splitlines() if text.strip()]
    return Scenario(store, run, events, run.json_lines())


def test_scenario_ingests_every_line_in_order_i4(scenario):
    assert (scenario.run.rc, scenario.run.err) == (0, "")
    assert [r["line"] for r in scenario.reports] == list(range(1, len(scenario.events) + 1))
    assert [r["id"] for r in scenario.reports] == [e["id"] for e in scenario.events]
    assert {r["outcome"] for r in scenario.reports} == {"accepted"}
    for network in ("acme", "globex", "initech"):
        ids = [e["id"] for e in scenario.of(network)]
        positions = [scenario.position(i) for i in ids]
        assert positions == list(range(1, len(ids) + 1)), network


@pytest.mark.parametrize("network", ["acme", "globex"])
def test_status_json_is_the_documented_example(scenario, network):
    expected_file = EXAMPLES / f"expected-{network}-status.json"
    run = ctilink("status", network, "--json", store=scenario.store)

    assert (run.rc, run.err) == (0, "")
    assert run.json() == json.loads(expected_file.read_text())
    assert run.out == expected_file.read_text()  # byte for byte, key order included


def test_networks_json_lists_every_network(scenario):
    assert query(scenario.store, "networks") == [
        {"network": "acme", "position": 27, "effective": "central"},
        {"network": "globex", "position": 17, "effective": "central"},
        {"network": "initech", "position": 9, "effective": "manual"},
    ]


def test_acme_failover_is_served_through_the_secondary_c2_c3(scenario):
    down = scenario.position("acme-023")  # failover, then the primary's links went down
    doc = query(scenario.store, "status", "acme", "--at", str(down))
    final = query(scenario.store, "status", "acme")

    assert doc["position"] == down
    assert doc["providers"] == final["providers"]  # P1: the provider set does not move
    assert {(c["via"], c["state"]) for c in doc["components"]} == {("se-secondary", "available")}
    assert len(doc["components"]) == 8  # C1: 4 systems x 2 components
    assert {(c["via"], c["state"]) for c in final["components"]} == {("se-primary", "available")}


def test_globex_conversion_waits_for_restart_m4_m5(scenario):
    converted = scenario.position("globex-016")
    before = query(scenario.store, "status", "globex", "--at", str(converted - 1))
    after = query(scenario.store, "status", "globex", "--at", str(converted))

    assert before["mode"] == {
        "setting": "auto_provisioning",
        "configured": "legacy_auto",
        "effective": "legacy_auto",
        "restart_pending": False,
        "converted": False,
        "central_available": True,
    }
    assert after["mode"] == {
        "setting": "central_cti_link",
        "configured": "central",
        "effective": "legacy_auto",
        "restart_pending": True,
        "converted": True,
        "central_available": True,
    }
    # P3 until the restart: an auto pair per system, except where a manual record exists.
    expected_providers = [
        {"kind": "csta", "target": "gx-north", "origin": "auto"},
        {"kind": "csta", "target": "gx-primary", "origin": "auto"},
        {"kind": "csta", "target": "gx-south", "origin": "manual"},
        {"kind": "dsml", "target": "gx-north", "origin": "auto"},
        {"kind": "dsml", "target": "gx-primary", "origin": "auto"},
        {"kind": "dsml", "target": "gx-south", "origin": "auto"},
        {"kind": "voicemail", "target": "172.16.0.20", "origin": "auto"},
    ]
    assert before["providers"] == after["providers"] == expected_providers
    south_dsml = [
        c for c in after["components"] if (c["system"], c["component"]) == ("gx-south", "dsml")
    ]
    assert south_dsml == [
        {
            "system": "gx-south",
            "role": "expansion",
            "component": "dsml",
            "state": "unavailable",
            "via": "gx-south",
        }
    ]


def test_initech_manual_providers_and_unconfigured_components_p2_c3(scenario):
    doc = query(scenario.store, "status", "initech")

    assert doc["mode"] == {
        "setting": "central_cti_link",
        "configured": "manual",
        "effective": "manual",
        "restart_pending": False,
        "converted": False,
        "central_available": False,
    }
    assert [(p["kind"], p["target"], p["origin"]) for p in doc["providers"]] == [
        ("csta", "ipo-branch", "manual"),
        ("csta", "ipo-hq", "manual"),
        ("dsml", "ipo-hq", "manual"),
        ("voicemail", "192.168.1.20", "auto"),
    ]
    assert [(c["system"], c["component"], c["state"], c["via"]) for c in doc["components"]] == [
        ("ipo-branch", "csta", "unavailable", "ipo-branch"),  # link never reported
        ("ipo-branch", "dsml", "not_configured", None),
        ("ipo-hq", "csta", "available", "ipo-hq"),
        ("ipo-hq", "dsml", "available", "ipo-hq"),
    ]


def test_directory_hides_ex_directory_and_follows_via_d1_d2_d4(scenario):
    down = scenario.position("acme-023")
    final = query(scenario.store, "directory", "acme")
    during = query(scenario.store, "directory", "acme", "--at", str(down))

    visible = [
        {"name": "Branch Office", "number": "500", "system": "exp-ip500"},
        {"name": "Warehouse", "number": "400", "system": "exp-linux"},
        {"name": "Reception", "number": "200", "system": "se-primary"},
        {"name": "Sales", "number": "201", "system": "se-primary"},
        {"name": "Support", "number": "300", "system": "se-secondary"},
    ]
    assert final["system"] == [{**e, "via": "se-primary"} for e in visible]
    assert during["system"] == [{**e, "via": "se-secondary"} for e in visible]
    assert final["personal"] == {
        "alice": [
            {"name": "Dentist", "number": "01632960123"},
            {"name": "Mum", "number": "07700900001"},
        ],
        "bob": [{"name": "Courier", "number": "01632960777"}],  # kept across his move
        "carol": [],  # her host never reported
    }
    assert list(final) == ["network", "position", "system", "personal"]
    assert (final["network"], final["position"]) == ("acme", 27)


def test_log_json_has_one_line_per_position(scenario):
    entries = ctilink("log", "acme", "--json", store=scenario.store).json_lines()
    sent = scenario.of("acme")

    assert [e["position"] for e in entries] == list(range(1, len(sent) + 1))
    assert [(e["type"], e["event"]["id"]) for e in entries] == [(s["type"], s["id"]) for s in sent]
    assert [e["at"] for e in entries] == [s["at"] for s in sent]
    assert [e["actor"] for e in entries] == [s.get("actor", "system") for s in sent]
    assert {e["network"] for e in entries} == {"acme"}


def test_human_status_shows_mode_providers_and_components(scenario):
    run = ctilink("status", "globex", store=scenario.store)

    assert (run.rc, run.err) == (0, "")
    text = run.out
    for piece in ("globex", "central_cti_link", "central", "providers", "components"):
        assert piece in text
    lines = text.splitlines()
    assert any(all(w in ln for w in ("kind", "target", "origin")) for ln in lines)
    assert any(
        all(w in ln for w in ("system", "role", "component", "state", "via")) for ln in lines
    )
    assert any(all(w in ln for w in ("voicemail", "172.16.0.20", "auto")) for ln in lines)
    assert any(
        all(w in ln for w in ("gx-south", "dsml", "available", "gx-primary")) for ln in lines
    )
    assert "gx-north" not in text.split("\ncomponents")[0]  # no auto provider after restart


def test_human_directory_log_and_networks(scenario):
    directory = ctilink("directory", "acme", store=scenario.store)
    log = ctilink("log", "globex", store=scenario.store)
    networks = ctilink("networks", store=scenario.store)

    assert directory.rc == log.rc == networks.rc == 0
    assert "Reception" in directory.out and "Courier" in directory.out
    for hidden in ("Board Room", "Night Service", "Security Desk", "Branch Manager Mobile"):
        assert hidden not in directory.out  # D2
    assert "converted_to_central" in log.out and "admin@globex" in log.out
    assert "globex-017" in log.out
    for name in ("acme", "globex", "initech"):
        assert name in networks.out


@pytest.mark.parametrize("command", ["status", "directory", "log"])
def test_unknown_network_is_a_one_line_error(scenario, command):
    run = ctilink(command, "nowhere", store=scenario.store)

    assert_one_line_error(run)
    assert "nowhere" in run.err


@pytest.mark.parametrize("command", ["status", "directory"])
@pytest.mark.parametrize("position", [0, 28, -1])
def test_position_out_of_range_is_a_one_line_error(scenario, command, position):
    run = ctilink(command, "acme", f"--at={position}", "--json", store=scenario.store)

    assert_one_line_error(run)


def test_status_at_head_equals_status(scenario):
    assert query(scenario.store, "status", "acme", "--at", "27") == query(
        scenario.store, "status", "acme"
    )


# --- as of an earlier position ---------------------------------------------------


def test_status_at_position_is_what_it_was_then(tmp_path, scenario, new_store):
    """§8: asked as of P, the answer is exactly what it was right after P was applied."""
    cuts = {"acme": scenario.position("acme-023"), "globex": scenario.position("globex-016")}
    prefix = [
        json.dumps(e)
        for e in scenario.events
        if e["network"] in cuts and scenario.position(e["id"]) <= cuts[e["network"]]
    ]
    store = new_store()
    first = ctilink("ingest", str(write(tmp_path / "prefix.jsonl", prefix)), store=store)
    assert first.rc == 0, first
    then = {
        (kind, net): query(store, kind, net) for net in cuts for kind in ("status", "directory")
    }

    rest = ctilink("ingest", str(SCENARIO), "--json", store=store)
    assert rest.rc == 0, rest
    outcomes = [r["outcome"] for r in rest.json_lines()]
    assert outcomes.count("duplicate") == len(prefix)

    for (kind, net), doc in then.items():
        assert doc["position"] == cuts[net]
        assert query(store, kind, net, "--at", str(cuts[net])) == doc, (kind, net)


# --- ingest: the --json report and the rejection rules ---------------------------

# (name, raw line, expected outcome, expected code, a word the message must contain)
CASES: list[tuple[str, str, str, str | None, str | None]] = [
    ("install", line("portal_installed", id="t-1", platform="windows"), "accepted", None, None),
    (
        "add_system",
        line(
            "system_added", id="t-2", system="s1", role="primary", platform="ip500v2", address="a"
        ),
        "accepted",
        None,
        None,
    ),
    ("not_json", "this is not json", "rejected", "invalid", "JSON"),
    ("json_array", "[1, 2]", "rejected", "invalid", "object"),
    ("json_string", '"portal_restarted"', "rejected", "invalid", "object"),
    (
        "wrong_type_role",
        line("system_added", id="t-3", system="s2", role=5, platform="linux", address="b"),
        "rejected",
        "invalid",
        "role",
    ),
    (
        "wrong_type_up",
        line("link_changed", id="t-4", system="s1", component="csta", up="yes"),
        "rejected",
        "invalid",
        "up",
    ),
    (
        "wrong_type_entries",
        line("directory_changed", id="t-5", system="s1", entries="none"),
        "rejected",
        "invalid",
        "entries",
    ),
    (
        "wrong_enum_component",
        line("link_changed", id="t-6", system="s1", component="voicemail", up=True),
        "rejected",
        "invalid",
        "component",
    ),
    (
        "unknown_field",
        line("link_changed", id="t-7", system="s1", component="csta", upp=True),
        "rejected",
        "invalid",
        "upp",
    ),
    (
        "unknown_nested_field",
        line(
            "directory_changed",
            id="t-8",
            system="s1",
            entries=[{"name": "a", "number": "1", "colour": "red"}],
        ),
        "rejected",
        "invalid",
        "colour",
    ),
    (
        "missing_field",
        line("link_changed", id="t-9", system="s1", up=True),
        "rejected",
        "invalid",
        "component",
    ),
    (
        "missing_nested_field",
        line("directory_changed", id="t-10", system="s1", entries=[{"name": "a"}]),
        "rejected",
        "invalid",
        "number",
    ),
    ("missing_id", line("portal_restarted"), "rejected", "invalid", "id"),
    (
        "missing_type",
        json.dumps({"id": "t-11", "network": "t1"}),
        "rejected",
        "invalid",
        "type",
    ),
    ("unknown_type", line("portal_exploded", id="t-12"), "rejected", "invalid", "type"),
    (
        "network_pattern",
        line("portal_restarted", "bad name!", id="t-13"),
        "rejected",
        "invalid",
        "network",
    ),
    ("id_too_long", line("portal_restarted", id="x" * 129), "rejected", "invalid", "id"),
    ("id_empty", line("portal_restarted", id=""), "rejected", "invalid", "id"),
    (
        "at_not_rfc3339",
        line("portal_restarted", id="t-14", at="yesterday"),
        "rejected",
        "invalid",
        "at",
    ),
    (
        # I2 order: invalid is decided before already_installed.
        "version_pattern_i8",
        line("portal_installed", id="t-15", platform="windows", upgraded_from="9.x"),
        "rejected",
        "invalid",
        "upgraded_from",
    ),
    (
        "unknown_system_i6",
        line("failover", id="t-16", system="ghost"),
        "rejected",
        "unknown_system",
        "ghost",
    ),
    # I3: a rejected event's id stays free ...
    ("reuse_rejected_id_i3", line("portal_restarted", id="t-16"), "accepted", None, None),
    # ... and, once accepted, the same id with other content is a conflict ...
    (
        "id_conflict_i3",
        line("portal_restarted", id="t-16", actor="admin@t1"),
        "rejected",
        "id_conflict",
        "t-16",
    ),
    # ... while the same content again is a duplicate.
    ("duplicate_i3", line("portal_restarted", id="t-16"), "duplicate", None, None),
    (
        "install_again_i5",
        line("portal_installed", id="t-17", platform="ucm"),
        "rejected",
        "already_installed",
        None,
    ),
]
# Blank lines (also CRLF and whitespace-only) are skipped but counted.
BLANK_AFTER = {"install": ["", "   ", "\t"], "json_string": ["\r"], "missing_id": [""]}


@dataclass(frozen=True)
class Mixed:
    """One ingest run over CASES: its process and each case's report and line number."""

    store: Path | str
    run: Run
    numbers: dict[str, int]
    reports: list[dict[str, Any]]

    def report(self, name: str) -> dict[str, Any]:
        (found,) = [r for r in self.reports if r["line"] == self.numbers[name]]
        return found


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Mixed:
    folder = tmp_path_factory.mktemp("mixed")
    lines: list[str] = []
    numbers: dict[str, int] = {}
    for name, raw, *_ in CASES:
        lines.append(raw)
        numbers[name] = len(lines)
        lines += BLANK_AFTER.get(name, [])
    store = folder / "ctilink.db"
    run = ctilink("ingest", str(write(folder / "mixed.jsonl", lines)), "--json", store=store)
    return Mixed(store, run, numbers, run.json_lines())


def test_ingest_json_is_one_object_per_nonblank_line_in_order(mixed):
    assert mixed.run.err == ""
    assert [r["line"] for r in mixed.reports] == [mixed.numbers[c[0]] for c in CASES]
    assert mixed.numbers["add_system"] == 5  # the three blank lines after line 1 count
    for report in mixed.reports:
        assert list(report) == REPORT_KEYS


def test_ingest_exit_status_is_1_when_a_line_was_rejected(mixed):
    assert mixed.run.rc == 1


@pytest.mark.parametrize(
    ("name", "raw", "outcome", "code", "word"), CASES, ids=[c[0] for c in CASES]
)
def test_each_line_gets_its_outcome_i1_i2_i3(mixed, name, raw, outcome, code, word):
    report = mixed.report(name)

    assert (report["outcome"], report["code"]) == (outcome, code), report
    if outcome == "rejected":
        assert report["position"] is None
        assert isinstance(report["message"], str) and report["message"].strip()
        if word is not None:
            assert re.search(rf"\b{re.escape(word)}\b", report["message"]), report["message"]
    else:
        assert report["message"] is None
        assert isinstance(report["position"], int)


def test_rejected_lines_report_their_id_when_readable(mixed):
    assert mixed.report("not_json")["id"] is None
    assert mixed.report("json_array")["id"] is None
    assert mixed.report("unknown_field")["id"] == "t-7"
    assert mixed.report("unknown_system_i6")["id"] == "t-16"


def test_rejected_lines_append_nothing_i1_i2(mixed):
    entries = ctilink("log", "t1", "--json", store=mixed.store).json_lines()

    assert [(e["position"], e["type"], e["event"]["id"]) for e in entries] == [
        (1, "portal_installed", "t-1"),
        (2, "system_added", "t-2"),
        (3, "portal_restarted", "t-16"),
    ]
    assert mixed.report("duplicate_i3")["position"] == 3
    assert [n["network"] for n in query(mixed.store, "networks")] == ["t1"]


def test_human_ingest_summary_lists_rejections(tmp_path):
    file = write(
        tmp_path / "few.jsonl",
        [
            line("portal_installed", id="h-1", platform="windows"),
            line("failover", id="h-2", system="ghost"),
            "{broken",
        ],
    )
    run = ctilink("ingest", str(file), store=tmp_path / "h.db")

    assert run.rc == 1
    assert "Traceback" not in run.err
    assert re.search(r"accepted\s+1\b", run.out)
    assert re.search(r"rejected\s+2\b", run.out)
    assert any("h-2" in ln and "unknown_system" in ln for ln in run.out.splitlines())
    assert any(ln.startswith("3 ") and "invalid" in ln for ln in run.out.splitlines())


def test_oversized_line_is_rejected_without_stopping_the_others_i1(tmp_path):
    lines = [
        padded(line("portal_installed", "big", id="b-1", platform="windows"), MIB),  # exactly
        padded(line("portal_restarted", "big", id="b-2"), MIB + 1),
        line("portal_restarted", "big", id="b-3"),
        padded(line("portal_restarted", "big", id="b-4"), 3 * MIB),
        line("portal_restarted", "big", id="b-5"),
    ]
    run = ctilink(
        "ingest", str(write(tmp_path / "big.jsonl", lines)), "--json", store=tmp_path / "b.db"
    )

    assert run.rc == 1
    got = [(r["line"], r["outcome"], r["code"], r["position"]) for r in run.json_lines()]
    assert got == [
        (1, "accepted", None, 1),
        (2, "rejected", "invalid", None),
        (3, "accepted", None, 2),
        (4, "rejected", "invalid", None),
        (5, "accepted", None, 3),
    ]


def test_oversized_last_line_without_newline_is_rejected(tmp_path):
    lines = [line("portal_installed", "big", id="b-1", platform="windows")]
    path = write(tmp_path / "big.jsonl", lines)
    with path.open("a") as f:
        f.write(padded(line("portal_restarted", "big", id="b-2"), MIB + 1))
    run = ctilink("ingest", str(path), "--json", store=tmp_path / "b.db")

    assert run.rc == 1
    assert [(r["line"], r["code"]) for r in run.json_lines()] == [(1, None), (2, "invalid")]


def test_only_rule_rejections_still_exit_1_i2_i5(tmp_path, new_store):
    store = new_store()
    file = write(tmp_path / "early.jsonl", [line("failover", "early", id="e-1", system="x")])
    run = ctilink("ingest", str(file), "--json", store=store)

    assert run.rc == 1
    (report,) = run.json_lines()
    assert (report["outcome"], report["code"]) == ("rejected", "not_installed")
    assert query(store, "networks") == []


def test_reports_stay_in_order_across_many_lines_i4(tmp_path, new_store):
    store = new_store()
    lines = [
        line("portal_installed", "many", id="m-0", platform="linux_server_edition"),
        line(
            "system_added",
            "many",
            id="m-s",
            system="p",
            role="primary",
            platform="linux",
            address="a",
        ),
    ]
    for n in range(2500):
        if n % 7 == 3:
            lines.append("")
        if n % 5 == 0:
            lines.append("{oops")
        else:
            lines.append(
                line(
                    "link_changed", "many", id=f"m-{n}", system="p", component="csta", up=n % 2 == 0
                )
            )
    run = ctilink("ingest", str(write(tmp_path / "many.jsonl", lines)), "--json", store=store)
    reports = run.json_lines()

    nonblank = [i for i, text in enumerate(lines, start=1) if text.strip()]
    assert [r["line"] for r in reports] == nonblank
    accepted = [r["position"] for r in reports if r["outcome"] == "accepted"]
    assert accepted == list(range(1, len(accepted) + 1))
    assert {r["code"] for r in reports if r["outcome"] == "rejected"} == {"invalid"}
    assert query(store, "status", "many")["position"] == len(accepted)


def test_ingesting_the_same_file_again_reports_each_line_as_first_decided_and_appends_nothing_i3(
    scenario, new_store
):
    store = new_store()
    first = ctilink("ingest", str(SCENARIO), "--json", store=store)
    again = ctilink("ingest", str(SCENARIO), "--json", store=store)

    assert (first.rc, again.rc) == (0, 0)
    assert again.json_lines() == first.json_lines()
    assert "53 lines were decided by an earlier run" in again.err
    assert query(store, "networks") == query(scenario.store, "networks")  # nothing appended


def test_ingesting_again_with_again_decides_every_line_anew_duplicates_by_id_i3(
    scenario, new_store
):
    store = new_store()
    first = ctilink("ingest", str(SCENARIO), "--json", store=store)
    again = ctilink("ingest", str(SCENARIO), "--json", "--again", store=store)

    assert (first.rc, again.rc) == (0, 0)
    assert [r["outcome"] for r in again.json_lines()] == ["duplicate"] * len(scenario.events)
    assert [r["position"] for r in again.json_lines()] == [
        r["position"] for r in first.json_lines()
    ]
    assert query(store, "networks") == query(scenario.store, "networks")  # nothing appended


def test_dash_reads_standard_input(tmp_path, scenario):
    store = tmp_path / "stdin.db"
    run = ctilink("ingest", "-", "--json", store=store, stdin=SCENARIO.read_bytes())

    assert run.rc == 0, run
    assert run.json_lines() == scenario.reports
    assert query(store, "status", "globex") == query(scenario.store, "status", "globex")


def test_store_comes_from_env_unless_store_is_given(tmp_path):
    env_store, flag_store = tmp_path / "env.db", tmp_path / "flag.db"
    env = {"CTILINK_STORE": str(env_store)}
    file = write(
        tmp_path / "one.jsonl", [line("portal_installed", "envnet", id="x", platform="ucm")]
    )

    ingested = ctilink("ingest", str(file), env=env, cwd=tmp_path)
    assert ingested.rc == 0, ingested
    assert env_store.exists()
    listed = ctilink("networks", "--json", env=env, cwd=tmp_path)
    assert listed.json() == [{"network": "envnet", "position": 1, "effective": "manual"}]

    # --store wins over the environment; reading a store that does not exist is an
    # error, and creates no file.
    overridden = ctilink("networks", "--json", env=env, cwd=tmp_path, store=flag_store)
    assert overridden.rc == 2 and "does not exist" in overridden.err
    assert not flag_store.exists()
    assert not (tmp_path / "ctilink.db").exists()


def test_default_store_is_ctilink_db_in_the_working_directory(tmp_path):
    file = write(tmp_path / "one.jsonl", [line("portal_installed", "here", id="x", platform="ucm")])

    assert ctilink("ingest", str(file), cwd=tmp_path).rc == 0
    assert (tmp_path / "ctilink.db").exists()


def test_missing_input_file_is_a_one_line_error(tmp_path):
    run = ctilink("ingest", str(tmp_path / "absent.jsonl"), store=tmp_path / "s.db")

    assert_one_line_error(run)


def test_store_in_missing_directory_is_a_one_line_error(tmp_path):
    run = ctilink("networks", store=tmp_path / "no" / "such" / "s.db")

    assert_one_line_error(run)


def test_closed_stdout_gives_no_traceback(scenario):
    proc = subprocess.Popen(
        [str(CTILINK), "log", "acme", "--json", "--store", str(scenario.store)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader went away before the first write
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)

    assert "Traceback" not in err
    assert len(err.splitlines()) <= 1


def test_a_one_shot_query_on_sqlite_loads_neither_nats_nor_psycopg_nor_asyncio(tmp_path):
    # Start-up is most of what `ctilink status` costs (bench/bench_startup.py).
    store = tmp_path / "s.db"
    assert ctilink("ingest", str(SCENARIO), store=store).rc == 0
    probe = (
        "import sys\n"
        "from ctilink.adapters.cli.main import main\n"
        f"main(['status', 'acme', '--json', '--store', {str(store)!r}])\n"
        "print(sorted(m for m in ('asyncio', 'nats', 'psycopg', 'multiprocessing') "
        "if m in sys.modules), file=sys.stderr)\n"
    )

    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)

    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "[]"
