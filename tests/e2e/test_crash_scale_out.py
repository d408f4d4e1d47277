"""A crash never changes a decision with three instances on PostgreSQL, killed again and again.

Partitions move between instances as they die and come back; each new holder
continues from the partition's position recorded in the shared store, so a
message decided by an instance that died before acking it is not decided again.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Service, stream_messages, wait_for
from tests.e2e.traffic import (
    event_ids,
    logs_and_heads,
    publish_all,
    publisher_caught_up,
    right_after_a_commit,
    uninterrupted,
)
from tests.scenarios import order_dependent_events

INSTANCES = 3
KILLS = 20


@pytest.fixture
def instances(postgres, nats_server, tmp_path) -> Iterator[list[Service]]:  # type: ignore[no-untyped-def]
    """Three instances on one fresh PostgreSQL store; any left running are killed."""
    store = postgres.new_store()
    made = [Service(store, nats_server.url, tmp_path / f"serve-{n}.log") for n in range(INSTANCES)]  # type: ignore[arg-type]
    yield made
    for instance in made:
        if instance.process is not None and instance.process.poll() is None:
            instance.kill()


async def test_three_instances_killed_twenty_times_end_as_one_uninterrupted_run_i3_i4(
    nc, instances, tmp_path
):
    events = order_dependent_events(seed=6, count=4_000, networks=150)
    lines = [json.dumps(e).encode() for e in events]
    reports, expected = uninterrupted(lines, tmp_path)
    rejected = Counter(
        (json.loads(line)["network"], r["id"], r["code"])
        for line, r in zip(lines, reports, strict=True)
        if r["outcome"] == "rejected"
    )
    instances[0].start()  # creates the streams
    instances[0].kill()
    for instance in instances:
        instance.start()
    rng = random.Random(7)

    for kill in range(KILLS):
        wave = lines[kill * len(lines) // KILLS : (kill + 1) * len(lines) // KILLS]
        await publish_all(nc, wave)  # taken in batches, often with events they depend on
        if kill % 2:
            await asyncio.sleep(rng.uniform(0.05, 0.4))
        else:  # one of them just committed a batch: with luck, this one, before its ack
            await asyncio.to_thread(right_after_a_commit, instances[0].store)
        victim = rng.choice(instances)
        victim.kill()  # SIGKILL: its partitions pass to the others, unacked work with them
        victim.start()

    store = instances[0].store

    async def settled() -> bool:
        info = await nc.jetstream().stream_info("CTILINK_IN")
        return info.state.messages == 0 and await asyncio.to_thread(publisher_caught_up, store)

    await wait_for(settled, timeout=180, every=0.3)
    assert logs_and_heads(store) == expected
    assert set((await event_ids(nc)).values()) == {1}
    out = await stream_messages(nc, "CTILINK_OUT", "ctilink.rejected.>")
    assert set(Counter(m.headers["Nats-Msg-Id"] for m in out).values()) == {1}
    published = Counter(
        (
            m.subject.rsplit(".", 1)[1],
            json.loads(json.loads(m.data)["payload"])["id"],
            json.loads(m.data)["code"],
        )
        for m in out
    )
    assert published == rejected
    for instance in instances:
        assert instance.stop() == 0, instance.log.read_text()
