"""Ingest throughput next to raw SQLite inserts of the same lines (run on demand)."""

from __future__ import annotations

import argparse
import io
import sqlite3
import tempfile
import time
from pathlib import Path

import msgspec

from adapters.ingest import LineReport, ingest
from adapters.store import open_service
from bench.machine import describe
from bench.workload import interleaved_lines

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


def ctilink_ingest(path: Path, lines: list[bytes]) -> tuple[float, dict[str, int]]:
    """Seconds for ctilink to ingest the lines (as `ingest --json`), and the outcomes."""
    service = open_service(str(path))
    counts: dict[str, int] = {}
    sink = io.BytesIO()

    def report(line: LineReport) -> None:
        counts[line.outcome] = counts.get(line.outcome, 0) + 1
        sink.write(encode(line) + b"\n")  # what `ingest --json` prints

    stream = io.BytesIO(b"\n".join(lines) + b"\n")
    start = time.perf_counter()
    ingest(service, stream, report)
    elapsed = time.perf_counter() - start
    service.close()
    return elapsed, counts


def main() -> None:
    """Run both and print events/s and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--networks", type=int, default=200)
    parser.add_argument("--systems", type=int, default=10)
    args = parser.parse_args()
    lines = interleaved_lines(args.events, args.networks, args.systems)
    with tempfile.TemporaryDirectory() as tmp:
        raw = raw_sqlite(Path(tmp) / "raw.db", lines)
        ours, counts = ctilink_ingest(Path(tmp) / "ctilink.db", lines)
    n = len(lines)
    print(f"machine: {describe()}")
    print(f"events: {n} over {args.networks} networks; outcomes {counts}")
    print(f"raw sqlite executemany : {n / raw:10,.0f} events/s")
    print(f"ctilink ingest         : {n / ours:10,.0f} events/s")
    print(f"ratio raw/ctilink      : {raw and ours / raw:10.1f}x")


if __name__ == "__main__":
    main()
