"""Failover: how long a partition waits after the instance consuming it is SIGKILLed.

Two `ctilink serve` instances share one store (PostgreSQL, or a SQLite file on
this machine) and a nats-server. A producer sends one event to each of 24
networks every 50 ms (they spread over the 12 partitions); each round, the
instance that decided the last event is killed, and the bench waits until
every network has an event decided after the kill. The figure of a round is the
longest any network waited; then the victim is started again. `--python` runs
another checkout's interpreter (the commit before, say) with the same workload.
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
from ctilink.adapters.nats.embedded import EmbeddedNats

NETWORKS = 24
EVERY = 0.05  # seconds between rounds of the producer


class Instance:
    """One `serve` process."""

    def __init__(self, python: str, store: str, url: str, log: Path) -> None:
        serve = ["serve", "--store", store, "--nats", url]
        self.command = [python, "-m", "ctilink.adapters.cli", *serve]
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        ready = self.log.read_text().count("ready:") if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=out)
        while self.log.read_text().count("ready:") == ready:
            assert self.process.poll() is None, self.log.read_text()
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()


async def run(python: str, store: str, url: str, folder: Path, rounds: int) -> list[float]:
    """The longest wait of any network after each kill, in seconds."""
    instances = [Instance(python, store, url, folder / f"serve-{n}.log") for n in range(2)]
    for instance in instances:
        instance.start()
    nc = await nats.connect(url)
    js = nc.jetstream()
    decided: dict[str, float] = {}

    async def seen(msg) -> None:  # type: ignore[no-untyped-def]
        decided[msg.subject.split(".")[2]] = time.monotonic()

    await nc.subscribe("ctilink.events.>", cb=seen)
    for n in range(NETWORKS):
        body = {"type": "portal_installed", "id": "i", "network": f"f{n}", "platform": "windows"}
        await js.publish(f"ctilink.in.f{n}", json.dumps(body).encode())
    counter = 0
    stop = asyncio.Event()

    async def produce() -> None:
        nonlocal counter
        while not stop.is_set():
            counter += 1
            for n in range(NETWORKS):
                body = {"type": "portal_restarted", "id": f"r{counter}", "network": f"f{n}"}
                await js.publish(f"ctilink.in.f{n}", json.dumps(body).encode())
            await asyncio.sleep(EVERY)

    producing = asyncio.ensure_future(produce())
    waits = []
    try:
        await asyncio.sleep(3)
        for _ in range(rounds):
            victim = instances[_ % 2]
            killed = time.monotonic()
            victim.kill()
            while len(decided) < NETWORKS or min(decided.values()) <= killed:
                await asyncio.sleep(0.05)
                assert time.monotonic() - killed < 120, "a partition was never consumed again"
            # Each network's first decision after the kill, less the kill.
            waits.append(max(decided.values()) - killed - EVERY)
            await asyncio.to_thread(victim.start)
            await asyncio.sleep(3)
    finally:
        stop.set()
        await producing
        await nc.close()
        for instance in instances:
            if instance.process is not None and instance.process.poll() is None:
                instance.process.terminate()
                instance.process.wait(30)
    return waits


def main() -> None:
    """Measure `rounds` kills with the given interpreter (this checkout's by default)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--python", default=sys.executable, help="a checkout's interpreter")
    parser.add_argument("--store", help="a PostgreSQL URL (default: a SQLite file)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {describe()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server = EmbeddedNats(folder / "nats")
        server.start()
        try:
            store = args.store or str(folder / "failover.db")
            waits = asyncio.run(run(args.python, store, server.url, folder, args.rounds))
        finally:
            server.stop()
    print(f"interpreter: {args.python}")
    print(
        f"longest wait of any network after a SIGKILL, {len(waits)} rounds: "
        f"median {statistics.median(waits):.2f} s, max {max(waits):.2f} s"
    )


if __name__ == "__main__":
    main()
