"""The command line against hostile input and damaged stores: one line, never a traceback.

Every command is run as a process (the console script), as a user runs it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ROOT

CTILINK = Path(sys.executable).parent / "ctilink"
SCENARIO = ROOT / "examples" / "scenario.jsonl"


def ctilink(
    *args: str, cwd: Path | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess:
    """The console script, with CTILINK_STORE unset."""
    env = {k: v for k, v in os.environ.items() if k != "CTILINK_STORE"}
    return subprocess.run(
        [str(CTILINK), *args], capture_output=True, input=stdin, env=env, cwd=cwd, timeout=120
    )


def one_line_error(done: subprocess.CompletedProcess, code: int = 2) -> str:
    """The one stderr line of a command that failed as it should."""
    err = done.stderr.decode()
    assert done.returncode == code, (done.returncode, err)
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


@pytest.fixture
def scenario_store(tmp_path: Path) -> Path:
    """A SQLite store holding the example scenario."""
    store = tmp_path / "ctilink.db"
    assert ctilink("ingest", str(SCENARIO), "--store", str(store)).returncode == 0
    return store


# --- damaged stores: every read command, every kind of damage ------------------------

READS = [
    ("status", "globex"),
    ("directory", "globex"),
    ("log", "globex"),
    ("export", "globex"),
    ("replay", "globex"),
    ("audit", "globex"),
    ("diff", "globex", "1", "16"),
    ("status", "globex", "--at-time", "2030-01-01T00:00:00Z"),
]
DAMAGE = {
    "garbage": "UPDATE stored_events SET state = x'00ff' WHERE {row}",
    "null": "UPDATE stored_events SET state = NULL WHERE {row}",
    "deleted": "DELETE FROM stored_events WHERE {row}",
    "renumbered": "UPDATE stored_events SET originator_version = 99 WHERE {row}",
    "foreign-class": "UPDATE stored_events SET topic = 'this:s' WHERE {row}",
}


@pytest.fixture(params=sorted(DAMAGE))
def damaged(request: pytest.FixtureRequest, scenario_store: Path) -> Path:
    """The scenario's store with globex's position 5 damaged one way."""
    with sqlite3.connect(scenario_store) as db:
        db.execute(
            DAMAGE[request.param].format(row="originator_id = 'globex' AND originator_version = 5")
        )
    return scenario_store


@pytest.mark.parametrize("command", READS, ids=[" ".join(c) for c in READS])
def test_a_damaged_row_is_one_line_naming_network_and_position_pointing_to_verify(
    damaged: Path, command: tuple[str, ...]
) -> None:
    error = one_line_error(ctilink(*command, "--store", str(damaged)))

    assert error.startswith("ctilink: network 'globex' cannot be read at position 5")
    assert "ctilink verify globex" in error


UNFORESEEN = {
    "version-text": "UPDATE stored_events SET originator_version = 'x' WHERE {row}",
    "id-null": "UPDATE stored_events SET originator_id = NULL WHERE {row}",
    "snapshot-version-text": "UPDATE stored_snapshots SET originator_version = 'abc' "
    "WHERE originator_id = 'acme'",
}


@pytest.mark.parametrize("damage", sorted(UNFORESEEN))
def test_damage_of_a_kind_not_foreseen_is_still_one_line_never_a_traceback(
    scenario_store: Path, damage: str
) -> None:
    with sqlite3.connect(scenario_store) as db:
        db.execute(
            UNFORESEEN[damage].format(row="originator_id = 'globex' AND originator_version = 5")
        )
    for command in [*READS, ("verify",), ("networks",), ("export",)]:
        done = ctilink(*command, "--store", str(scenario_store))
        err = done.stderr.decode()
        assert done.returncode in (0, 1, 2, 70), (command, done.returncode, err)
        assert "Traceback" not in err, command
        assert len(err.strip().splitlines()) <= 1, (command, err)


def test_networks_lists_every_network_from_its_index_line_whatever_the_damage_to_a_log(
    damaged: Path,
) -> None:
    done = ctilink("networks", "--json", "--store", str(damaged))

    # The index line was written with the events: `verify` is what finds the damage.
    assert done.returncode == 0, done.stderr
    assert [n["network"] for n in json.loads(done.stdout)] == ["acme", "globex", "initech"]


def test_networks_without_the_index_lists_the_healthy_networks_and_names_the_damaged_one(
    damaged: Path,
) -> None:
    with sqlite3.connect(damaged) as db:  # as a store from before the network index
        db.execute("DELETE FROM ctilink_meta WHERE key = 'networks'")
    done = ctilink("networks", "--json", "--store", str(damaged))

    error = one_line_error(done)
    assert [n["network"] for n in json.loads(done.stdout)] == ["acme", "initech"]
    assert "'globex'" in error


def test_verify_names_the_damage_and_imports_nothing(damaged: Path) -> None:
    done = ctilink("verify", "--json", "--store", str(damaged))

    verdicts = {v["network"]: v for v in map(json.loads, done.stdout.splitlines())}
    assert done.returncode == 1 and b"Traceback" not in done.stderr
    assert verdicts["globex"]["problem"]["position"] == 5
    assert verdicts["acme"]["ok"] and verdicts["initech"]["ok"]
    assert b"Zen of Python" not in done.stdout


def test_an_event_for_a_damaged_network_is_rejected_and_the_others_are_applied(
    damaged: Path, tmp_path: Path
) -> None:
    lines = [
        {"type": "portal_restarted", "id": "g-new", "network": "globex"},
        {"type": "portal_restarted", "id": "a-new", "network": "acme"},
    ]
    (tmp_path / "more.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))

    done = ctilink("ingest", str(tmp_path / "more.jsonl"), "--json", "--store", str(damaged))

    reports = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 1 and b"Traceback" not in done.stderr
    assert [(r["outcome"], r["code"]) for r in reports] == [
        ("rejected", "log_damaged"),
        ("accepted", None),
    ]


# --- stores that are not what they seem ---------------------------------------------


def test_another_applications_sqlite_file_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    other = tmp_path / "app.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE invoices (id INTEGER)")
    before = other.read_bytes()

    for command in (("ingest", str(SCENARIO)), ("status", "acme"), ("networks",)):
        error = one_line_error(ctilink(*command, "--store", str(other)))
        assert "SQLite database of something else (tables: invoices)" in error
    assert other.read_bytes() == before


def test_a_dry_run_on_a_missing_store_creates_nothing(tmp_path: Path) -> None:
    store = tmp_path / "never.db"

    done = ctilink("ingest", str(SCENARIO), "--dry-run", "--store", str(store))

    assert done.returncode == 0, done.stderr
    assert b"accepted   53" in done.stdout
    assert list(tmp_path.iterdir()) == []


def test_read_commands_write_nothing_to_the_store(scenario_store: Path) -> None:
    # (SQLite's WAL index files may appear beside it: they are how readers share it.)
    before = scenario_store.read_bytes()

    for command in (("status", "acme"), ("networks",), ("verify",), ("rejections",)):
        assert ctilink(*command, "--store", str(scenario_store)).returncode == 0

    assert scenario_store.read_bytes() == before


@pytest.fixture
def read_only_store(scenario_store: Path, tmp_path: Path) -> Iterator[Path]:
    """The scenario's store seen through a read-only bind mount."""
    mount = tmp_path / "ro"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "--bind", "-o", "ro", str(scenario_store.parent), str(mount)], capture_output=True
    )
    if done.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs a read-only mount: {done.stderr.decode().strip()}")
        pytest.skip(f"no read-only mount here: {done.stderr.decode().strip()}")
    subprocess.run(["mount", "-o", "remount,bind,ro", str(mount)], check=True)
    try:
        yield mount / scenario_store.name
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_store_on_read_only_media_can_be_read(read_only_store: Path) -> None:
    status = ctilink("status", "acme", "--json", "--store", str(read_only_store))
    verify = ctilink("verify", "--store", str(read_only_store))

    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["position"] == 27
    assert verify.returncode == 0, verify.stderr


