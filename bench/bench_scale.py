"""Thousands of networks: 1,000 → 10,000 → 100,000 networks of 20 events, on SQLite or PostgreSQL.

For each size: the ingest rate (`ctilink ingest` as a process), the network
index's size, `ctilink networks --json` (every network) next to one
`ctilink status` on the same store, `status` next to the same network alone in
a store of its own, then `ctilink serve` on the store: the first page and every
page of `ctilink.api.networks`, the end-to-end rate of a fresh batch through NATS
next to raw JetStream publishing of the same payloads on the same server, and the
service's resident memory.

    python -m bench.bench_scale                                   # SQLite
    python -m bench.bench_scale --postgres postgresql://postgres@127.0.0.1:5432
    python -m bench.bench_scale --sizes 1000 10000                # quicker

The file is written a thousand networks at a time, their events interleaved:
many networks in every batch, as a busy service sees them, while a writer's
cache (CTILINK_CACHED_NETWORKS, 10,000) keeps what it works on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import nats
from nats.js.api import StorageType, StreamConfig

from bench.bench_history import run
from bench.bench_nats import fresh_store, start_instances
from bench.machine import describe
from bench.workload import network_events
from ctilink.adapters.nats.batch import BatchPublisher
from ctilink.adapters.nats.embedded import EmbeddedNats

SYSTEMS = 3  # 1 install + 3 systems + resilience + 12 users: 17 events, then the mix
PER_NETWORK = 20
WINDOW = 1_000  # networks whose events are interleaved in the file
FRESH = 20_000  # events of the batch sent through NATS
REPEATS = 5
encode = msgspec.json.Encoder().encode


def name(n: int) -> str:
    """The n-th network's name."""
    return f"net-{n:06d}"


def write_store_file(path: Path, networks: int, rng: random.Random) -> list:  # type: ignore[type-arg]
    """PER_NETWORK events for each network, interleaved a window at a time; the streams."""
    streams = [network_events(name(n), SYSTEMS, rng) for n in range(networks)]
    with path.open("wb") as out:
        for first in range(0, networks, WINDOW):
            window = streams[first : first + WINDOW]
            lines = [encode(next(s)) for s in window]  # installed first
            order = [s for s in window for _ in range(PER_NETWORK - 1)]
            rng.shuffle(order)
            lines += [encode(next(s)) for s in order]
            out.write(b"\n".join(lines) + b"\n")
    return streams


def fresh_batch(streams: list, rng: random.Random) -> list[bytes]:  # type: ignore[type-arg]
    """FRESH more events, each of a network picked at random from the whole store."""
    return [encode(next(rng.choice(streams))) for _ in range(FRESH)]


def median_run(arguments: list[str]) -> tuple[float, float]:
    """Median seconds and peak MB of REPEATS runs of one command."""
    runs = [run(arguments) for _ in range(REPEATS)]
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


def index_size(store: str) -> float:
    """MB of the network index (table and key) in the store."""
    if store.startswith("postgresql"):
        import psycopg

        with psycopg.connect(store.split("?")[0]) as db:
            row = db.execute(
                "SELECT SUM(pg_total_relation_size(oid)) FROM pg_class "
                "WHERE relname = 'ctilink_networks'"
            ).fetchone()
            return float(row[0] or 0) / 2**20 if row else 0.0
    import sqlite3

    with sqlite3.connect(store) as db:
        row = db.execute(
            "SELECT SUM(pgsize) FROM dbstat WHERE name LIKE '%ctilink_networks%'"
        ).fetchone()
    return (row[0] or 0) / 2**20


