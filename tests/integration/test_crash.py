"""A crash never changes a decision: `ctilink ingest` killed again and again, then run to the end.

The file is rich in rejections that depend on order (events for a network not
installed yet, systems not added yet, a second primary, a conversion twice, an
id sent again with other content): deciding a line a second time, against a
later state, would often turn a rejection into an acceptance. Every line's
first outcome is kept with its batch, so the runs after a SIGKILL report each
line as it was first decided, decide only the rest, and end with exactly the
logs, hash chains and reports of one uninterrupted run.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import zlib
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from ctilink.adapters.cli.main import main
from ctilink.adapters.store.maintenance.verification import head, strays, verify
from ctilink.adapters.store.queries.log import heads
from ctilink.adapters.store.selection import open_service
from tests.scenarios import order_dependent_events

TIMEOUT = 120
KILLS = 12  # per store and process layout: 48 SIGKILLs in all
BATCH = 250  # lines a commit: many commits, so that each kill lands in a fresh one


def write_jsonl(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(event) + "\n" for event in events))
    return path


def ingest_command(store: str, events_file: Path, jobs: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ctilink.adapters.cli",
        "ingest",
        "--store",
        store,
        "--json",
        "--jobs",
        str(jobs),
        "--batch",
        str(BATCH),
        str(events_file),
    ]


def parse_reports(output: bytes) -> list[dict[str, Any]]:
    """The complete report lines; a line cut short by the kill is dropped."""
    complete = output[: output.rfind(b"\n") + 1]
    return [json.loads(line) for line in complete.splitlines()]


def run_and_kill(command: list[str], cwd: Path, after_lines: int) -> tuple[int, bytes]:
    """Start the command, SIGKILL it once it has printed `after_lines` lines."""
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    chunks: list[bytes] = []
    enough = threading.Event()

    def pump() -> None:
        # Drain stdout continuously, so the writer is never held up by the pipe
        # and the kill lands wherever it happens to be: deciding, committing, printing.
        seen = 0
        while chunk := os.read(proc.stdout.fileno(), 1 << 16):
            chunks.append(chunk)
            seen += chunk.count(b"\n")
            if seen >= after_lines:
                enough.set()
        enough.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        assert enough.wait(TIMEOUT), "ingest printed nothing in time"
        proc.send_signal(signal.SIGKILL)
        returncode = proc.wait(TIMEOUT)
        reader.join(TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return returncode, b"".join(chunks)


def run_to_completion(command: list[str], cwd: Path) -> tuple[int, list[dict[str, Any]], str]:
    done = subprocess.run(command, cwd=cwd, capture_output=True, timeout=TIMEOUT, check=False)
    assert b"Traceback" not in done.stderr, done.stderr.decode(errors="replace")
    return done.returncode, parse_reports(done.stdout), done.stderr.decode()


def logs_and_heads(store: str) -> dict[str, tuple[list[str], str]]:
    """Every network's logged ids, and the hash at its head."""
    service = open_service(store)
    try:
        recorder: Any = service.recorder
        return {
            name: ([e.message.id for e in service.log(name)], head(service, name).hash)
            for name, _ in heads(recorder)
        }
    finally:
        service.close()


def problems(store: str) -> list[str]:
    """What `ctilink verify` finds in the store: log, id index and network index agree."""
    service = open_service(store)
    try:
        recorder: Any = service.recorder
        names = [name for name, _ in heads(recorder)]
        verdicts = [verify(service, name) for name in names] + strays(service, names)
        return [f"{v.network}: {v.problem}" for v in verdicts if v.problem is not None]
    finally:
        service.close()


@pytest.fixture(scope="module")
def scenario(
    tmp_path_factory: pytest.TempPathFactory,
    new_store,  # type: ignore[no-untyped-def]
) -> tuple[Path, list[dict[str, Any]], dict[str, Any]]:
    """The file, and what one uninterrupted run makes of it."""
    folder = tmp_path_factory.mktemp("crash")
    events_file = write_jsonl(folder / "events.jsonl", order_dependent_events(seed=5, count=12_000))
    store = new_store()
    returncode, reports, _ = run_to_completion(ingest_command(store, events_file, 1), folder)
    outcomes = {r["outcome"] for r in reports}
    rejected = sum(r["outcome"] == "rejected" for r in reports)
    assert returncode == 1 and outcomes == {"accepted", "rejected", "duplicate"}
    assert rejected > len(reports) // 5, "the scenario must be rich in rejections"
    return events_file, reports, logs_and_heads(store)


@pytest.mark.parametrize("jobs", [1, 2], ids=["one-process", "two-workers"])
def test_killed_again_and_again_then_run_to_the_end_equals_one_uninterrupted_run_i3_i4(
    tmp_path: Path,
    scenario: tuple[Path, list[dict[str, Any]], dict[str, Any]],
    jobs: int,
    new_store,  # type: ignore[no-untyped-def]
) -> None:
    events_file, expected, uninterrupted = scenario
    store = new_store()
    command = ingest_command(store, events_file, jobs)
    rng = random.Random(jobs)

    reported = 0
    for _ in range(KILLS):
        # Past what the runs before reported: the kill lands in a run that is deciding.
        after = reported + rng.randrange(1, BATCH)
        returncode, output = run_and_kill(command, tmp_path, min(after, len(expected) - 1))
        assert returncode == -signal.SIGKILL, f"ingest ended by itself ({returncode})"
        # What a killed run reported is each line's first decision, whenever it was made.
        killed = parse_reports(output)
        assert killed == expected[: len(killed)]
        assert reported < len(killed) < len(expected)
        reported = len(killed)
        # Killed mid-batch: the indexes hold exactly what the log holds.
        assert problems(store) == []

    returncode, reports, said = run_to_completion(command, tmp_path)

    assert returncode == 1
    assert reports == expected
    assert "decided by an earlier run" in said
    assert logs_and_heads(store) == uninterrupted


