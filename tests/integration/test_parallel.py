"""Ingest with worker processes gives exactly what one process gives (I3, I4)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zlib
from pathlib import Path

import msgspec
import pytest

from bench.workload import interleaved_lines, single_network_lines
from ctilink.adapters.cli.commands.ingest import PARALLEL_FROM_BYTES, worker_count
from ctilink.adapters.ingest.lines import LineReport, ingest, read_lines
from ctilink.adapters.ingest.parallel import ingest_parallel, route
from ctilink.adapters.store.selection import open_service
from ctilink.projections.directory import directory
from ctilink.projections.status import status

_encode = msgspec.json.Encoder().encode


def mixed_file() -> bytes:
    """Valid events of many networks, with bad lines, duplicates and rule breaks mixed in."""
    lines = interleaved_lines(6_000, networks=12, systems=4, seed=3)
    mixed = []
    for i, line in enumerate(lines):
        mixed.append(line)
        if i % 500 == 7:
            mixed.append(b"this is not json")
        if i % 700 == 11:
            mixed.append(line)  # a duplicate (I3)
        if i % 900 == 13:
            mixed.append(b'{"type":"failover","id":"x%d","network":"net-0001","system":"nope"}' % i)
        if i % 1100 == 5:
            mixed.append(b"   ")  # blank: skipped, still counted
    return b"\n".join(mixed) + b"\n"


def run(store: str, data: bytes, workers: int) -> list[LineReport]:
    """Ingest `data` into a fresh store with `workers` processes (1: in this process)."""
    service = open_service(store)
    reports: list[LineReport] = []
    if workers == 1:
        ingest(service, io.BytesIO(data), reports.append)
    else:
        ingest_parallel(store, read_lines(io.BytesIO(data)), reports.append, workers)
    service.close()
    return reports


def answers(store: str) -> dict[str, tuple[bytes, bytes, list[str]]]:
    """Every network's status, directory and logged ids."""
    service = open_service(store)
    result = {}
    for n in range(12):
        name = f"net-{n:04d}"
        state, position = service.state_at(name)
        ids = [event.message.id for event in service.log(name)]
        result[name] = (_encode(status(state, position)), _encode(directory(state, position)), ids)
    service.close()
    return result


@pytest.fixture(scope="module")
def both(new_store) -> dict[int, tuple[list[LineReport], str]]:  # type: ignore[no-untyped-def]
    data = mixed_file()
    runs = {}
    for workers in (1, 3):
        store = new_store()
        runs[workers] = (run(store, data, workers), store)
    return runs


def test_workers_report_every_line_once_in_input_order_i4(both):
    reports, _ = both[3]

    numbers = [r.line for r in reports]

    assert numbers == sorted(numbers)
    assert len(numbers) == len(set(numbers))
    assert {r.outcome for r in reports} == {"accepted", "duplicate", "rejected"}


def test_workers_give_the_same_outcome_for_every_line_as_one_process_i3_i4(both):
    serial, _ = both[1]
    parallel, _ = both[3]

    assert parallel == serial


def test_workers_leave_the_same_logs_status_and_directory_as_one_process_s8(both):
    _, serial_store = both[1]
    _, parallel_store = both[3]

    assert answers(parallel_store) == answers(serial_store)


def test_rerunning_with_workers_finds_every_line_a_duplicate_i3(both, tmp_path):
    reports, store = both[3]
    data = mixed_file()

    again = run(store, data, 2)  # another worker count: networks move between workers

    for first, second in zip(reports, again, strict=True):
        if first.outcome == "accepted":
            assert (second.outcome, second.position) == ("duplicate", first.position)
        else:
            assert second.outcome in ("duplicate", "rejected")


def test_a_network_always_goes_to_the_same_worker_i4():
    line = b'{"type":"portal_restarted","id":"a","network":"acme"}'
    other = b'{"network":"acme","id":"b","type":"portal_restarted","actor":"x"}'

    assert route(line, 5) == route(other, 5) == zlib.crc32(b"acme") % 5
    assert route(b"not json", 5) == 0
    assert route(None, 5) == 0


def test_default_worker_count_starts_workers_only_for_big_files(tmp_path: Path):
    small, big = tmp_path / "small", tmp_path / "big"
    small.write_bytes(b"x" * 1000)
    big.write_bytes(b"x" * (PARALLEL_FROM_BYTES + 1))

    with small.open("rb") as s, big.open("rb") as b:
        assert worker_count(None, s) == 1
        assert worker_count(None, b) == max(1, min(os.cpu_count() or 1, 4))
        assert worker_count(3, s) == 3
    assert worker_count(None, io.BytesIO(b"no file descriptor")) == 1


def test_cli_uses_workers_for_big_files_and_agrees_with_one_process(tmp_path: Path):
    data = b"\n".join(interleaved_lines(40_000, networks=40, systems=4, seed=5)) + b"\n"
    assert len(data) > 4 << 20  # big enough for the default to start workers
    events = tmp_path / "events.jsonl"
    events.write_bytes(data)

    outputs = []
    for jobs in ([], ["--jobs", "1"]):
        store = tmp_path / f"s{len(jobs)}.db"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "ctilink.adapters.cli",
                "ingest",
                "--json",
                "--store",
                str(store),
                *jobs,
                str(events),
            ],
            capture_output=True,
            check=False,
            timeout=300,
        )
        assert (done.returncode, done.stderr) == (0, b"")
        outputs.append(done.stdout)

    assert outputs[0] == outputs[1]
    assert outputs[0].count(b"\n") == 40_000


def test_a_share_and_a_reply_bigger_than_the_pipes_do_not_deadlock_i4(tmp_path: Path):
    # One network: one worker gets every line, and its reply fills the pipe while
    # the next chunk is being sent to it.
    data = b"\n".join(single_network_lines(25_000, systems=4)) + b"\n"

    reports = run(str(tmp_path / "one.db"), data, 2)

    assert [r.line for r in reports] == list(range(1, 25_001))
    assert {r.outcome for r in reports} == {"accepted"}
    assert reports[-1].position == 25_000
