"""The console's speed: a 30-system network of 20,000 events, an overview of 10,000 networks,
5,000 rejections.

`ctilink web` runs as a process on a store holding both; requests come over
loopback HTTP, one at a time, and are timed from sending to the last byte (the
server's time plus loopback). Then: how long a commit by another writer takes
to reach an open live stream, and the console's resident memory with 1,000
live pages open, next to the same console idle.

    python -m bench.bench_web
"""

from __future__ import annotations

import asyncio
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import msgspec

from bench.bench_history import _high_water
from bench.bench_scale import resident_mb
from bench.machine import describe
from bench.workload import network_events
from ctilink.adapters.store.selection import open_service
from ctilink.domain import messages as m

ROOT = Path(__file__).resolve().parents[1]
REQUESTS = 50
LIVE_PAGES = 1_000
REJECTIONS = 5_000
encode = msgspec.json.Encoder().encode


def build(store: Path, events: int, networks: int) -> None:
    """One 30-system network of `events` events, and `networks` small ones."""
    rng = random.Random(3)
    big = network_events("big", 30, rng)
    lines = [encode(next(big)) for _ in range(events)]
    lines += [
        encode(
            {"type": "portal_installed", "id": "i", "network": f"n{n:05d}", "platform": "windows"}
        )
        for n in range(networks)
    ]
    # Rejections for the rejections page: a failover of a system no network has (I6).
    lines += [
        encode({"type": "failover", "id": f"r{n}", "network": "big", "system": "nowhere"})
        for n in range(REJECTIONS)
    ]
    path = store.with_suffix(".jsonl")
    path.write_bytes(b"\n".join(lines) + b"\n")
    command = [
        sys.executable,
        "-m",
        "ctilink.adapters.cli",
        "ingest",
        str(path),
        "--store",
        str(store),
    ]
    done = subprocess.run(command, capture_output=True, cwd=ROOT, check=False)
    assert done.returncode == 1, done.stderr  # 1: the rejections, as meant


def timed(url: str) -> float:
    """Seconds for one GET, to its last byte."""
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as answer:
        answer.read()
    return time.perf_counter() - started


def percentiles(samples: list[float]) -> str:
    """p50 and p99 in ms."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms"


async def live_latency(base: str, store: Path, rounds: int = 10) -> list[float]:
    """Seconds from a commit by another writer to the `change` event on an open stream."""
    host, port = base.removeprefix("http://").rstrip("/").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET /live?network=big HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    await writer.drain()
    service = open_service(str(store))
    samples = []
    try:
        for n in range(rounds):
            event = {"type": "portal_restarted", "id": f"live-{n}", "network": "big"}
            started = time.perf_counter()
            await asyncio.to_thread(service.ingest, [m.decode(encode(event))])
            while b"event: change" not in await reader.readline():
                pass
            samples.append(time.perf_counter() - started)
    finally:
        service.close()
        writer.close()
    return samples


async def open_streams(base: str, count: int) -> list[asyncio.StreamWriter]:
    """Hold `count` live streams open, as that many pages would."""
    host, port = base.removeprefix("http://").rstrip("/").split(":")
    writers = []
    for n in range(count):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"GET /live?network=n{n:05d} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        await writer.drain()
        await reader.readline()  # the status line: the stream is open
        writers.append(writer)
    return writers


async def memory_with_pages(base: str, pid: int) -> tuple[float, float]:
    """Resident MB of the console idle, then with LIVE_PAGES live streams open."""
    idle = resident_mb(pid)
    writers = await open_streams(base, LIVE_PAGES)
    await asyncio.sleep(2)
    loaded = resident_mb(pid)
    for writer in writers:
        writer.close()
    return idle, loaded


def main() -> None:
    """Build the store, start the console, measure."""
    print(f"machine: {describe()}")
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "ctilink.db"
        build(store, 20_000, 10_000)
        console = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ctilink.adapters.cli",
                "web",
                "--store",
                str(store),
                "--listen",
                "127.0.0.1:0",
            ],
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        assert console.stdout is not None
        base = console.stdout.readline().decode().split("listening on ", 1)[1].strip()
        try:
            timed(base)  # warm
            rng = random.Random(1)
            now = [timed(base + "networks/big") for _ in range(REQUESTS)]
            past = [
                timed(f"{base}networks/big?at={rng.randrange(1, 20_000)}") for _ in range(REQUESTS)
            ]
            overview = [timed(base) for _ in range(REQUESTS)]
            filtered = [timed(base + "?name=n099") for _ in range(REQUESTS)]
            log = [timed(base + "networks/big/log?after=15000") for _ in range(REQUESTS)]
            timeline = [timed(base + "networks/big/timeline") for _ in range(REQUESTS)]
            around = [
                timed(f"{base}networks/big/timeline?at={rng.randrange(1, 20_000)}")
                for _ in range(REQUESTS)
            ]
            searched = [timed(base + "?q=099") for _ in range(REQUESTS)]
            previewed = [
                timed(
                    base + "networks/big/preview?event=central_cti_link_set&enabled=false"
                    "&then_restart=1"
                )
                for _ in range(REQUESTS)
            ]
            rejections = [timed(base + "rejections") for _ in range(REQUESTS)]
            print(f"network page, 30 systems, 20,000 events, now: {percentiles(now)}")
            print(f"the same at a random past position: {percentiles(past)}")
            print(f"overview of 10,001 networks, first page: {percentiles(overview)}")
            print(f"overview filtered by name: {percentiles(filtered)}")
            print(f"log page from position 15,000: {percentiles(log)}")
            print(f"timeline, the last 500 positions: {percentiles(timeline)}")
            print(f"timeline around a random position: {percentiles(around)}")
            print(f"overview searched for names holding '099': {percentiles(searched)}")
            print(f"preview of Central CTI Link off, then a restart: {percentiles(previewed)}")
            print(f"rejections page, the newest 100: {percentiles(rejections)}")
            latency = asyncio.run(live_latency(base, store))
            print(f"commit by another writer -> change on a live stream: {percentiles(latency)}")
            idle, loaded = asyncio.run(memory_with_pages(base, console.pid))
            print(
                f"console memory: {idle:.0f} MB idle, {loaded:.0f} MB with {LIVE_PAGES:,} live "
                f"pages open (peak {_high_water(console.pid):.0f} MB)"
            )
        finally:
            console.terminate()
            console.wait(30)


if __name__ == "__main__":
    main()