# --- output that a terminal must not obey --------------------------------------------


def test_control_format_and_bidi_characters_in_ids_actors_and_names_are_shown_escaped(
    tmp_path: Path,
) -> None:
    store = tmp_path / "c.db"
    nasty = "\x1b[2J\x01bell\x07\u202enimda b\u200bob\u2028"  # (U+0000: invalid, I1 v1.1)
    lines = [
        {
            "type": "portal_installed",
            "id": f"i{nasty}",
            "network": "n",
            "platform": "windows",
            "actor": f"admin{nasty}",
        },
        {"type": "user_homed", "id": "u", "network": "n", "user": f"eve{nasty}", "system": "s"},
        {
            "type": "system_added",
            "id": "s",
            "network": "n",
            "system": "s",
            "role": "primary",
            "platform": "linux",
            "address": "10.0.0.1",
        },
        {"type": "user_homed", "id": "u2", "network": "n", "user": f"eve{nasty}", "system": "s"},
        {"type": "failover", "id": f"f{nasty}", "network": "n", "system": "gone"},
    ]
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    ctilink("ingest", str(tmp_path / "c.jsonl"), "--store", str(store))

    for command in (("log", "n"), ("directory", "n"), ("audit", "n"), ("rejections", "n")):
        done = ctilink(*command, "--store", str(store))
        assert done.returncode == 0, (command, done.stderr)
        for hidden in ("\x1b", "\x01", "\x07", "\u202e", "\u200b", "\u2028"):
            assert hidden.encode() not in done.stdout, (command, hidden)
        assert b"\\u001b[2J\\u0001bell\\u0007\\u202enimda b\\u200bob\\u2028" in done.stdout, command
    exact = ctilink("log", "n", "--json", "--store", str(store))
    assert json.loads(exact.stdout.splitlines()[0])["actor"] == f"admin{nasty}"  # --json: as sent


