"""End to end through NATS: ingest rate, publish lag, query latency next to a plain echo."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nats

from adapters.nats_server import EmbeddedNats
from bench.machine import describe
from bench.workload import interleaved_lines

ROOT = Path(__file__).resolve().parents[1]


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99, in milliseconds."""
    ordered = sorted(samples)
    return statistics.median(ordered) * 1e3, ordered[int(len(ordered) * 0.99)] * 1e3


async def run(url: str, lines: list[bytes], queries: int) -> None:
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
    sent: dict[str, float] = {}
    counters: dict[str, int] = {}
    start = time.perf_counter()
    pending = []
    for line in lines:
        network = json.loads(line)["network"]
        counters[network] = counters.get(network, 0) + 1
        sent[f"{network}:{counters[network]}"] = time.perf_counter()
        pending.append(await js.publish_async(f"ctilink.in.{network}", line))
        if len(pending) >= 1000:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    await asyncio.wait_for(done.wait(), timeout=600)
    elapsed = time.perf_counter() - start
    lags = [received[key] - sent[key] for key in sent]
    lag50, lag99 = percentiles(lags)
    print(f"events: {len(lines)} over {len(counters)} networks")
    print(
        f"end to end (publish to ctilink.in.* -> seen on ctilink.events.*): "
        f"{len(lines) / elapsed:,.0f} events/s"
    )
    print(f"publish lag: p50 {lag50:,.1f} ms, p99 {lag99:,.1f} ms (includes queueing at full load)")

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


def main() -> None:
    """Start a nats-server and `ctilink serve`, then measure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--networks", type=int, default=100)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument(
        "--publisher-in-process",
        action="store_true",
        help="run the service with its publisher in its own process",
    )
    args = parser.parse_args()
    lines = interleaved_lines(args.events, args.networks, systems=10)
    print(f"machine: {describe()}")
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedNats(Path(tmp) / "nats")
        url = server.start()
        log = (Path(tmp) / "serve.log").open("wb")
        service = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "adapters.cli",
                "serve",
                "--nats",
                url,
                "--store",
                str(Path(tmp) / "ctilink.db"),
                *(["--publisher-in-process"] if args.publisher_in_process else []),
            ],
            stdout=log,
            stderr=log,
            cwd=ROOT,
        )
        try:
            while "ready:" not in (Path(tmp) / "serve.log").read_text():
                time.sleep(0.05)
            asyncio.run(run(url, lines, args.queries))
        finally:
            service.terminate()
            service.wait(30)
            server.stop()


if __name__ == "__main__":
    main()
