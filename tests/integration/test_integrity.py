"""Tamper evidence: `ctilink verify` and `ctilink head` (Replay and audit tooling).

Every log position stores a hash chain over the events as logged (README, "Hash
chain"). These tests ingest the example scenario, then change the SQLite file
directly, as someone with access to the store but not to ctilink would: edit,
delete, swap and truncate rows, and rewrite a chain consistently. `verify` must
name the first position that is not as written; only a head kept elsewhere
(`verify --head`) can catch truncation and a consistent rewrite.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ctilink.adapters.cli.main import main
from ctilink.adapters.store.persistence.codec import StoredRecord, StoredSnapshot
from ctilink.adapters.store.selection import open_service
from ctilink.domain import messages as m
from ctilink.domain.network import GENESIS, link
from tests.support import Harness, decode, ev, installed, system

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCENARIO = EXAMPLES / "scenario.jsonl"
ACME_HEAD = 27  # acme's last position in the scenario


# --- stores ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example scenario ingested once; tests tamper with copies."""
    path = tmp_path_factory.mktemp("pristine") / "ctilink.db"
    service = open_service(str(path))
    lines = SCENARIO.read_bytes().splitlines()
    outcomes = service.ingest([m.decode(line) for line in lines])
    assert {o.outcome for o in outcomes} == {"accepted"}
    service.close()
    return path


@pytest.fixture
def store(pristine: Path, tmp_path: Path) -> Path:
    """A private copy of the scenario store."""
    copy = tmp_path / "ctilink.db"
    for suffix in ("", "-wal", "-shm"):
        source = Path(str(pristine) + suffix)
        if source.exists():
            shutil.copy(source, str(copy) + suffix)
    return copy


def cli(capsys: pytest.CaptureFixture[str], store: Path, *args: str) -> tuple[int, str]:
    """Run one ctilink command in process; (exit status, stdout)."""
    rc = main([*args, "--store", str(store)])
    return rc, capsys.readouterr().out


def verdicts(capsys: pytest.CaptureFixture[str], store: Path, *args: str) -> tuple[int, list[Any]]:
    """`verify --json`: (exit status, one verdict per network)."""
    rc, out = cli(capsys, store, "verify", *args, "--json")
    return rc, [json.loads(line) for line in out.splitlines()]


def problem_of(capsys: pytest.CaptureFixture[str], store: Path, *args: str) -> dict[str, Any]:
    """The single network's problem; the command must exit 1."""
    rc, (verdict,) = verdicts(capsys, store, *args)
    assert rc == 1 and verdict["ok"] is False, verdict
    return verdict["problem"]


def head_token(capsys: pytest.CaptureFixture[str], store: Path, network: str = "acme") -> str:
    """`POSITION:HASH` as `ctilink head --json` gives it."""
    rc, out = cli(capsys, store, "head", network, "--json")
    assert rc == 0
    found = json.loads(out)
    return f"{found['position']}:{found['hash']}"


# --- tampering with the SQLite file ---------------------------------------------------


def execute(store: Path, sql: str, *params: Any) -> None:
    """One statement on the store file, committed, with no ctilink process around."""
    db = sqlite3.connect(store)
    with db:
        db.execute(sql, params)
    db.close()


def row(store: Path, network: str, position: int) -> bytes:
    """The stored record at a position, as the `state` column holds it."""
    db = sqlite3.connect(store)
    (state,) = db.execute(
        "SELECT state FROM stored_events WHERE originator_id=? AND originator_version=?",
        (network, position),
    ).fetchone()
    db.close()
    return bytes(state)


def set_row(store: Path, network: str, position: int, state: bytes) -> None:
    """Overwrite the stored record at a position."""
    execute(
        store,
        "UPDATE stored_events SET state=? WHERE originator_id=? AND originator_version=?",
        state,
        network,
        position,
    )


def edit_event(store: Path, network: str, position: int, change: Callable[[dict], None]) -> None:
    """Change the event inside a stored record ([received, event, fingerprint, chain])."""
    record = json.loads(row(store, network, position))
    change(record[1])
    set_row(store, network, position, json.dumps(record).encode())