# --- arguments --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, reason",
    [
        (("ingest", "x", "--jobs", "0"), "not a whole number from 1"),
        (("status", "acme", "--at", "x"), "invalid int value"),
        (("status", "acme", "--nats", "garbage"), "is not a NATS URL"),
        (("verify", "--head", "0:zz"), "is not POSITION:HASH"),
        (("audit", "acme", "--type", "nope"), "invalid choice"),
        (("status", "acme", "--store", ""), "empty string"),
        (("status", "acme", "--store", "mysql://x"), "is not a store ctilink knows"),
        (("status", "\udcff"), "argument 2 is not UTF-8"),  # the byte 0xff, as the OS gives it
        (("ingest", "x", "--source", "\udcfe"), "argument 4 is not UTF-8"),
        (("serve", "--nats-port", "99999"), "is not a port (1 to 65535)"),
        (("ingest", "-", "--source", " "), "the source name is empty"),
        (("networks", "--store", "postgresql://x:y@[::1/db"), "cannot be read: Invalid IPv6"),
        (("networks", "--store", "postgresql://127.0.0.1/%00"), "holds control characters"),
        (
            ("networks", "--store", "postgresql://127.0.0.1/test?schema=nosuch"),
            "holds no ctilink log",
        ),
    ],
)
def test_bad_arguments_are_one_line_naming_the_argument(args: tuple[str, ...], reason: str) -> None:
    start = time.monotonic()

    error = one_line_error(ctilink(*args))

    assert reason in error
    assert time.monotonic() - start < 5  # named at once, never waited on


def test_a_bad_nats_url_in_the_environment_is_refused_at_once_naming_the_variable(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "CTILINK_NATS_URL": "garbage"}
    store = str(tmp_path / "s.db")
    done = subprocess.run(
        [str(CTILINK), "serve", "--store", store], capture_output=True, env=env, timeout=30
    )

    assert one_line_error(done).startswith("ctilink: $CTILINK_NATS_URL: 'garbage' is not a NATS")


def test_a_directory_given_as_the_file_is_named(tmp_path: Path) -> None:
    error = one_line_error(ctilink("ingest", str(tmp_path), "--store", str(tmp_path / "s.db")))

    assert error == f"ctilink: {tmp_path}: Is a directory"


def test_tls_options_in_a_postgresql_url_reach_the_server() -> None:
    url = "postgresql://postgres@127.0.0.1:5432/postgres?sslmode=require"

    error = one_line_error(ctilink("status", "acme", "--store", url))

    assert "SSL" in error  # the local server speaks no TLS: libpq was asked for it


def test_closing_the_output_of_ingest_json_ingests_the_whole_file_all_the_same(
    tmp_path: Path,
) -> None:
    store = tmp_path / "p.db"
    command = f"{CTILINK} ingest {SCENARIO} --json --batch 5 --store {store} | head -1"

    done = subprocess.run(["sh", "-c", command], capture_output=True, timeout=120)

    assert len(done.stdout.splitlines()) == 1
    assert b"Traceback" not in done.stderr
    networks = json.loads(ctilink("networks", "--json", "--store", str(store)).stdout)
    assert sum(n["position"] for n in networks) == 53  # every line, not the first batch only