def resident_mb(pid: int) -> float:
    """The process's resident memory now, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def pages(nc: nats.NATS, limit: int | None = None) -> tuple[float, int]:
    """(seconds, networks) of paging through ctilink.api.networks (only the first: limit)."""
    started, after, count = time.perf_counter(), None, 0
    while True:
        query = {} if after is None else {"after": after}
        reply = await nc.request("ctilink.api.networks", json.dumps(query).encode(), timeout=60)
        if reply.headers and "Nats-Service-Error-Code" in reply.headers:
            # A ctilink from before paging answers everything at once, and `after` is a 400.
            assert after is not None, reply.headers
            return time.perf_counter() - started, count
        page = json.loads(reply.data)
        count += len(page)
        if not page or limit is not None:
            return time.perf_counter() - started, count
        after = page[-1]["network"]


async def publish_all(nc: nats.NATS, prefix: str, lines: list[bytes]) -> None:
    """Publish each line to <prefix>.<network>, a window of 1,000 awaiting their acks."""
    outgoing = [(f"{prefix}.{json.loads(line)['network']}", line, None) for line in lines]
    batch = BatchPublisher(nc)
    await batch.start()
    for first in range(0, len(outgoing), 1000):
        await batch.publish(outgoing[first : first + 1000], timeout=120)


async def end_to_end(nc: nats.NATS, lines: list[bytes]) -> float:
    """Events/s from publishing to ctilink.in.* until each is seen on ctilink.events.*."""
    seen = 0
    done = asyncio.Event()

    async def on_event(_: object) -> None:
        nonlocal seen
        seen += 1
        if seen == len(lines):
            done.set()

    subscription = await nc.subscribe("ctilink.events.>", cb=on_event)
    started = time.perf_counter()
    await publish_all(nc, "ctilink.in", lines)
    await asyncio.wait_for(done.wait(), timeout=1200)
    elapsed = time.perf_counter() - started
    await subscription.unsubscribe()
    return len(lines) / elapsed


async def raw_jetstream(nc: nats.NATS, lines: list[bytes]) -> float:
    """Events/s of publishing the same payloads to a plain stream and getting each ack."""
    js = nc.jetstream()
    await js.add_stream(
        StreamConfig(name="BENCH_RAW", subjects=["bench.raw.>"], storage=StorageType.FILE)
    )
    started = time.perf_counter()
    await publish_all(nc, "bench.raw", lines)
    elapsed = time.perf_counter() - started
    await js.delete_stream("BENCH_RAW")
    return len(lines) / elapsed


async def serve_figures(url: str, fresh: list[bytes]) -> dict[str, float]:
    """First page, every page, end-to-end and raw rates, over one connection."""
    nc = await nats.connect(url)
    try:
        first = statistics.median([(await pages(nc, limit=1000))[0] for _ in range(REPEATS)])
        whole, count = await pages(nc)
        rate = await end_to_end(nc, fresh)
        raw = await raw_jetstream(nc, fresh)
    finally:
        await nc.close()
    return {"first page": first, "all pages": whole, "listed": count, "e2e": rate, "raw": raw}


def measure(tmp: Path, store: str, alone: str, networks: int) -> dict[str, float]:
    """Every figure for one size (`alone`: an empty store of the same kind)."""
    rng = random.Random(networks)
    lines = tmp / "events.jsonl"
    streams = write_store_file(lines, networks, rng)
    events = networks * PER_NETWORK
    seconds, _ = run(["ingest", str(lines), "--store", store])
    found: dict[str, float] = {"ingest": events / seconds, "index MB": index_size(store)}
    found["networks"], found["networks MB"] = median_run(["networks", "--json", "--store", store])
    found["status"], _ = median_run(["status", name(0), "--json", "--store", store])

    # The same network in a store of its own.
    (tmp / "alone.jsonl").write_bytes(
        b"\n".join(line for line in lines.read_bytes().splitlines() if name(0).encode() in line)
    )
    run(["ingest", str(tmp / "alone.jsonl"), "--store", alone])
    found["status alone"], _ = median_run(["status", name(0), "--json", "--store", alone])
    lines.unlink()

    server = EmbeddedNats(tmp / "nats")
    url = server.start()
    (process,) = start_instances(store, url, tmp, 1, [])
    try:
        found.update(asyncio.run(serve_figures(url, fresh_batch(streams, rng))))
        found["serve MB"] = resident_mb(process.pid)
    finally:
        process.terminate()
        process.wait(60)
        server.stop()
    return found


def report(sizes: list[int], results: dict[int, dict[str, float]]) -> None:
    """The growth table, and the ratios the targets are stated in."""
    print(
        "| networks | events | ingest | index | networks --json | status | status alone "
        "| first page (API) | all pages (API) | e2e fresh batch | raw JetStream | serve RSS |"
    )
    print("| --- " * 12 + "|")
    for size in sizes:
        r = results[size]
        print(
            f"| {size:,} | {size * PER_NETWORK:,} | {r['ingest']:,.0f}/s | {r['index MB']:.1f} MB "
            f"| {r['networks']:.2f} s, {r['networks MB']:.0f} MB | {r['status']:.3f} s "
            f"| {r['status alone']:.3f} s | {r['first page'] * 1e3:.1f} ms "
            f"| {r['all pages']:.2f} s | {r['e2e']:,.0f}/s | {r['raw']:,.0f}/s "
            f"| {r['serve MB']:.0f} MB |"
        )
    print()
    for size in sizes:
        r = results[size]
        print(
            f"{size:,} networks: networks --json / status {r['networks'] / r['status']:.2f}x, "
            f"status / alone {r['status'] / r['status alone']:.2f}x, "
            f"e2e / raw JetStream {r['e2e'] / r['raw']:.2f}x"
        )


def main() -> None:
    """Measure each size in a fresh store."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server; default SQLite")
    args = parser.parse_args()
    print(f"machine: {describe()}")
    print(f"store: {'PostgreSQL' if args.postgres else 'SQLite'}", flush=True)
    results = {}
    for size in args.sizes:
        with (
            tempfile.TemporaryDirectory() as folder,
            fresh_store(args.postgres, Path(folder)) as store,
            tempfile.TemporaryDirectory() as other,
            fresh_store(args.postgres, Path(other)) as alone,
        ):
            results[size] = measure(Path(folder), store, alone, size)
        print(f"{size:,} networks: {json.dumps(results[size])}", file=sys.stderr, flush=True)
    report(args.sizes, results)


if __name__ == "__main__":
    main()
