"""`ctilink.api.status` while `serve` ingests as fast as producers publish, next to idle.

One run: `ctilink serve` on a fresh store with its embedded nats-server; a raw
NATS request/reply echo for the yardstick; then status requests one after
another, first idle, then while a producer (a process of its own) publishes
events as fast as JetStream acknowledges them. Prints p50, p99 and max of each, in milliseconds.
"""

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

from bench.machine import describe
from bench.workload import interleaved_lines
from ctilink.adapters.nats.embedded import EmbeddedNats

ROOT = Path(__file__).resolve().parents[1]
WINDOW = 1000  # publishes in flight before waiting for their acks


def figures(samples: list[float]) -> str:
    """p50 / p99 / max in milliseconds."""
    ordered = sorted(samples)
    p50 = statistics.median(ordered) * 1e3
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3
    return f"p50 {p50:6.2f}  p99 {p99:7.2f}  max {ordered[-1] * 1e3:7.2f} ms"


async def timed(
    nc: nats.NATS, subject: str, body: bytes, until: asyncio.Event | None, count: int
) -> list[float]:
    """Request after request: `count` of them, or until `until` is set."""
    samples: list[float] = []
    while (until is None and len(samples) < count) or (until is not None and not until.is_set()):
        started = time.perf_counter()
        reply = await nc.request(subject, body, timeout=10)
        samples.append(time.perf_counter() - started)
        assert not (reply.headers or {}).get("Nats-Service-Error-Code"), reply.headers
    return samples


async def flood(url: str, lines: list[bytes]) -> None:
    """Publish every line as fast as JetStream acks them (the producer process's work)."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    for start in range(0, len(lines), WINDOW):
        window = lines[start : start + WINDOW]
        futures = [
            await js.publish_async(f"ctilink.in.{json.loads(line)['network']}", line)
            for line in window
        ]
        await asyncio.gather(*futures)
    await nc.close()


async def producing(url: str, events: int, networks: int) -> tuple[float, float]:
    """Run the producer as a process of its own, as producers are; wait until the service
    has decided everything (CTILINK_IN empty): the seconds publishing and deciding took."""
    # In the measuring process, a producer's bursts would hold up the measuring
    # requests on the same event loop, and the figures would be the bench's own.
    started = time.perf_counter()
    producer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.bench_query_load",
        "--produce",
        url,
        "--events",
        str(events),
        "--networks",
        str(networks),
        cwd=ROOT,
    )
    assert await producer.wait() == 0
    published = time.perf_counter() - started
    nc = await nats.connect(url)
    js = nc.jetstream()
    while (await js.stream_info("CTILINK_IN")).state.messages:
        await asyncio.sleep(0.1)
    await nc.close()
    return published, time.perf_counter() - started


async def measure(url: str, lines: list[bytes], queries: int, networks: int) -> None:
    """The yardstick, then idle and saturated status latencies."""
    nc = await nats.connect(url)

    async def echo(msg) -> None:  # type: ignore[no-untyped-def]
        await msg.respond(msg.data)

    await nc.subscribe("bench.echo", cb=echo)
    setup = [line for line in lines if b'"portal_installed"' in line or b'"system_added"' in line]
    for line in setup:
        await nc.request("ctilink.api.ingest", line, timeout=10)
    network = json.loads(setup[0])["network"]
    query = json.dumps({"network": network}).encode()
    raw = await timed(nc, "bench.echo", query, None, queries)
    idle = await timed(nc, "ctilink.api.status", query, None, queries)
    done = asyncio.Event()
    flooding = asyncio.ensure_future(producing(url, len(lines), networks))
    flooding.add_done_callback(lambda _: done.set())
    js = nc.jetstream()
    while not done.is_set() and not (await js.stream_info("CTILINK_IN")).state.messages:
        await asyncio.sleep(0.01)  # until the producer has started: the service is busy now
    busy = await timed(nc, "ctilink.api.status", query, done, 0)
    published, decided = await flooding
    print(f"raw NATS request (echo)        : {figures(raw)}")
    print(f"ctilink.api.status, idle       : {figures(idle)}")
    print(f"ctilink.api.status, saturated  : {figures(busy)}   ({len(busy)} requests)")
    print(
        f"{len(lines):,} events: published in {published:.1f} s, all decided in {decided:.1f} s "
        f"({len(lines) / decided:,.0f}/s)"
    )
    p99 = lambda s: sorted(s)[min(len(s) - 1, int(len(s) * 0.99))]  # noqa: E731
    print(f"saturated p99 / idle p99       : {p99(busy) / p99(idle):.1f}x")
    await nc.close()


def main() -> None:
    """Start serve on a fresh store, measure, stop it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--networks", type=int, default=200)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--port", type=int, default=14_555)
    parser.add_argument("--produce", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    lines = interleaved_lines(args.events, args.networks, 10)
    if args.produce:  # the producer process
        asyncio.run(flood(args.produce, lines))
        return
    print(f"machine: {describe()}")
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedNats(Path(tmp) / "nats", port=args.port)
        server.start()
        url = server.url
        log = Path(tmp) / "serve.log"
        with log.open("wb") as out:
            serve = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ctilink.adapters.cli",
                    "serve",
                    "--store",
                    str(Path(tmp) / "bench.db"),
                    "--nats",
                    url,
                ],
                stdout=out,
                stderr=out,
                cwd=ROOT,
            )
        try:
            while "ready:" not in log.read_text():
                assert serve.poll() is None, log.read_text()
                time.sleep(0.1)
            asyncio.run(measure(url, lines, args.queries, args.networks))
        finally:
            serve.terminate()
            serve.wait(60)
            server.stop()


if __name__ == "__main__":
    main()
