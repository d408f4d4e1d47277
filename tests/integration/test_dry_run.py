"""`ctilink ingest --dry-run`: what a file would change, committing nothing (Replay and audit).

A dry run decides every line exactly as ingest would (SPEC §3, the same checks in
the same order), then compares each network's status before and after (§8). The
store must be untouched, and the report must be what a real ingest then does.
"""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ctilink.adapters.cli.main import main
from ctilink.adapters.store.selection import open_service
from ctilink.projections.changes import compare
from ctilink.projections.providers import Provider
from ctilink.projections.status import ComponentRow, ModeView, Status, status

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCENARIO = EXAMPLES / "scenario.jsonl"


def line(type_: str, network: str, id_: str, **fields: Any) -> str:
    """One JSON line."""
    return json.dumps({"type": type_, "id": id_, "network": network, **fields})


# acme ends the scenario in central mode with a secondary and resilience on.
CHANGES = [
    line("failover", "acme", "x-1", system="se-primary"),  # C2: rows move to the secondary
    line("central_cti_link_set", "globex", "x-2", enabled=False),  # M5: restart pending
    line("portal_installed", "newco", "x-3", platform="windows"),  # M1: manual
    line(
        "system_added",
        "newco",
        "x-4",
        system="ipo",
        role="primary",
        platform="ip500v2",
        address="10.9.0.1",
    ),
    line("link_changed", "initech", "x-5", system="nope", component="csta", up=True),  # I6
    line("portal_restarted", "acme", "acme-001"),  # I3: the id is taken, content differs
    SCENARIO.read_text().splitlines()[0],  # I3: a duplicate, acknowledged
    '{"type": "bogus", "id": "x-6", "network": "acme"}',  # I1
    "not json",  # I1, names no network
]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example scenario ingested once."""
    path = tmp_path_factory.mktemp("pristine") / "ctilink.db"
    assert main(["ingest", str(SCENARIO), "--store", str(path)]) == 0
    return path


@pytest.fixture
def store(pristine: Path, tmp_path: Path) -> Path:
    """A private copy of the scenario store."""
    copy = tmp_path / "ctilink.db"
    for suffix in ("", "-wal", "-shm"):
        if Path(str(pristine) + suffix).exists():
            shutil.copy(str(pristine) + suffix, str(copy) + suffix)
    return copy


@pytest.fixture
def changes(tmp_path: Path) -> Path:
    """The file to try."""
    path = tmp_path / "changes.jsonl"
    path.write_text("\n".join(CHANGES) + "\n")
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """One command in process: (exit status, stdout)."""
    rc = main(list(args))
    return rc, capsys.readouterr().out


def dry_run(capsys, store: Path, changes: Path) -> tuple[int, dict[str | None, Any]]:
    """`ingest --dry-run --json`, keyed by network."""
    rc, out = run(capsys, "ingest", str(changes), "--dry-run", "--json", "--store", str(store))
    found = [json.loads(text) for text in out.splitlines()]
    return rc, {entry["network"]: entry for entry in found}


def snapshot_of(store: Path) -> tuple[Any, ...]:
    """Everything a dry run must leave alone: every row of the store."""
    db = sqlite3.connect(store)
    rows = tuple(db.execute("SELECT * FROM stored_events ORDER BY 1, 2").fetchall())
    snaps = tuple(db.execute("SELECT * FROM stored_snapshots ORDER BY 1, 2").fetchall())
    db.close()
    return rows, snaps


# --- the store is untouched -----------------------------------------------------------


def test_a_dry_run_commits_nothing(capsys, store, changes):
    before = snapshot_of(store)

    rc, _ = dry_run(capsys, store, changes)
    run(capsys, "ingest", str(changes), "--dry-run", "--store", str(store))

    assert rc == 1  # some lines would be rejected, as ingest would say
    assert snapshot_of(store) == before
    # And a real ingest afterwards is not disturbed: the ids are still free (I3).
    rc, out = run(capsys, "ingest", str(changes), "--json", "--store", str(store))
    assert [json.loads(text)["outcome"] for text in out.splitlines()][:4] == ["accepted"] * 4


def test_the_dry_run_reports_are_what_ingest_then_reports(capsys, store, changes):
    _, previewed = dry_run(capsys, store, changes)
    _, out = run(capsys, "ingest", str(changes), "--json", "--store", str(store))

    real = [json.loads(text) for text in out.splitlines()]
    predicted = sorted(
        (report for entry in previewed.values() for report in entry["lines"]),
        key=lambda report: report["line"],
    )
    assert predicted == real


def test_the_predicted_changes_are_those_ingest_makes(capsys, store, changes):
    service = open_service(str(store))
    old = {n: status(*service.state_at(n)) for n in ("acme", "globex")}
    service.close()

    _, previewed = dry_run(capsys, store, changes)
    run(capsys, "ingest", str(changes), "--store", str(store))

    service = open_service(str(store))
    for network in ("acme", "globex", "newco"):
        new = status(*service.state_at(network))
        real = json.loads(msgspec.json.encode(compare(old.get(network), new)))
        entry = previewed[network]
        assert {k: entry[k] for k in ("mode", "providers", "components")} == real
        assert entry["to"] == new.position
    service.close()


# --- what the report says -------------------------------------------------------------


def test_a_failover_moves_every_row_to_the_secondary_c2(capsys, store, changes):
    _, previewed = dry_run(capsys, store, changes)

    acme = previewed["acme"]
    assert (acme["from"], acme["to"]) == (27, 28)
    assert acme["mode"] == {} and acme["providers"] == {"added": [], "removed": []}
    assert {(c["before"]["via"], c["after"]["via"]) for c in acme["components"]} == {
        ("se-primary", "se-secondary")
    }
    assert len(acme["components"]) == 8  # 4 systems x csta, dsml (C1)


def test_a_setting_changes_the_configured_mode_only_until_a_restart_m5(capsys, store, changes):
    _, previewed = dry_run(capsys, store, changes)

    assert previewed["globex"]["mode"] == {
        "configured": ["central", "manual"],
        "restart_pending": [False, True],
    }


def test_a_network_not_installed_yet_has_no_before(capsys, store, changes):
    _, previewed = dry_run(capsys, store, changes)

    newco = previewed["newco"]
    assert (newco["from"], newco["to"]) == (None, 2)
    assert newco["mode"]["effective"] == [None, "manual"]  # M1: new, not Server Edition
    assert [(c["system"], c["before"], c["after"]["state"]) for c in newco["components"]] == [
        ("ipo", None, "not_configured"),
        ("ipo", None, "not_configured"),
    ]


def test_rejected_lines_are_listed_with_their_network(capsys, store, changes):
    rc, previewed = dry_run(capsys, store, changes)

    assert rc == 1
    initech = previewed["initech"]
    assert (initech["from"], initech["to"], initech["components"]) == (9, 9, [])
    assert [(r["line"], r["code"]) for r in initech["lines"]] == [(5, "unknown_system")]
    acme_lines = [(r["line"], r["outcome"], r["code"]) for r in previewed["acme"]["lines"]]
    assert acme_lines == [
        (1, "accepted", None),
        (6, "rejected", "id_conflict"),
        (7, "duplicate", None),
        (8, "rejected", "invalid"),
    ]
    assert [(r["line"], r["code"]) for r in previewed[None]["lines"]] == [(9, "invalid")]


def test_a_file_with_no_rejections_exits_0(capsys, store, tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text(CHANGES[0] + "\n")

    rc, out = run(capsys, "ingest", str(good), "--dry-run", "--store", str(store))

    assert rc == 0
    assert out.startswith("dry run: nothing was committed\n")
    assert "acme: position 27 -> position 28" in out
    assert "se-primary -> se-secondary" in out


def test_the_text_report_lists_changes_and_rejections(capsys, store, changes):
    rc, out = run(capsys, "ingest", str(changes), "--dry-run", "--store", str(store))

    assert rc == 1
    assert "globex: position 17 -> position 18" in out
    assert "mode: configured central -> manual, restart_pending no -> yes" in out
    assert "newco: not installed -> position 2" in out
    assert "initech: position 9, unchanged" in out
    assert [row.split()[:3] for row in out.splitlines() if "unknown_system" in row] == [
        ["5", "x-5", "unknown_system"]
    ]


def test_a_dry_run_reads_standard_input(capsys, store, monkeypatch):
    stdin = io.TextIOWrapper(io.BytesIO((CHANGES[0] + "\n").encode()))
    monkeypatch.setattr("sys.stdin", stdin)

    rc, out = run(capsys, "ingest", "-", "--dry-run", "--json", "--store", str(store))

    assert rc == 0
    assert [json.loads(text)["network"] for text in out.splitlines()] == ["acme"]


# --- comparing two status documents (projections/changes.py) --------------------------


def doc(position: int, providers: list[Provider], rows: list[ComponentRow], **mode: Any) -> Status:
    """A status document with a central-mode block unless told otherwise."""
    block = dict(
        setting="central_cti_link",
        configured="central",
        effective="central",
        restart_pending=False,
        converted=False,
        central_available=True,
    )
    block.update(mode)
    return Status("acme", position, ModeView(**block), providers, rows)


CSTA = ComponentRow("p", "primary", "csta", "available", "p")


def test_documents_that_differ_only_in_position_have_no_changes():
    assert compare(doc(1, [], [CSTA]), doc(9, [], [CSTA])).empty


def test_a_provider_whose_origin_changes_is_one_removed_and_one_added():
    auto, manual = Provider("csta", "p", "auto"), Provider("csta", "p", "manual")

    changes = compare(doc(1, [auto], []), doc(2, [manual], []))

    assert (changes.providers.added, changes.providers.removed) == ([manual], [auto])


def test_rows_added_removed_and_changed_are_keyed_by_system_and_component():
    down = ComponentRow("p", "primary", "csta", "unavailable", "p")
    extra = ComponentRow("e", "expansion", "dsml", "available", "p")

    changes = compare(doc(1, [], [CSTA, extra]), doc(2, [], [down]))

    assert [(c.system, c.component, c.before, c.after) for c in changes.components] == [
        ("e", "dsml", extra, None),
        ("p", "csta", CSTA, down),
    ]


def test_only_the_mode_keys_that_differ_are_listed():
    changes = compare(doc(1, [], []), doc(2, [], [], effective="manual", restart_pending=True))

    assert changes.mode == {"effective": ("central", "manual"), "restart_pending": (False, True)}


def test_with_nothing_before_everything_after_is_new():
    changes = compare(None, doc(1, [Provider("csta", "p", "central")], [CSTA]))

    assert set(changes.mode) == set(ModeView.__struct_fields__)
    assert all(old is None for old, _ in changes.mode.values())
    assert changes.providers.added == [Provider("csta", "p", "central")]
    assert [(c.before, c.after) for c in changes.components] == [(None, CSTA)]
