"""Replay throughput next to a raw read-and-decode of the same rows, and `status --at` latency.

Builds a store of `--events` events over `--networks` networks (one of them,
`big`, holds `--big` events; the others are the interleaved Server Edition
networks of bench/workload.py), then, in one run:

- raw: plain sqlite3 SELECT of every network's stored_events rows in order, and
  msgspec decode of each row's state (the whole stored record: receive time,
  event, digests);
- replay: what `ctilink replay NETWORK` does for every network (read the log,
  fold, compare), and with --json (encode one JSON line per position);
- slower ways to the same answers, for comparison: replay reading the log through
  `service.log` (eventsourcing domain events); a whole status document per
  position; the domain read (`state_at`) per position, on a sample;
- `status --at` at depths 10, 10,000 and 100,000 of `big` from a fresh service
  (nearest snapshot plus at most 99 events, project, encode JSON), the same as a
  new `ctilink` process, and the `--at-time` lookup for the time of that position.

Run on demand (not part of the test suite):

    .venv/bin/python -m bench.bench_replay                      # 1,000,000 events
    .venv/bin/python -m bench.bench_replay --events 100000      # quick
    .venv/bin/python -m bench.bench_replay --store /tmp/r.db    # keep the store; reuse it next time
"""

from __future__ import annotations

import argparse
import io
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from bench.machine import describe
from bench.workload import interleaved_lines, single_network_lines
from ctilink.adapters.cli.as_of import position_at
from ctilink.adapters.ingest.lines import BATCH_LINES, LineReport, ingest
from ctilink.adapters.store.persistence.codec import StoredRecord
from ctilink.adapters.store.queries.log import network_heads
from ctilink.adapters.store.queries.log_reader import (
    logged_messages,
    position_recorded_by,
    recorded_times,
)
from ctilink.adapters.store.selection import open_service
from ctilink.domain.application import NetworkService
from ctilink.domain.network import recorded_at
from ctilink.domain.state import evolve, install
from ctilink.projections.changes import compare, position_at_time, replay
from ctilink.projections.status import status

BIG = "big"
DEPTHS = (10, 10_000, 100_000)
encode = msgspec.json.Encoder().encode
decode_record = msgspec.json.Decoder(StoredRecord).decode
Reader = Callable[[NetworkService, str], Iterator[tuple[int, Any]]]


def build(path: Path, events: int, networks: int, systems: int, big: int, big_batch: int) -> None:
    """Generate the workload and ingest it as `ctilink ingest --jobs 1` does."""
    start = time.perf_counter()
    lines = interleaved_lines(events - big, networks - 1, systems)
    big_lines = single_network_lines(big, systems)
    generated = time.perf_counter()
    counts: dict[str, int] = {}

    def report(line: LineReport) -> None:
        counts[line.outcome] = counts.get(line.outcome, 0) + 1

    # One process: with workers, `big`'s long run of lines goes to one worker as
    # one large share, and ctilink.adapters.ingest.parallel then deadlocks (the parent and that
    # worker both blocked sending on their pipe).
    service = open_service(str(path))
    ingest(service, io.BytesIO(b"\n".join(lines) + b"\n"), report)
    # The service snapshots a network at most once per committed batch, so the
    # batch size of `big` sets how far apart its snapshots are.
    ingest(service, io.BytesIO(b"\n".join(big_lines) + b"\n"), report, batch_lines=big_batch)
    service.close()
    assert counts == {"accepted": len(lines) + big}, counts
    print(
        f"built: {len(lines) + big:,} events over {networks:,} networks in "
        f"{time.perf_counter() - start:.0f} s (generate {generated - start:.0f} s, "
        f"ingest {time.perf_counter() - generated:.0f} s)"
    )


def raw_read(path: Path, names: list[str]) -> tuple[float, int]:
    """Seconds to SELECT every network's rows in order and decode each stored record."""
    db = sqlite3.connect(path)
    count = 0
    start = time.perf_counter()
    for name in names:
        rows = db.execute(
            "SELECT state FROM stored_events WHERE originator_id=? ORDER BY originator_version",
            (name,),
        ).fetchall()
        for (state,) in rows:
            decode_record(state)
        count += len(rows)
    elapsed = time.perf_counter() - start
    db.close()
    return elapsed, count


