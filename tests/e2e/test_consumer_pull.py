"""The consumer's own pull requests and the raw publishes it and the publisher use."""

from __future__ import annotations

import asyncio
import json
import random

import nats
import pytest
from nats.errors import BadSubjectError

from ctilink.adapters.nats.batch import publish_many
from ctilink.adapters.nats.consumer import EXPIRES, PartitionConsumer
from ctilink.adapters.nats.streams import ensure_streams
from ctilink.domain.decision import Outcome
from tests.e2e.conftest import network_of, stream_messages, wait_for
from tests.e2e.traffic import check_exactly_once, event_ids, many_events


async def test_publish_many_sends_what_nc_publish_would(nc):
    js = nc.jetstream()
    await ensure_streams(js)
    inbox = nc.new_inbox()
    acks = await nc.subscribe(f"{inbox}.*")
    await publish_many(
        nc,
        [
            ("ctilink.status.a", b'{"n":1}', f"{inbox}.1", {"Nats-Msg-Id": "a:1"}),
            ("ctilink.status.a", b"", f"{inbox}.2", None),
            ("ctilink.status.a", b'{"n":1}', f"{inbox}.3", {"Nats-Msg-Id": "a:1"}),  # dropped
        ],
    )
    replies = [await acks.next_msg(timeout=5) for _ in range(3)]
    stored = await stream_messages(nc, "CTILINK_OUT", "ctilink.status.a")

    assert [m.subject.rsplit(".", 1)[-1] for m in replies] == ["1", "2", "3"]
    assert json.loads(replies[2].data)["duplicate"] is True
    assert [(m.data, (m.headers or {}).get("Nats-Msg-Id")) for m in stored] == [
        (b'{"n":1}', "a:1"),
        (b"", None),
    ]
    with pytest.raises(BadSubjectError):  # what the fast path cannot vouch for, nats-py checks
        await publish_many(nc, [("ctilink.status.a b", b"x", "", None)])


async def test_events_after_the_pull_requests_expired_are_consumed_in_order(nc, service):
    lines = many_events(600, networks=3, seed=3)
    js = nc.jetstream()

    for line in lines[:300]:
        await js.publish(f"ctilink.in.{network_of(line)}", line)

    async def out(count: int) -> bool:
        return sum((await event_ids(nc)).values()) >= count

    await wait_for(lambda: out(300))
    await asyncio.sleep(EXPIRES * 2.5)  # every pull request expired in between, some renewed
    for line in lines[300:]:
        await js.publish(f"ctilink.in.{network_of(line)}", line)
    await wait_for(lambda: out(len(lines)))
    await asyncio.sleep(0.5)

    check_exactly_once(service.store, lines, await event_ids(nc))
    assert (await js.stream_info("CTILINK_IN")).state.messages == 0  # all acked
    assert service.stop() == 0


class SharedStore:
    """A stand-in for the store: decided ids in commit order, a partition's position (CAS)."""

    def __init__(self) -> None:
        self.logged: list[str] = []
        self.position = 0


class Recording:
    """An ingestor over a SharedStore that decides after a random delay, or hangs when told."""

    def __init__(self, store: SharedStore, rng: random.Random) -> None:
        self.store, self.rng = store, rng
        self.hang = asyncio.Event()
        self.hang.set()  # cleared: the next commit waits (a process stopped mid-commit)

    async def ingest(self, deliveries: list) -> list[Outcome]:
        await asyncio.sleep(self.rng.uniform(0.0, 0.02))  # a commit takes a while
        await self.hang.wait()
        outcomes = []
        for delivery in deliveries:  # what the store's compare-and-set comes to
            if delivery.seq <= self.store.position:
                outcomes.append(Outcome("decided"))
                continue
            self.store.logged.append(json.loads(delivery.data)["id"])
            self.store.position = delivery.seq
            outcomes.append(Outcome("accepted", position=1))
        return outcomes


async def test_a_holder_that_stops_mid_batch_loses_the_partition_and_order_is_kept_i4(
    nats_server,
):
    clients = [await nats.connect(nats_server.url) for _ in range(3)]
    producer = clients[2].jetstream()
    await ensure_streams(clients[0].jetstream(), 1)
    await producer.publish(
        "ctilink.in.acme", b'{"type":"portal_restarted","id":"e0000","network":"acme"}'
    )
    stored = await producer.stream_info("CTILINK_IN", subjects_filter="ctilink.in.*.acme")
    partition = int(next(iter(stored.state.subjects or {})).split(".")[2])
    store, said, rng = SharedStore(), [], random.Random(7)

    def consumer(nc, ingestor: Recording) -> PartitionConsumer:  # type: ignore[no-untyped-def]
        return PartitionConsumer(
            ingestor,
            nc,
            lambda: None,
            said.append,
            partition=partition,
            source="test",
            batch=5,
            priority_timeout=1.0,
        )

    sent = ["e0000", *(f"e{n:04d}" for n in range(1, 161))]

    async def produce(ids: list[str]) -> None:
        for event_id in ids:
            body = {"type": "portal_restarted", "id": event_id, "network": "acme"}
            await producer.publish("ctilink.in.acme", json.dumps(body).encode())

    slow, quick = Recording(store, rng), Recording(store, rng)
    old, new = consumer(clients[0], slow), consumer(clients[1], quick)
    await old.start()
    stop = asyncio.Event()
    running = [asyncio.ensure_future(old.run(stop))]
    await produce(sent[1:21])
    await wait_for(lambda: _logged_at_least(store, 21))
    assert old.pinned
    # The holder stops mid-commit (a stopped process); another instance pulls too.
    slow.hang.clear()
    await new.start()
    running.append(asyncio.ensure_future(new.run(stop)))
    for start in range(21, len(sent), 10):
        await produce(sent[start : start + 10])
        await asyncio.sleep(0.05)
    await wait_for(lambda: _logged_at_least(store, len(sent)), timeout=30)
    slow.hang.set()  # it wakes up and finishes what it held: decided already, so acked
    await asyncio.sleep(1.5)
    stop.set()
    await asyncio.gather(*running)

    assert store.logged == sent  # once each, in the order sent
    assert new.pinned and not old.pinned
    # Each delivery names the pin it was sent under: runs of one pin are decided
    # without asking the stream (consumer.continues).
    assert new.last_delivery is not None and new.last_delivery.pin is not None
    assert any("resetting" in line for line in said), said
    assert (await producer.stream_info("CTILINK_IN")).state.messages == 0  # all acked
    for client in clients:
        await client.close()


async def _logged_at_least(store: SharedStore, count: int) -> bool:
    return len(store.logged) >= count
