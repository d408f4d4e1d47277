"""Replay, audit and diff: a network's history read back from its log (SPEC §8, I4).

- `replay` folds the log position by position; what it reports for a position
  must be exactly what differs between the status right before and right after
  it (§8: "exactly what it was right after that position was applied").
- `audit` lists the administration and topology events with the modes before
  and after (M5: a setting moves the configured mode, a restart the effective one).
- `diff` compares the status at two positions.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ctilink.adapters.cli.main import main
from ctilink.adapters.ingest.lines import ingest
from ctilink.adapters.progress import PROGRESS_FROM, Progress
from ctilink.adapters.store.queries import log_reader
from ctilink.adapters.store.selection import open_service
from ctilink.domain import messages as m
from ctilink.domain.application import NetworkService
from ctilink.domain.network import recorded_at
from ctilink.projections.changes import AUDITED, compare, replay
from ctilink.projections.status import status
from tests.integration.test_replay import realistic_events
from tests.support import Harness, cli, decode, ev, installed, system

SCENARIO = Path(__file__).resolve().parents[2] / "examples" / "scenario.jsonl"


def json_lines(capsys: pytest.CaptureFixture[str], store: str, *args: str) -> list[Any]:
    """A `--json` answer, one document per line, that must succeed quietly."""
    rc, out, err = cli(capsys, *args, "--json", "--store", store)
    assert (rc, err) == (0, ""), err
    return [json.loads(line) for line in out.splitlines()]


@pytest.fixture(scope="module")
def scenario(new_store) -> str:  # type: ignore[no-untyped-def]
    """A store holding the example scenario (acme 27, globex 17, initech 9 positions)."""
    path = new_store()
    service = open_service(path)
    with SCENARIO.open("rb") as stream:
        ingest(service, stream, lambda report: None)
    service.close()
    return path


# --- replay equals a comparison of the status around every position ---------------


def apply(doc: dict[str, Any], step: dict[str, Any]) -> dict[str, Any]:
    """The status document after `step`, built from the one before and the changes alone."""
    mode = dict(doc["mode"])
    for key, (old, new) in step["mode"].items():
        assert mode.get(key) == old
        mode[key] = new
    provider_set = [p for p in doc["providers"] if p not in step["providers"]["removed"]]
    provider_set += step["providers"]["added"]
    rows = {(r["system"], r["component"]): r for r in doc["components"]}
    for change in step["components"]:
        key = (change["system"], change["component"])
        assert rows.get(key) == change["before"]
        if change["after"] is None:
            del rows[key]
        else:
            rows[key] = change["after"]
    return {
        "network": doc["network"],
        "position": step["position"],
        "mode": mode,
        "providers": sorted(provider_set, key=lambda p: (p["kind"], p["target"])),
        "components": [rows[k] for k in sorted(rows)],
    }


def status_doc(service: NetworkService, network: str, position: int) -> dict[str, Any]:
    return msgspec.to_builtins(status(*service.state_at(network, position)))


@pytest.mark.parametrize("seed", [20, 23])
def test_replay_reports_exactly_what_differs_around_every_position_s8_i4(
    service: NetworkService, seed: int
) -> None:
    # Generated logs over three networks in every mode: settings, conversions,
    # restarts, providers, systems, failover, links, users and directories.
    for event in realistic_events(seed, 700):
        service.ingest([decode(event)])  # the rejected ones are simply not logged
    seen: set[str] = set()
    for network in ("acme", "globex", "initech"):
        head = service.head(network)
        log = [(e.originator_version, e.message) for e in service.log(network)]
        seen |= {m.type_of(message) for _, message in log}
        steps = [msgspec.to_builtins(s) for s in replay(log)]
        assert [s["position"] for s in steps] == list(range(1, head + 1))

        previous = None
        built: dict[str, Any] = {"mode": {}, "providers": [], "components": [], "network": network}
        for step in steps:
            position = step["position"]
            current = status(*service.state_at(network, position))
            expected = msgspec.to_builtins(compare(previous, current))
            assert {k: step[k] for k in ("mode", "providers", "components")} == expected, (
                network,
                position,
            )
            # And the changes alone rebuild the document.
            built = apply(built, step)
            assert built == msgspec.to_builtins(current), (network, position)
            previous = current
    assert seen >= {
        "portal_restarted",
        "central_cti_link_set",
        "auto_provisioning_set",
        "converted_to_central",
        "failover",
        "failback",
        "link_changed",
        "voicemail_discovered",
        "directory_changed",
        "system_removed",
        "provider_configured",
        "provider_removed",
        "resilience_set",
    }  # every kind of event replay treats apart (ctilink.projections.changes.reach)


def test_fast_log_readers_read_what_service_log_reads_i4(
    service: NetworkService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # replay and --at-time read the stored rows themselves; they must agree with
    # the service's own reading of the log, at every page boundary and `upto`.
    # Some events carry an `at` (in several offsets), the others were received.
    service.ingest([decode(event) for event in realistic_events(23, 300)])
    monkeypatch.setattr(log_reader, "PAGE", 5)
    monkeypatch.setattr(log_reader, "FIRST_PAGE", 2)  # newest first: pages of 2, then 5
    for network in ("acme", "globex", "initech"):
        log = list(service.log(network))
        head = len(log)
        assert head > 3 * log_reader.PAGE
        expected = [(e.originator_version, e.message) for e in log]
        assert list(log_reader.logged_messages(service, network)) == expected
        for upto in (1, log_reader.PAGE, log_reader.PAGE + 1, head - 1, head):
            assert list(log_reader.logged_messages(service, network, upto)) == expected[:upto]
        times = [(e.originator_version, recorded_at(e)) for e in reversed(log)]
        assert list(log_reader.recorded_times(service, network)) == times


def test_replay_cli_stops_at_to_and_prints_one_json_object_per_position(
    scenario: str, capsys: pytest.CaptureFixture[str]
) -> None:
    steps = json_lines(capsys, scenario, "replay", "acme", "--to", "21")

    assert [s["position"] for s in steps] == list(range(1, 22))
    assert all(list(s) == ["position", "type", "mode", "providers", "components"] for s in steps)
    first = steps[0]
    assert first["type"] == "portal_installed"
    assert first["mode"]["configured"] == [None, "central"]  # M1: nothing before position 1
    failover = steps[20]
    assert failover["type"] == "failover"
    assert (failover["mode"], failover["providers"]) == ({}, {"added": [], "removed": []})
    # C2: every row moves to the secondary, the link states stay available.
    assert {(c["before"]["via"], c["after"]["via"]) for c in failover["components"]} == {
        ("se-primary", "se-secondary")
    }
    assert len(failover["components"]) == 8
    assert steps[11]["type"] == "directory_changed"  # §7 only: nothing in the status moves
    assert (steps[11]["mode"], steps[11]["components"]) == ({}, [])


def test_replay_rows_of_a_removed_system_have_no_after_i7(
    net: Harness, store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    net.given(installed("windows"), system("ipo-1"), ev("system_removed", system="ipo-1"))

    steps = json_lines(capsys, store_path, "replay", "acme")

    added, removed = steps[1]["components"], steps[2]["components"]
    assert [(c["component"], c["before"], c["after"]["state"]) for c in added] == [
        ("csta", None, "not_configured"),
        ("dsml", None, "not_configured"),
    ]
    assert [(c["component"], c["before"]["state"], c["after"]) for c in removed] == [
        ("csta", "not_configured", None),
        ("dsml", "not_configured", None),
    ]


def test_replay_human_output_shows_mode_provider_and_row_changes_m5_p1_p3(
    scenario: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, err = cli(capsys, "replay", "globex", "--store", scenario)

    assert (rc, err) == (0, "")
    lines = out.splitlines()
    assert "13 directory_changed (no change)" in lines
    restart = lines[lines.index("17 portal_restarted") :]
    assert restart[1:3] == [
        "     mode effective: legacy_auto → central",
        "     mode restart_pending: yes → no",
    ]
    assert "     provider added: csta gx-primary (central)" in restart
    assert "     provider removed: csta gx-south (manual)" in restart
    assert restart[-1] == (
        "     component gx-south dsml: unavailable via gx-south → available via gx-primary"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["replay", "globex", "--to", "18"], "position 18 is out of range"),
        (["replay", "globex", "--to", "0"], "position 0 is out of range"),
        (["replay", "nope"], "unknown network 'nope'"),
        (["audit", "nope"], "unknown network 'nope'"),
        (["diff", "globex", "1", "18"], "position 18 is out of range"),
        (["diff", "nope", "1", "2"], "unknown network 'nope'"),
    ],
)
def test_history_commands_fail_in_one_line(
    scenario: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    rc, out, err = cli(capsys, *args, "--store", scenario)

    assert (rc, out) == (2, "")
    assert err.startswith("ctilink: ") and message in err and err.count("\n") == 1


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal_and_for_a_long_log() -> None:
    assert Progress.maybe("replay", PROGRESS_FROM, io.StringIO()) is None  # not a terminal
    assert Progress.maybe("replay", PROGRESS_FROM - 1, Terminal()) is None  # too short to bother
    stream = Terminal()
    bar = Progress.maybe("replay", PROGRESS_FROM * 2, stream)
    assert bar is not None

    for done in range(1, PROGRESS_FROM * 2 + 1):
        bar.update(done)
    bar.close()

    drawn = stream.getvalue().split("\r")
    assert 150 <= len(drawn) <= 260  # redrawn every 0.5 %, not every position
    assert drawn[-2] == f"replay [{'#' * 30}] 100% {PROGRESS_FROM * 2:,}/{PROGRESS_FROM * 2:,}"
    assert drawn[-1] == "\x1b[K"  # the line is cleared at the end


def test_replay_writes_nothing_on_stderr_when_it_is_not_a_terminal(
    scenario: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, _, err = cli(capsys, "replay", "acme", "--json", "--store", scenario)

    assert (rc, err) == (0, "")


# --- audit ---------------------------------------------------------------------------


def test_audit_lists_conversion_and_restart_with_modes_before_and_after_m4_m5(
    scenario: str, capsys: pytest.CaptureFixture[str]
) -> None:
    found = json_lines(capsys, scenario, "audit", "globex")

    assert [(a["position"], a["type"]) for a in found] == [
        (1, "portal_installed"),
        (2, "system_added"),
        (3, "system_added"),
        (4, "system_added"),
        (5, "provider_configured"),
        (16, "converted_to_central"),
        (17, "portal_restarted"),
    ]  # link changes, voicemail, directories and users are not audited
    converted, restarted = found[-2:]
    assert list(restarted) == [
        "network",
        "position",
        "at",
        "actor",
        "type",
        "event",
        "configured",
        "effective",
    ]
    assert (converted["configured"], converted["effective"]) == (
        ["legacy_auto", "central"],
        ["legacy_auto", "legacy_auto"],
    )
    assert restarted == {
        "network": "globex",
        "position": 17,
        "at": "2024-03-05T10:19:00Z",
        "actor": "admin@globex",
        "type": "portal_restarted",
        "event": {
            "type": "portal_restarted",
            "id": "globex-017",
            "network": "globex",
            "at": "2024-03-05T10:19:00Z",
            "actor": "admin@globex",
        },
        "configured": ["central", "central"],
        "effective": ["legacy_auto", "central"],
    }
    assert found[0]["configured"] == [None, "legacy_auto"]  # M1: nothing before installation


def test_audit_covers_settings_providers_and_topology_but_not_rejected_attempts_i2(
    net: Harness, store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    net.given(
        installed("linux_server_edition", actor="admin"),
        system("se-1", role="primary"),
        system("se-2", role="secondary"),
        ev("resilience_set", enabled=True, actor="admin"),
        ev("link_changed", system="se-1", component="csta", up=True),
        ev("central_cti_link_set", enabled=False, actor="admin"),
        ev("provider_configured", kind="csta", system="se-2", actor="admin"),
        ev("failover", system="se-1"),
        ev("failback", system="se-1"),
        ev("portal_restarted"),
        ev("provider_removed", kind="csta", system="se-2", actor="admin"),
        ev("system_removed", system="se-2", actor="admin"),
    )
    rejected = net.when(ev("auto_provisioning_set", enabled=True, actor="mallory"))
    assert rejected.code == "wrong_setting"

    found = json_lines(capsys, store_path, "audit", "acme")

    assert [a["type"] for a in found] == [
        "portal_installed",
        "system_added",
        "system_added",
        "resilience_set",
        "central_cti_link_set",
        "provider_configured",
        "failover",
        "failback",
        "portal_restarted",
        "provider_removed",
        "system_removed",
    ]
    assert "mallory" not in {a["actor"] for a in found}  # rejected: never logged (I2)
    setting = found[4]
    assert (setting["position"], setting["actor"]) == (6, "admin")
    assert (setting["configured"], setting["effective"]) == (
        ["central", "manual"],
        ["central", "central"],
    )
    restart = found[8]
    assert restart["effective"] == ["central", "manual"]  # M5: the restart applies it
    assert {a["type"] for a in found} <= set(AUDITED)


def test_audit_since_and_type_filter_each_entry_by_its_recorded_time_i4(
    net: Harness, store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    net.given(
        installed("windows", at="2024-01-01T00:00:00Z"),
        system("ipo-1", at="2024-01-03T00:00:00Z"),
        system("ipo-2", at="2024-01-02T00:00:00Z"),  # reported late: `at` goes backwards
        ev("provider_configured", kind="csta", system="ipo-1", at="2024-01-04T00:00:00Z"),
    )

    since = json_lines(capsys, store_path, "audit", "acme", "--since", "2024-01-03T00:00:00Z")
    typed = json_lines(
        capsys, store_path, "audit", "acme", "--type", "system_added", "--type", "portal_installed"
    )
    both = json_lines(
        capsys,
        store_path,
        "audit",
        "acme",
        "--since",
        "2024-01-02T00:00:00+00:00",
        "--type",
        "system_added",
        "--type",
        "provider_configured",
    )

    assert [a["position"] for a in since] == [2, 4]
    assert [a["position"] for a in typed] == [1, 2, 3]
    assert [a["position"] for a in both] == [2, 3, 4]


def test_audit_type_must_be_an_audited_type(
    scenario: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["audit", "acme", "--type", "link_changed", "--store", scenario])

    assert exit_.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_audit_human_output_shows_mode_moves(
    scenario: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, err = cli(capsys, "audit", "globex", "--type", "portal_restarted", "--store", scenario)

    assert (rc, err) == (0, "")
    header, _rule, row = out.splitlines()
    assert header.split() == [
        "position",
        "at",
        "actor",
        "type",
        "fields",
        "configured",
        "effective",
    ]
    assert row.split() == [
        "17",
        "2024-03-05T10:19:00+00:00",
        "admin@globex",
        "portal_restarted",
        "central",
        "legacy_auto",
        "→",
        "central",
    ]


# --- diff ------------------------------------------------------------------------------


def test_diff_compares_the_status_at_two_positions_s8(
    scenario: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (found,) = json_lines(capsys, scenario, "diff", "globex", "15", "17")

    assert list(found) == ["network", "from", "to", "mode", "providers", "components"]
    assert (found["network"], found["from"], found["to"]) == ("globex", 15, 17)
    assert found["mode"] == {
        "setting": ["auto_provisioning", "central_cti_link"],
        "configured": ["legacy_auto", "central"],
        "effective": ["legacy_auto", "central"],
        "converted": [False, True],
    }  # restart_pending went true and back: no difference between the two ends
    assert found["providers"]["added"] == [
        {"kind": "csta", "target": "gx-primary", "origin": "central"},
        {"kind": "dsml", "target": "gx-primary", "origin": "central"},
    ]
    assert len(found["providers"]["removed"]) == 6  # P3's auto pairs and the manual record
    assert [(c["system"], c["component"]) for c in found["components"]] == [
        ("gx-north", "csta"),
        ("gx-north", "dsml"),
        ("gx-south", "csta"),
        ("gx-south", "dsml"),
    ]


def test_diff_backwards_is_the_mirror_and_a_position_with_itself_is_empty(
    scenario: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (forward,) = json_lines(capsys, scenario, "diff", "acme", "20", "21")
    (backward,) = json_lines(capsys, scenario, "diff", "acme", "21", "20")
    (same,) = json_lines(capsys, scenario, "diff", "acme", "12", "12")

    assert {k: [v[1], v[0]] for k, v in backward["mode"].items()} == forward["mode"]
    assert backward["providers"] == {
        "added": forward["providers"]["removed"],
        "removed": forward["providers"]["added"],
    }
    assert [(c["before"], c["after"]) for c in backward["components"]] == [
        (c["after"], c["before"]) for c in forward["components"]
    ]
    assert len(forward["components"]) == 8
    assert same == {
        "network": "acme",
        "from": 12,
        "to": 12,
        "mode": {},
        "providers": {"added": [], "removed": []},
        "components": [],
    }


def test_diff_human_output(scenario: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = cli(capsys, "diff", "acme", "12", "13", "--store", scenario)
    assert (rc, err, out) == (0, "", "acme: position 12 → 13\n  no differences\n")

    rc, out, err = cli(capsys, "diff", "acme", "10", "11", "--store", scenario)
    assert (rc, err) == (0, "")
    assert out == "acme: position 10 → 11\n  provider added: voicemail 10.10.0.20 (auto)\n"


def test_diff_same_as_replay_for_consecutive_positions(
    scenario: str, capsys: pytest.CaptureFixture[str]
) -> None:
    steps = json_lines(capsys, scenario, "replay", "acme")
    for step in steps[1:]:
        p = step["position"]
        (found,) = json_lines(capsys, scenario, "diff", "acme", str(p - 1), str(p))
        assert {k: found[k] for k in ("mode", "providers", "components")} == {
            k: step[k] for k in ("mode", "providers", "components")
        }, p


def test_audit_type_takes_one_type_so_the_network_after_it_is_the_network(
    scenario: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, err = cli(capsys, "audit", "--type", "portal_restarted", "globex", "--store", scenario)

    assert (rc, err) == (0, "")
    assert "portal_restarted" in out and "globex" not in err
