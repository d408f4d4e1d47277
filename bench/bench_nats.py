"""End to end through NATS: ingest rate, publish lag, query latency next to a plain echo."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import nats

from bench.cpu import children, snapshot, spent
from bench.machine import describe
from bench.workload import interleaved_lines
from ctilink.adapters.nats.batch import BatchPublisher, publish_many
from ctilink.adapters.nats.embedded import EmbeddedNats

ROOT = Path(__file__).resolve().parents[1]
WINDOW = 1000  # messages published before waiting for their acks


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99, in milliseconds."""
    ordered = sorted(samples)
    return statistics.median(ordered) * 1e3, ordered[int(len(ordered) * 0.99)] * 1e3


async def run(
    url: str,
    lines: list[bytes],
    queries: int,
    client: str = "batch",
    cpu: Callable[[], dict[str, float]] = dict,
) -> None:
    """Publish every line, wait for every event to come out, then time queries."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    received: dict[str, float] = {}
    done = asyncio.Event()

    async def on_event(msg) -> None:
        received[msg.headers["Nats-Msg-Id"]] = time.perf_counter()
        if len(received) == len(lines):
            done.set()

    # Core subscription: sees each event as JetStream stores it.
    await nc.subscribe("ctilink.events.>", cb=on_event)
    # The subjects and keys are worked out before the clock starts: the load
    # generator shares the two cores with what it measures.
    counters: dict[str, int] = {}
    outgoing: list[tuple[str, bytes, None]] = []
    keys: list[str] = []
    for line in lines:
        network = json.loads(line)["network"]
        counters[network] = counters.get(network, 0) + 1
        outgoing.append((f"ctilink.in.{network}", line, None))
        keys.append(f"{network}:{counters[network]}")
    sent: dict[str, float] = {}
    batch = BatchPublisher(nc)
    await batch.start()
    cpu_before = cpu()
    start = time.perf_counter()
    for first in range(0, len(lines), WINDOW):
        # At most WINDOW messages await JetStream's ack: as fast as it takes them.
        now = time.perf_counter()
        for key in keys[first : first + WINDOW]:
            sent[key] = now
        if client == "batch":
            await batch.publish(outgoing[first : first + WINDOW], timeout=60)
        elif client == "window":
            window = outgoing[first : first + WINDOW]
            await publish_many(nc, ((s, p, "", None) for s, p, _ in window[:-1]))
            subject, payload, _ = window[-1]
            ack = await nc.request(subject, payload, timeout=60)
            assert b'"error"' not in ack.data, ack.data
        else:  # one js.publish_async per message, as the figures before 2026-11-26
            pending = []
            for subject, line, _ in outgoing[first : first + WINDOW]:
                sent[keys[first + len(pending)]] = time.perf_counter()
                pending.append(await js.publish_async(subject, line))
            await asyncio.gather(*pending)
    await asyncio.wait_for(done.wait(), timeout=600)
    elapsed = time.perf_counter() - start
    used = spent(cpu_before, cpu())
    lags = [received[key] - sent[key] for key in sent]
    lag50, lag99 = percentiles(lags)
    print(f"events: {len(lines)} over {len(counters)} networks")
    print(
        f"end to end (publish to ctilink.in.* -> seen on ctilink.events.*): "
        f"{len(lines) / elapsed:,.0f} events/s"
    )
    print(f"publish lag: p50 {lag50:,.1f} ms, p99 {lag99:,.1f} ms (includes queueing at full load)")
    if used:
        shares = ", ".join(f"{group} {seconds / elapsed:.2f}" for group, seconds in used.items())
        print(f"cores busy during it ({elapsed:.1f} s): {shares}")

    responder = await nats.connect(url)

    async def echo(msg) -> None:
        await msg.respond(msg.data)

    await responder.subscribe("bench.echo", cb=echo)
    network = next(iter(counters))
    request = json.dumps({"network": network}).encode()
    timings: dict[str, list[float]] = {"status": [], "echo": []}
    for _ in range(queries):
        for name, subject in (("status", "ctilink.api.status"), ("echo", "bench.echo")):
            t = time.perf_counter()
            await nc.request(subject, request, timeout=5)
            timings[name].append(time.perf_counter() - t)
    s50, s99 = percentiles(timings["status"])
    e50, e99 = percentiles(timings["echo"])
    print(
        f"ctilink.api.status: p50 {s50:.2f} ms, p99 {s99:.2f} ms "
        f"({queries} requests, network of {counters[network]} events)"
    )
    print(f"plain echo request/reply: p50 {e50:.2f} ms, p99 {e99:.2f} ms")
    print(f"ratio status/echo: p50 {s50 / e50:.1f}x, p99 {s99 / e99:.1f}x")
    await responder.close()
    await nc.close()


def start_instances(store: str, url: str, folder: Path, count: int, extra: list[str]) -> list:
    """Start `count` serve processes on one store, each ready (pulling every partition).

    Which instance consumes a partition is decided by the NATS server when
    messages come (pinned consumers), so there is no share to wait for here.
    """
    processes, logs = [], []
    for n in range(count):
        log = folder / f"serve-{n}.log"
        logs.append(log)
        command = [
            sys.executable,
            "-m",
            "ctilink.adapters.cli",
            "serve",
            "--nats",
            url,
            "--store",
            store,
        ]
        with log.open("wb") as out:
            processes.append(subprocess.Popen([*command, *extra], stdout=out, stderr=out, cwd=ROOT))
        while "ready:" not in log.read_text():
            assert processes[-1].poll() is None, log.read_text()
            time.sleep(0.05)
    return processes


@contextlib.contextmanager
def fresh_store(postgres: str | None, folder: Path) -> Iterator[str]:
    """A SQLite file in the folder, or a new database on the PostgreSQL server (dropped after)."""
    if postgres is None:
        yield str(folder / "ctilink.db")
        return
    import psycopg

    database = f"ctilink_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{postgres}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    try:
        yield f"{postgres}/{database}"
    finally:
        with psycopg.connect(f"{postgres}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')


def main() -> None:
    """Start a nats-server and `ctilink serve` instances, then measure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--networks", type=int, default=100)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument(
        "--publisher-in-process",
        action="store_true",
        help="run the service with its publisher in its own process",
    )
    parser.add_argument(
        "--client",
        choices=["batch", "window", "publish_async"],
        default="batch",
        help="how the load generator publishes: windows of plain publishes awaiting "
        "their acks (default, lighter on the shared cores) or js.publish_async per message",
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="a PostgreSQL server (e.g. postgresql://postgres@127.0.0.1:5432): each run "
        "gets a database of its own there, dropped after; default: a SQLite file",
    )
    parser.add_argument(
        "--sync-always",
        action="store_true",
        help="the nats-server syncs every JetStream write before acking it (serve --sync always)",
    )
    parser.add_argument(
        "--metrics",
        action="store_true",
        help="serve --http as well: the console, probes and /metrics (their overhead)",
    )
    parser.add_argument(
        "--instances",
        default="1",
        help="comma-separated instance counts, one run each (e.g. 1,2,3; several need --postgres)",
    )
    args = parser.parse_args()
    counts = [int(n) for n in args.instances.split(",")]
    lines = interleaved_lines(args.events, args.networks, systems=10)
    extra = ["--publisher-in-process"] if args.publisher_in_process else []
    if args.metrics:
        extra += ["--http", "127.0.0.1:0"]
    print(f"machine: {describe()}")
    for count in counts:
        print(f"--- {count} instance(s) on {'PostgreSQL' if args.postgres else 'SQLite'}")
        with tempfile.TemporaryDirectory() as tmp, fresh_store(args.postgres, Path(tmp)) as store:
            server = EmbeddedNats(Path(tmp) / "nats", sync_always=args.sync_always)
            url = server.start()
            processes = start_instances(store, url, Path(tmp), count, extra)
            assert server.process is not None
            groups = {
                "load generator": [os.getpid()],
                "ctilink serve": [p.pid for p in processes],
                "publisher": children([p.pid for p in processes]),  # one of them publishes
                "nats-server": [server.process.pid],
            }
            try:
                asyncio.run(
                    run(url, lines, args.queries, args.client, functools.partial(snapshot, groups))
                )
            finally:
                for process in processes:
                    process.terminate()
                for process in processes:
                    process.wait(30)
                server.stop()


if __name__ == "__main__":
    main()