def through_service_log(service: NetworkService, name: str) -> Iterator[tuple[int, Any]]:
    """(position, message) read through the service's domain events."""
    return ((e.originator_version, e.message) for e in service.log(name))


def replay_all(
    service: NetworkService, names: list[str], json_lines: bool, read: Reader = logged_messages
) -> tuple[float, int]:
    """Seconds to replay every network as `replay` does (--json: and encode every line)."""
    sink = io.BytesIO()
    count = 0
    start = time.perf_counter()
    for name in names:
        for step in replay(read(service, name)):
            count += 1
            if json_lines:
                sink.write(encode(step) + b"\n")
        sink.seek(0)
        sink.truncate()
    return time.perf_counter() - start, count


def full_status_per_position(service: NetworkService, name: str, limit: int) -> float:
    """Events/s of folding and building a whole status document at every position."""
    start = time.perf_counter()
    state, previous = None, None
    for position, message in logged_messages(service, name, limit):
        if state is None:
            state = install(message)
        else:
            evolve(state, message)
        current = status(state, position)
        encode(compare(previous, current))
        previous = current
    return limit / (time.perf_counter() - start)


def state_at_per_position(service: NetworkService, name: str, limit: int) -> float:
    """Events/s of asking the domain for the state at every position (snapshot + fold)."""
    start = time.perf_counter()
    previous = None
    for position in range(1, limit + 1):
        current = status(*service.state_at(name, position))
        encode(compare(previous, current))
        previous = current
    return limit / (time.perf_counter() - start)


def latency(call: Callable[[], object], calls: int) -> tuple[float, float]:
    """p50 and p99 of a call, in milliseconds."""
    timings = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        timings.append(time.perf_counter() - start)
    timings.sort()
    return statistics.median(timings) * 1e3, timings[int(len(timings) * 0.99)] * 1e3


def cli_wall(path: Path, *args: str, runs: int = 5) -> float:
    """Median wall time of a `ctilink` command in a new process, in milliseconds."""
    ctilink = str(Path(sys.executable).parent / "ctilink")
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            [ctilink, *args, "--json", "--store", str(path)], check=True, stdout=subprocess.DEVNULL
        )
        timings.append(time.perf_counter() - start)
    return statistics.median(timings) * 1e3


def rate(label: str, count: int, seconds: float, raw: float) -> None:
    """One throughput line, with its time next to the raw read's."""
    per_second = count / seconds
    print(f"{label:38s}: {per_second:9,.0f} events/s ({seconds:5.1f} s)  {seconds / raw:4.1f}x raw")


