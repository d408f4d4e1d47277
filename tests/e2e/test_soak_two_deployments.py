"""Two deployments on one PostgreSQL server: kills, restarts and cut connections change nothing.

Deployment A (3 instances) and B (1 instance) use two databases of one server,
with the same schema name, each with its own nats-server. Events stream into
both while A's instances are SIGKILLed and restarted and A's PostgreSQL
connections are cut. Every event of both is decided as one uninterrupted
`ctilink ingest` decides it; no partition of either is without a puller for
more than 10 s; B never notices A; every instance is ready at the end.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import nats
import psycopg
import pytest

from ctilink.adapters.nats.embedded import EmbeddedNats
from ctilink.adapters.nats.partitions import survey
from tests.e2e.conftest import Service, wait_for
from tests.e2e.traffic import logs_and_heads, publish_all, publisher_caught_up, uninterrupted
from tests.scenarios import order_dependent_events
from tests.stores import SERVER, Postgres

SCHEMA = "ctilink"  # the same in both databases
HELD_AGAIN_SECONDS = 10.0


class Deployment:
    """One deployment: its database, its nats-server, its instances (each with --http)."""

    def __init__(self, name: str, folder: Path, instances: int) -> None:
        self.database = f"ctilink_soak_{name}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{self.database}"')
        self.store = f"{SERVER}/{self.database}?schema={SCHEMA}"
        self.nats = EmbeddedNats(folder / f"nats-{name}")
        self.nats.start()
        self.ports = [_free_port() for _ in range(instances)]
        self.instances = [
            Service(
                self.store,
                self.nats.url,
                folder / f"serve-{name}-{n}.log",
                ["--http", f"127.0.0.1:{port}"],
            )
            for n, port in enumerate(self.ports)
        ]
        self.unconsumed_since: dict[int, float] = {}
        self.longest_unconsumed = 0.0
        self.not_ready: list[tuple[int, str]] = []

    async def watch(self, nc: nats.NATS, stop: asyncio.Event) -> None:
        """Note how long any partition goes without a puller, and any instance not ready."""
        while not stop.is_set():
            now = time.monotonic()
            for state in await survey(nc, 12):
                if state.consumed:
                    since = self.unconsumed_since.pop(state.partition, None)
                    if since is not None:
                        self.longest_unconsumed = max(self.longest_unconsumed, now - since)
                else:
                    self.unconsumed_since.setdefault(state.partition, now)
            for n, port in enumerate(self.ports):
                running = self.instances[n].process
                if running is None or running.poll() is not None:
                    continue
                ready, said = await asyncio.to_thread(_readiness, port)
                if ready is False:
                    self.not_ready.append((n, said))
            await asyncio.sleep(0.25)
        now = time.monotonic()
        for since in self.unconsumed_since.values():
            self.longest_unconsumed = max(self.longest_unconsumed, now - since)

    def close(self) -> None:
        """Kill what still runs, stop the server, drop the database."""
        for instance in self.instances:
            if instance.process is not None and instance.process.poll() is None:
                instance.kill()
        self.nats.stop()
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')


@pytest.fixture
def deployments(postgres: Postgres, tmp_path: Path) -> Iterator[tuple[Deployment, Deployment]]:
    """A (3 instances) and B (1 instance), not started."""
    postgres.new_store()  # skips (or fails under CI) without PostgreSQL
    a, b = Deployment("a", tmp_path, 3), Deployment("b", tmp_path, 1)
    yield a, b
    a.close()
    b.close()


async def test_two_deployments_on_one_server_decide_as_one_uninterrupted_run_each(
    deployments: tuple[Deployment, Deployment], tmp_path: Path
):
    a, b = deployments
    lines_a = [json.dumps(e).encode() for e in order_dependent_events(11, 3_000, networks=90)]
    lines_b = [json.dumps(e).encode() for e in order_dependent_events(12, 1_500, networks=40)]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _, expected_a = uninterrupted(lines_a, tmp_path / "a")
    _, expected_b = uninterrupted(lines_b, tmp_path / "b")
    for instance in [*a.instances, *b.instances]:
        instance.start()
    nc_a, nc_b = await nats.connect(a.nats.url), await nats.connect(b.nats.url)
    stop = asyncio.Event()
    watching = [asyncio.ensure_future(d.watch(nc, stop)) for d, nc in ((a, nc_a), (b, nc_b))]
    rng = random.Random(5)
    waves = 8

    def wave_of(lines: list[bytes], wave: int) -> list[bytes]:
        return lines[wave * len(lines) // waves : (wave + 1) * len(lines) // waves]

    async def feed_b() -> None:
        for wave in range(waves):
            await publish_all(nc_b, wave_of(lines_b, wave))
            await asyncio.sleep(0.5)

    feeding_b = asyncio.ensure_future(feed_b())
    for wave in range(waves):
        await publish_all(nc_a, wave_of(lines_a, wave))
        if wave % 2:
            await asyncio.to_thread(_cut_connections, a.database)  # every session of A's
        victim = rng.choice(a.instances)
        victim.kill()
        await asyncio.sleep(rng.uniform(0.2, 1.0))
        victim.start()
    await feeding_b

    async def settled(deployment: Deployment, nc: nats.NATS) -> bool:
        info = await nc.jetstream().stream_info("CTILINK_IN")
        caught_up = await asyncio.to_thread(publisher_caught_up, deployment.store)
        return info.state.messages == 0 and caught_up

    await wait_for(lambda: settled(a, nc_a), timeout=180, every=0.5)
    await wait_for(lambda: settled(b, nc_b), timeout=60, every=0.5)
    await asyncio.sleep(HELD_AGAIN_SECONDS + 1)  # readiness settles after the last change
    stop.set()
    await asyncio.gather(*watching)
    ready_now = [await asyncio.to_thread(_ready, port) for port in [*a.ports, *b.ports]]
    await nc_a.close()
    await nc_b.close()

    found_a = logs_and_heads(a.store)
    assert found_a == expected_a
    assert logs_and_heads(b.store) == expected_b
    assert a.longest_unconsumed <= HELD_AGAIN_SECONDS, a.longest_unconsumed
    # B's one instance pulls each partition again as soon as a pull request expires: never
    # anything near the grace period, whatever A goes through.
    assert b.longest_unconsumed < 2.0, b.longest_unconsumed
    assert b.not_ready == [], b.not_ready  # nothing A went through reached B
    assert ready_now == [True] * 4
    for instance in [*a.instances, *b.instances]:
        assert instance.stop() == 0, instance.log.read_text()
        assert "Traceback" not in instance.log.read_text()


def _cut_connections(database: str) -> None:
    """Terminate every session of a database (as a network cut or a failover does)."""
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )


def _readiness(port: int) -> tuple[bool | None, str]:
    """Whether /readyz says ready (None: no answer, e.g. still starting), and what it said."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=3) as answer:
            body = answer.read()
    except urllib.error.HTTPError as error:
        body = error.read() or b"{}"
    except OSError as error:
        return None, str(error)
    return bool(json.loads(body).get("ready", False)), body.decode()


def _ready(port: int) -> bool | None:
    """Whether /readyz says ready (None: no answer, e.g. still starting)."""
    return _readiness(port)[0]


def _free_port() -> int:
    """A port nobody listens on now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