def test_a_completed_file_changes_nothing_and_lines_added_since_are_ingested_as_new_i3(
    tmp_path: Path,
    scenario: tuple[Path, list[dict[str, Any]], dict[str, Any]],
    new_store,  # type: ignore[no-untyped-def]
) -> None:
    events_file, expected, uninterrupted = scenario
    store = new_store()
    copy = tmp_path / "growing.jsonl"
    copy.write_bytes(events_file.read_bytes())
    command = ingest_command(store, copy, 1)
    run_to_completion(command, tmp_path)

    returncode, again, said = run_to_completion(command, tmp_path)
    assert (returncode, again) == (1, expected)
    assert f"{len(expected)} lines were decided by an earlier run" in said
    assert logs_and_heads(store) == uninterrupted

    added = {
        "type": "portal_restarted",
        "id": "later",
        "network": "net-00",
        "at": "2024-02-01T00:00:00Z",
    }
    with copy.open("a") as out:
        out.write(json.dumps(added) + "\n")
    returncode, grown, _ = run_to_completion(command, tmp_path)
    assert grown[:-1] == expected
    assert (grown[-1]["line"], grown[-1]["id"]) == (len(expected) + 1, "later")
    assert grown[-1]["outcome"] in ("accepted", "rejected")


def test_a_file_changed_where_it_was_ingested_is_refused_naming_the_line(
    tmp_path: Path,
    new_store,  # type: ignore[no-untyped-def]
) -> None:
    store = new_store()
    events = order_dependent_events(seed=9, count=300)
    path = write_jsonl(tmp_path / "events.jsonl", events)
    command = ingest_command(store, path, 1)
    run_to_completion(command, tmp_path)
    before = logs_and_heads(store)

    events[120] = {**events[120], "actor": "someone-else"}
    write_jsonl(path, [*events, {"type": "portal_restarted", "id": "new", "network": "net-01"}])
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT)

    assert done.returncode == 2
    assert done.stderr.startswith("ctilink: line 121 differs from the line ingested")
    assert done.stdout == ""
    assert logs_and_heads(store) == before  # nothing of the changed file was decided


def test_standard_input_resumes_when_named_with_source_i3(
    tmp_path: Path,
    new_store,  # type: ignore[no-untyped-def]
) -> None:
    store = new_store()
    events = order_dependent_events(seed=11, count=400)
    data = "".join(json.dumps(event) + "\n" for event in events).encode()
    command = [
        sys.executable,
        "-m",
        "ctilink.adapters.cli",
        "ingest",
        "-",
        "--json",
        "--source",
        "feed-1",
        "--store",
        store,
    ]

    first = subprocess.run(command, input=data, capture_output=True, timeout=TIMEOUT)
    second = subprocess.run(command, input=data, capture_output=True, timeout=TIMEOUT)
    unnamed = subprocess.run(
        [*command[:-4], "--store", store], input=data, capture_output=True, timeout=TIMEOUT
    )

    assert parse_reports(second.stdout) == parse_reports(first.stdout)
    assert b"decided by an earlier run" in second.stderr
    # Unnamed, standard input is decided afresh: accepted lines are duplicates by id (I3).
    accepted = [r["line"] for r in parse_reports(first.stdout) if r["outcome"] == "accepted"]
    redecided = {r["line"]: r["outcome"] for r in parse_reports(unnamed.stdout)}
    assert {redecided[line] for line in accepted} == {"duplicate"}


def test_a_last_line_still_being_written_is_decided_again_once_finished_i1_i3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, path = str(tmp_path / "ctilink.db"), tmp_path / "growing.jsonl"
    installed = '{"type":"portal_installed","id":"i","network":"n","platform":"windows"}\n'
    restart = '{"type":"portal_restarted","id":"r","network":"n"}'
    path.write_text(installed + restart[:20])  # the appender has written half a line

    assert main(["ingest", str(path), "--json", "--store", store]) == 1  # a line rejected
    first = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    path.write_text(installed + restart + "\n")  # and now the rest
    assert main(["ingest", str(path), "--json", "--store", store]) == 0
    second = [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    assert [(r["line"], r["outcome"]) for r in first] == [(1, "accepted"), (2, "rejected")]
    assert first[1]["code"] == "invalid"
    assert [(r["line"], r["outcome"], r["position"]) for r in second] == [
        (1, "accepted", 1),  # as decided the first time
        (2, "accepted", 2),
    ]


def test_a_damaged_record_of_a_files_lines_is_one_line_pointing_to_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, path = str(tmp_path / "ctilink.db"), tmp_path / "events.jsonl"
    path.write_text('{"type":"portal_installed","id":"i","network":"n","platform":"windows"}\n')
    assert main(["ingest", str(path), "--store", store]) == 0
    for damage in (b"\x00\x00", zlib.compress(b"\x91\x01")):
        with closing(sqlite3.connect(store)) as db, db:
            db.execute("UPDATE ctilink_outcomes SET lines = ?", (damage,))
        capsys.readouterr()

        assert main(["ingest", str(path), "--store", store]) == 2
        err = capsys.readouterr().err
        assert err.startswith("ctilink: the store's record of lines 1-1 of ")
        assert "is damaged" in err and "--again" in err
    assert main(["ingest", str(path), "--again", "--store", store]) == 0