def measure(path: Path, calls: int, sample: int) -> None:
    """Every measurement on a built store."""
    service = open_service(str(path))
    heads = dict(network_heads(service))
    names = sorted(heads)
    total = sum(heads.values())
    print(f"store: {total:,} events over {len(names):,} networks; {BIG}: {heads.get(BIG, 0):,}")

    raw_s, raw_n = raw_read(path, names)
    replay_s, replay_n = replay_all(service, names, json_lines=False)
    json_s, json_n = replay_all(service, names, json_lines=True)
    slow_s, slow_n = replay_all(service, names, json_lines=False, read=through_service_log)
    assert raw_n == replay_n == json_n == slow_n == total
    rate("raw SELECT + decode stored record", raw_n, raw_s, raw_s)
    rate("replay (read, fold, compare)", replay_n, replay_s, raw_s)
    rate("replay --json (and encode each line)", json_n, json_s, raw_s)
    rate("replay, log read through service.log", slow_n, slow_s, raw_s)
    first = names[0]
    limit = min(sample, heads[first])
    whole = full_status_per_position(service, first, limit)
    domain = state_at_per_position(service, first, min(limit, 500))
    print(
        f"  on {first}'s first {limit:,} positions: a whole status per position "
        f"{whole:,.0f} events/s; state_at per position {domain:,.0f} events/s"
    )
    service.close()

    fresh = open_service(str(path))  # nothing cached, as in a new process
    head = heads.get(BIG, 0)
    snapshots = snapshot_positions(path, BIG)
    gaps = [b - a for a, b in zip([0, *snapshots], snapshots, strict=False)]
    print(
        f"{BIG}: {len(snapshots)} snapshots, {min(gaps, default=0):,} to "
        f"{max(gaps, default=0):,} positions apart (at most one per committed batch)"
    )
    times = dict(history_times(fresh, head))
    for depth in DEPTHS:
        if depth > head:
            print(f"status --at {depth:>7,}: skipped ({BIG} has {head:,} positions)")
            continue
        for position in sorted({depth, max(1, depth - 1)}):
            base = max((p for p in snapshots if p <= position), default=0)
            p50, p99 = latency(lambda p=position: encode(status(*fresh.state_at(BIG, p))), calls)
            wall = cli_wall(path, "status", BIG, "--at", str(position))
            print(
                f"status --at {position:>7,} ({position - base:>5,} events after its snapshot): "
                f"p50 {p50:6.2f} ms, p99 {p99:6.2f} ms in process; new process {wall:4.0f} ms"
            )
        t50, t99 = latency(lambda w=times[depth]: position_at(fresh, BIG, w), max(5, calls // 10))
        print(
            f"  --at-time lookup of position {depth:,}'s time "
            f"({head - depth:,} positions after it): p50 {t50:6.1f} ms, p99 {t99:6.1f} ms"
        )
    if head:  # the worst case of a scan: a moment before the first event reads the whole log
        (first_event,) = fresh.events.get(BIG, gt=0, lte=1)
        early = recorded_at(first_event)
        early -= timedelta(days=1)
        by_index, _ = latency(lambda: position_recorded_by(fresh, BIG, early), calls)
        by_scan, _ = latency(
            lambda: position_at_time(recorded_times(fresh, BIG), early), max(3, calls // 100)
        )
        print(
            f"  --at-time before the first of {head:,} positions: index p50 {by_index:6.2f} ms; "
            f"a scan of the log (as before the index) {by_scan:8.1f} ms = "
            f"{by_scan / by_index:,.0f}x"
        )
    fresh.close()


def snapshot_positions(path: Path, name: str) -> list[int]:
    """The positions of the network's stored snapshots."""
    db = sqlite3.connect(path)
    rows = db.execute(
        "SELECT originator_version FROM stored_snapshots WHERE originator_id=? ORDER BY 1",
        (name,),
    ).fetchall()
    db.close()
    return [row[0] for row in rows]


def history_times(service: NetworkService, head: int) -> Iterator[tuple[int, datetime]]:
    """The recorded time of each of `big`'s DEPTHS positions."""
    for depth in DEPTHS:
        if depth <= head:
            (event,) = service.events.get(BIG, gt=depth - 1, lte=depth)
            yield depth, recorded_at(event)


def main() -> None:
    """Build (or reuse) the store, then measure."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--networks", type=int, default=1_000)
    parser.add_argument("--systems", type=int, default=10)
    parser.add_argument("--big", type=int, default=100_000, help="events of the network `big`")
    parser.add_argument(
        "--big-batch",
        type=int,
        default=BATCH_LINES,
        help="ingest `big` in batches of this many lines (default: as `ctilink ingest`)",
    )
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--sample", type=int, default=20_000)
    parser.add_argument("--store", help="keep the store here; an existing one is reused as is")
    args = parser.parse_args()
    big = min(args.big, args.events // 2)
    print(f"machine: {describe()}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.store) if args.store else Path(tmp) / "ctilink.db"
        if not path.exists():
            build(path, args.events, args.networks, args.systems, big, args.big_batch)
        measure(path, args.calls, args.sample)


if __name__ == "__main__":
    main()