def rewrite_consistently(
    store: Path, network: str, position: int, change: Callable[[dict], None]
) -> None:
    """Edit one event and recompute its digest and every later hash, as a careful forger would."""
    db = sqlite3.connect(store)
    rows = db.execute(
        "SELECT originator_version, state FROM stored_events WHERE originator_id=? "
        "ORDER BY originator_version",
        (network,),
    ).fetchall()
    chain = GENESIS
    with db:
        for version, state in rows:
            record = msgspec.json.decode(state, type=StoredRecord)
            if version < position:
                chain = record.chain
                continue
            message = record.message
            if version == position:
                body = msgspec.to_builtins(message)
                change(body)
                message = m.decode(json.dumps(body))
            content = m.Content(message)
            chain = link(chain, content, record.timestamp)
            forged = StoredRecord(record.timestamp, message, content.fingerprint, chain)
            db.execute(
                "UPDATE stored_events SET state=? WHERE originator_id=? AND originator_version=?",
                (msgspec.json.encode(forged), network, version),
            )
    db.close()


# --- an untouched store ---------------------------------------------------------------


def test_an_untouched_store_verifies_every_network_and_exits_0(capsys, store):
    rc, found = verdicts(capsys, store)

    assert rc == 0
    assert [(v["network"], v["ok"], v["problem"]) for v in found] == [
        ("acme", True, None),
        ("globex", True, None),
        ("initech", True, None),
    ]
    assert [v["position"] for v in found] == [ACME_HEAD, 17, 9]


def test_head_is_the_last_position_and_the_chain_recomputed_over_the_whole_log(capsys, store):
    service = open_service(str(store))
    chain = GENESIS
    for event in service.log("acme"):
        chain = link(chain, m.Content(event.message), event.timestamp)
    service.close()

    rc, out = cli(capsys, store, "head", "acme", "--json")

    assert rc == 0
    assert json.loads(out) == {"network": "acme", "position": ACME_HEAD, "hash": chain.hex()}
    assert head_token(capsys, store) == f"{ACME_HEAD}:{chain.hex()}"


def test_head_text_output_gives_the_token_for_verify(capsys, store):
    token = head_token(capsys, store)

    rc, out = cli(capsys, store, "head", "acme")

    assert rc == 0
    assert out.splitlines()[-1].split() == ["--head", token]


def test_a_head_kept_earlier_still_verifies_after_the_log_grew(capsys, store):
    token = head_token(capsys, store)
    service = open_service(str(store))
    Harness(service).given(ev("portal_restarted"), ev("portal_restarted"))
    service.close()

    rc, (verdict,) = verdicts(capsys, store, "acme", "--head", token)

    assert rc == 0 and verdict["ok"] is True
    assert verdict["position"] == ACME_HEAD + 2


# --- tampering found in the store itself ----------------------------------------------


def test_an_edited_event_is_named_at_its_position(capsys, store):
    # Position 22: the primary's CSTA link went down during the failover; say it stayed up.
    edit_event(store, "acme", 22, lambda event: event.update(up=True))

    assert problem_of(capsys, store, "acme") == {
        "position": 22,
        "kind": "chain",
        "message": "the stored hash differs from the one recomputed from the log",
    }


def test_tampering_in_one_network_leaves_the_others_verified_and_exits_1(capsys, store):
    edit_event(store, "globex", 5, lambda event: event.update(actor="mallory"))

    rc, found = verdicts(capsys, store)

    assert rc == 1
    assert [(v["network"], v["ok"]) for v in found] == [
        ("acme", True),
        ("globex", False),
        ("initech", True),
    ]
    assert found[1]["problem"]["position"] == 5


def test_a_deleted_row_is_named_as_a_gap(capsys, store):
    execute(store, "DELETE FROM stored_events WHERE originator_id='acme' AND originator_version=12")

    problem = problem_of(capsys, store, "acme")

    assert (problem["position"], problem["kind"]) == (12, "gap")


def test_swapped_rows_are_named_at_the_first_of_the_two(capsys, store):
    fifth, ninth = row(store, "acme", 5), row(store, "acme", 9)
    set_row(store, "acme", 5, ninth)
    set_row(store, "acme", 9, fifth)

    problem = problem_of(capsys, store, "acme")

    assert (problem["position"], problem["kind"]) == (5, "chain")


