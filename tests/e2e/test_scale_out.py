"""Three `ctilink serve` instances on one PostgreSQL and one NATS, with faults.

Producers each send their own networks' events in order; mid-stream one instance
is killed with SIGKILL and restarted, and PostgreSQL itself is restarted. In the
end every acked inbound event is in the log exactly once, in the order its
producer sent it, and every logged position is in CTILINK_OUT exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import psycopg
import pytest

from tests.e2e.conftest import Service, network_of, wait_for
from tests.e2e.private_postgres import PrivatePostgres
from tests.e2e.traffic import check_exactly_once, many_events, settled_event_ids

INSTANCES = 3
PRODUCERS = 3
OUTAGE_SECONDS = 4


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of this test's own, with an empty `ctilink` database."""
    server = PrivatePostgres()
    try:
        server.create()
        with psycopg.connect(server.url(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE ctilink")
        yield server
    finally:
        server.remove()


def logged(store: str) -> int:
    """How many events the store holds (0 while it is unreachable)."""
    try:
        with psycopg.connect(store, connect_timeout=2) as db:
            row = db.execute("SELECT count(*) FROM ctilink_events").fetchone()
    except psycopg.Error:
        return 0
    return int(row[0]) if row else 0


async def produce(nc, lines: list[bytes], sent: list[int]) -> None:  # type: ignore[no-untyped-def]
    """One producer: its lines in order, each acked by JetStream before the next."""
    js = nc.jetstream()
    for line in lines:
        await js.publish(f"ctilink.in.{network_of(line)}", line)
        sent[0] += 1


@pytest.fixture
def instances(postgres, nats_server, tmp_path) -> Iterator[list[Service]]:  # type: ignore[no-untyped-def]
    """The instances on the test's store and nats-server; any left running are killed."""
    store = postgres.url("ctilink")
    made = [Service(store, nats_server.url, tmp_path / f"serve-{n}.log") for n in range(INSTANCES)]
    yield made
    for instance in made:  # a failed test must not leave them behind (nor their publishers)
        if instance.process is not None and instance.process.poll() is None:
            instance.kill()


async def test_three_instances_with_a_kill_and_a_database_restart_lose_and_double_nothing(
    nc, postgres, instances
):
    store = postgres.url("ctilink")
    for instance in instances:
        instance.start()
    # Each producer owns some networks and sends their events in order.
    lines = many_events(6_000, networks=12, seed=5)
    shares = [
        [line for line in lines if int(network_of(line).split("-")[1]) % PRODUCERS == p]
        for p in range(PRODUCERS)
    ]
    sent = [0]
    producing = asyncio.gather(*(produce(nc, share, sent) for share in shares))

    async def sent_at_least(count: int) -> bool:
        return sent[0] >= count and await asyncio.to_thread(logged, store) > 0

    await wait_for(lambda: sent_at_least(len(lines) // 3), timeout=120, every=0.05)
    instances[1].kill()  # mid-stream, with a batch in hand most likely
    instances[1].start()
    await wait_for(lambda: sent_at_least(2 * len(lines) // 3), timeout=120, every=0.05)
    await asyncio.to_thread(postgres.stop, "fast")
    # Longer than the store's own retries (2 s): nothing rides it out unnoticed.
    await asyncio.sleep(OUTAGE_SECONDS)
    await asyncio.to_thread(postgres.start)
    await producing

    ids = await settled_event_ids(nc, store, len(lines), timeout=180)
    check_exactly_once(store, lines, ids)
    inbound = await nc.jetstream().stream_info("CTILINK_IN")
    assert inbound.state.messages == 0  # every inbound message acked (work queue)

    logs = [instance.log.read_text() for instance in instances]
    # The inbound work was shared out: more than one instance consumed partitions, or
    # one that held more than its share stepped back so that the others could (which
    # of the two a run shows depends on when the server pinned whom, and on the kill).
    consuming = [log for log in logs if "pinned on partitions [" in log]
    balanced = any("stepping back from partitions" in log for log in logs)
    assert consuming and (len(consuming) >= 2 or balanced), logs
    # The restart was felt: it ended the sessions that held the roles, and the
    # instances shared the partitions out again once PostgreSQL was back.
    assert any("role lost" in log for log in logs), logs
    for instance in instances:
        assert instance.stop() == 0, instance.log.read_text()
    assert all("Traceback" not in log for log in logs), logs
