"""A store written before ctilink was one package loads, verifies and answers as it did.

Its rows name their classes by the old topics (`domain.network:Recorded`);
tests/fixtures/store-before-package/README.md says how it was made.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

import pytest

from ctilink.adapters.cli.main import main
from tests.support import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "store-before-package"
EXPECTED: dict[str, str] = json.loads((FIXTURE / "expected.json").read_text())


@pytest.fixture(scope="module")
def old_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The old store, made from its SQL dump (a store file does not belong in the repository)."""
    store = tmp_path_factory.mktemp("old") / "ctilink.db"
    with closing(sqlite3.connect(store)) as db:
        db.executescript((FIXTURE / "ctilink.sql").read_text())
        db.execute("PRAGMA journal_mode=WAL")  # as the old build left it
    return store


def test_the_fixture_really_holds_old_topics(old_store: Path) -> None:
    with sqlite3.connect(old_store) as db:
        topics = {row[0] for row in db.execute("SELECT topic FROM stored_events")}
        snapshots = {row[0] for row in db.execute("SELECT topic FROM stored_snapshots")}

    assert topics == {"domain.network:Installed", "domain.network:Recorded"}
    assert snapshots == {"domain.network:Snapshot"}


@pytest.mark.parametrize("command", sorted(EXPECTED))
def test_every_answer_is_byte_identical_to_the_old_build_s8(
    command: str, old_store: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    rc = main([*command.split(), "--store", str(old_store)])

    assert rc == 0
    assert capsysbinary.readouterr().out.decode() == EXPECTED[command]


def test_new_events_append_to_an_old_network_and_the_chain_still_verifies(
    old_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "ctilink.db"
    shutil.copy(old_store, store)
    line = '{"type":"portal_restarted","id":"after-upgrade","network":"longnet"}\n'
    (tmp_path / "more.jsonl").write_text(line)

    assert main(["ingest", str(tmp_path / "more.jsonl"), "--store", str(store)]) == 0
    assert main(["verify", "--store", str(store), "--json"]) == 0
    verdicts = [json.loads(v) for v in capsys.readouterr().out.splitlines()[-4:]]
    assert {(v["network"], v["ok"]) for v in verdicts} >= {("longnet", True)}
    assert [v["position"] for v in verdicts if v["network"] == "longnet"] == [251]


def test_rows_are_written_under_the_stable_names_so_earlier_builds_read_them(
    tmp_path: Path,
) -> None:
    store = tmp_path / "new.db"
    events = FIXTURE / "events.jsonl"

    assert main(["ingest", str(events), "--store", str(store)]) == 0

    with sqlite3.connect(store) as db:
        topics = {row[0] for row in db.execute("SELECT topic FROM stored_events")}
        snapshots = {row[0] for row in db.execute("SELECT topic FROM stored_snapshots")}
    assert topics == {"domain.network:Installed", "domain.network:Recorded"}
    assert snapshots == {"domain.network:Snapshot"}


def test_a_row_naming_any_other_class_is_unreadable_and_nothing_is_imported(
    old_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "tampered.db"
    shutil.copy(old_store, store)
    with sqlite3.connect(store) as db:  # `this:s` would print the Zen of Python if imported
        db.execute(
            "UPDATE stored_events SET topic = 'this:s' "
            "WHERE originator_id = 'acme' AND originator_version = 2"
        )

    rc = main(["verify", "acme", "--json", "--store", str(store)])

    out, _ = capsys.readouterr()
    assert rc == 1
    assert json.loads(out)["problem"]["kind"] == "unreadable"
    assert "The Zen of Python" not in out
    assert "this" not in sys.modules