def test_a_row_that_cannot_be_decoded_is_named(capsys, store):
    set_row(store, "acme", 7, b'["not a stored record"]')

    problem = problem_of(capsys, store, "acme")

    assert (problem["position"], problem["kind"]) == (7, "unreadable")


def test_a_row_relabelled_as_another_record_kind_is_named(capsys, store):
    # Position 3 made to look like a second portal_installed record (its topic).
    execute(
        store,
        "UPDATE stored_events SET topic='ctilink.domain.network:Installed' "
        "WHERE originator_id='acme' AND originator_version=3",
    )

    problem = problem_of(capsys, store, "acme")

    assert (problem["position"], problem["kind"]) == (3, "unreadable")


def test_a_changed_idempotency_digest_is_named(capsys, store):
    # The chain still matches, but I3 would no longer recognise the event as a duplicate.
    record = json.loads(row(store, "initech", 4))
    record[2] = "AAAAAAAAAAAAAAAAAAAAAA=="
    set_row(store, "initech", 4, json.dumps(record).encode())

    problem = problem_of(capsys, store, "initech")

    assert (problem["position"], problem["kind"]) == (4, "fingerprint")


def test_the_text_report_names_network_position_and_kind(capsys, store):
    edit_event(store, "acme", 22, lambda event: event.update(up=True))

    rc, out = cli(capsys, store, "verify")

    assert rc == 1
    lines = out.splitlines()
    assert lines[2].split()[:5] == ["acme", str(ACME_HEAD), "TAMPERED", "at", "position"]
    assert "22 (chain)" in lines[2]
    assert lines[3].split() == ["globex", "17", "ok"]


# --- what only a head kept elsewhere catches ------------------------------------------


def test_a_truncated_log_whose_ids_stay_indexed_is_caught_by_the_index(capsys, store):
    execute(store, "DELETE FROM stored_events WHERE originator_id='acme' AND originator_version>24")

    problem = problem_of(capsys, store, "acme")

    assert (problem["position"], problem["kind"]) == (24, "index")
    assert f"holds {ACME_HEAD} ids for 24 positions" in problem["message"]


def test_a_truncated_log_and_id_index_are_caught_by_the_network_index_line(capsys, store):
    execute(store, "DELETE FROM stored_events WHERE originator_id='acme' AND originator_version>24")
    execute(store, "DELETE FROM ctilink_ids WHERE network='acme' AND position>24")

    problem = problem_of(capsys, store, "acme")

    assert (problem["position"], problem["kind"]) == (24, "index")
    assert f"position {ACME_HEAD}, the log 24" in problem["message"]


def test_truncation_with_both_indexes_rebuilt_is_caught_only_with_a_kept_head(capsys, store):
    token = head_token(capsys, store)
    execute(store, "DELETE FROM stored_events WHERE originator_id='acme' AND originator_version>24")
    assert main(["reindex", "--store", str(store)]) == 0  # the indexes agree with the rest again
    capsys.readouterr()

    rc, (verdict,) = verdicts(capsys, store, "acme")
    assert (rc, verdict["ok"], verdict["position"]) == (0, True, 24)

    problem = problem_of(capsys, store, "acme", "--head", token)
    assert (problem["position"], problem["kind"]) == (25, "truncated")


def test_a_consistently_rewritten_chain_is_caught_only_by_the_kept_head(capsys, store):
    token = head_token(capsys, store)
    rewrite_consistently(store, "acme", 22, lambda event: event.update(up=True))

    rc, (verdict,) = verdicts(capsys, store, "acme")
    assert (rc, verdict["ok"]) == (0, True)  # nothing inside the store disagrees
    assert verdict["hash"] != token.split(":")[1]

    problem = problem_of(capsys, store, "acme", "--head", token)
    assert (problem["position"], problem["kind"]) == (ACME_HEAD, "head")


