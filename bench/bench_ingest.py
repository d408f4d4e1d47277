"""Ingest throughput next to raw SQLite inserts of the same lines (run on demand)."""

from __future__ import annotations

import argparse
import io
import sqlite3
import tempfile
import time
from pathlib import Path

import msgspec

from bench.machine import describe
from bench.workload import interleaved_lines
from ctilink.adapters.ingest.lines import LineReport, ingest, read_lines
from ctilink.adapters.ingest.parallel import ingest_parallel
from ctilink.adapters.store.selection import open_service

RAW_TRANSACTION = 1000
encode = msgspec.json.Encoder().encode


def raw_sqlite(path: Path, lines: list[bytes]) -> float:
    """Seconds to executemany the lines into a (stream, version)-keyed table."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")  # the same durability as ctilink's store
    db.execute(
        "CREATE TABLE log (stream TEXT, version INTEGER, payload BLOB, "
        "PRIMARY KEY (stream, version))"
    )
    versions: dict[bytes, int] = {}
    rows = []
    for line in lines:
        stream = line.split(b'"network":"', 1)[1].split(b'"', 1)[0]
        versions[stream] = versions.get(stream, 0) + 1
        rows.append((stream.decode(), versions[stream], line))
    start = time.perf_counter()
    for i in range(0, len(rows), RAW_TRANSACTION):
        db.execute("BEGIN")
        db.executemany("INSERT INTO log VALUES (?,?,?)", rows[i : i + RAW_TRANSACTION])
        db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    db.close()
    return elapsed


def ctilink_ingest(path: Path, lines: list[bytes], workers: int) -> tuple[float, dict[str, int]]:
    """Seconds for ctilink to ingest the lines as `ingest --json` does, and the outcomes."""
    service = open_service(str(path))  # creates the tables, as the CLI does
    counts: dict[str, int] = {}
    sink = io.BytesIO()

    def report(line: LineReport) -> None:
        counts[line.outcome] = counts.get(line.outcome, 0) + 1
        sink.write(encode(line) + b"\n")  # what `ingest --json` prints

    stream = io.BytesIO(b"\n".join(lines) + b"\n")
    start = time.perf_counter()
    if workers == 1:
        ingest(service, stream, report)
    else:
        ingest_parallel(str(path), read_lines(stream), report, workers)  # with starting them
    elapsed = time.perf_counter() - start
    service.close()
    return elapsed, counts


def ingest_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The workload and worker options the ingest benchmarks share."""
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--networks", type=int, default=200)
    parser.add_argument("--systems", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    return parser


def main() -> None:
    """Run raw SQLite, then ctilink with one process and with workers; print events/s."""
    parser = argparse.ArgumentParser(description=__doc__)
    args = ingest_arguments(parser).parse_args()
    lines = interleaved_lines(args.events, args.networks, args.systems)
    n = len(lines)
    print(f"machine: {describe()}")
    with tempfile.TemporaryDirectory() as tmp:
        raw = raw_sqlite(Path(tmp) / "raw.db", lines)
        print(f"events: {n} over {args.networks} networks, {args.systems} systems each")
        print(f"raw sqlite executemany    : {n / raw:10,.0f} events/s")
        for workers in sorted({1, args.workers}):
            seconds, counts = ctilink_ingest(Path(tmp) / f"ctilink-{workers}.db", lines, workers)
            assert counts == {"accepted": n}, counts
            label = (
                "ctilink ingest, 1 process"
                if workers == 1
                else f"ctilink ingest, {workers} workers"
            )
            print(f"{label:26s}: {n / seconds:10,.0f} events/s   raw/ctilink {seconds / raw:4.1f}x")


if __name__ == "__main__":
    main()