def test_a_rewrite_after_the_kept_head_passes_the_head_check(capsys, store):
    # The head vouches for positions up to itself; a later rewrite is outside it.
    token = f"20:{head_at(store, 'acme', 20)}"
    rewrite_consistently(store, "acme", 22, lambda event: event.update(up=True))

    rc, (verdict,) = verdicts(capsys, store, "acme", "--head", token)

    assert (rc, verdict["ok"]) == (0, True)


def head_at(store: Path, network: str, position: int) -> str:
    """The hash stored at a position, hex."""
    return msgspec.json.decode(row(store, network, position), type=StoredRecord).chain.hex()


# --- snapshots answer status too ------------------------------------------------------


@pytest.fixture
def snapshotted(tmp_path: Path) -> Path:
    """A network of 30 positions ingested in batches of 10, with snapshots at 10, 20, 30."""
    path = tmp_path / "snap.db"
    service = open_service(str(path))
    service.writes.snapshot_interval = 10
    events = [installed(), system("se-primary", role="primary")]
    events += [
        ev("link_changed", system="se-primary", component="csta", up=i % 2 == 0) for i in range(28)
    ]
    for start in range(0, 30, 10):
        service.ingest([decode(e) for e in events[start : start + 10]])
    service.close()
    db = sqlite3.connect(path)
    versions = [v for (v,) in db.execute("SELECT originator_version FROM stored_snapshots")]
    db.close()
    assert sorted(versions) == [10, 20, 30]
    return path


def test_a_tampered_snapshot_is_named_at_its_position(capsys, snapshotted):
    db = sqlite3.connect(snapshotted)
    (state,) = db.execute(
        "SELECT state FROM stored_snapshots WHERE originator_version=20"
    ).fetchone()
    snapshot = msgspec.json.decode(state, type=StoredSnapshot)
    snapshot.state.effective = snapshot.state.configured = "manual"
    with db:
        db.execute(
            "UPDATE stored_snapshots SET state=? WHERE originator_version=20",
            (msgspec.json.encode(snapshot),),
        )
    db.close()
    # The forged snapshot is what status now answers from (up to the next one).
    rc, out = cli(capsys, snapshotted, "status", "acme", "--at", "25", "--json")
    assert rc == 0
    assert json.loads(out)["mode"]["effective"] == "manual"

    problem = problem_of(capsys, snapshotted, "acme")

    assert (problem["position"], problem["kind"]) == (20, "snapshot")


def test_a_log_cut_below_its_last_snapshot_is_caught_without_a_head(capsys, snapshotted):
    execute(
        snapshotted,
        "DELETE FROM stored_events WHERE originator_id='acme' AND originator_version>25",
    )

    problem = problem_of(capsys, snapshotted, "acme")

    assert (problem["position"], problem["kind"]) == (26, "truncated")


# --- usage ----------------------------------------------------------------------------


def test_an_unknown_network_exits_2(capsys, store):
    assert main(["verify", "nope", "--store", str(store)]) == 2
    assert main(["head", "nope", "--store", str(store)]) == 2
    assert "unknown network 'nope'" in capsys.readouterr().err


def test_head_without_a_network_exits_2(capsys, store):
    token = head_token(capsys, store)

    assert main(["verify", "--head", token, "--store", str(store)]) == 2
    assert capsys.readouterr().err == "ctilink: verify --head needs a NETWORK\n"


@pytest.mark.parametrize("token", ["27", "x:00", "0:" + "00" * 32, "27:" + "00" * 31, "27:zz"])
def test_a_malformed_head_is_a_usage_error(capsys, store, token):
    with pytest.raises(SystemExit) as exit_:
        main(["verify", "acme", "--head", token, "--store", str(store)])

    assert exit_.value.code == 2
    assert "is not POSITION:HASH" in capsys.readouterr().err


def test_the_console_script_exits_1_on_tampering(store):
    edit_event(store, "acme", 22, lambda event: event.update(up=True))
    ctilink = Path(sys.executable).parent / "ctilink"

    run = subprocess.run(
        [str(ctilink), "verify", "--store", str(store)],
        capture_output=True,
        timeout=60,
        check=False,
    )

    assert run.returncode == 1
    assert run.stderr == b""
    assert b"TAMPERED at position 22" in run.stdout
