"""The consumer's own pull requests and the raw publishes it and the publisher use."""

from __future__ import annotations

import asyncio
import json
import random

import nats
import pytest
from nats.errors import BadSubjectError

from ctilink.adapters.nats.batch import publish_many
from ctilink.adapters.nats.consumer import EXPIRES, Consumer
from ctilink.adapters.nats.streams import ensure_streams
from ctilink.domain.service import Outcome
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
            ("ctilink.status.a", b'{"n":1}', f"{inbox}.1", "a:1"),
            ("ctilink.status.a", b"", f"{inbox}.2", None),
            ("ctilink.status.a", b'{"n":1}', f"{inbox}.3", "a:1"),  # a duplicate: dropped
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


class Recording:
    """An ingestor that logs ids in commit order, once each (I3), after a random delay."""

    def __init__(self, log: list[str], rng: random.Random) -> None:
        self.log, self.rng = log, rng

    async def ingest(self, arrivals: list) -> list[Outcome]:
        await asyncio.sleep(self.rng.uniform(0.0, 0.03))  # a commit takes a while
        self.log.extend(a.event.id for a in arrivals if a.event.id not in self.log)
        return [Outcome("accepted", position=1) for _ in arrivals]


async def test_a_holder_that_lost_its_partition_unnoticed_stops_when_another_takes_it_i4(
    nats_server,
):
    clients = [await nats.connect(nats_server.url) for _ in range(3)]
    first, _, producer = (c.jetstream() for c in clients)
    await ensure_streams(first, 1)
    subject = "ctilink.in.*.acme"  # acme's events, whichever partition they are filed under
    logged: list[str] = []
    said: list[str] = []
    rng = random.Random(7)

    def consumer(nc, name: str) -> Consumer:  # type: ignore[no-untyped-def]
        ingestor = Recording(logged, rng)
        return Consumer(
            ingestor,  # type: ignore[arg-type]
            nc,
            lambda: None,
            said.append,
            durable=name,
            subject=subject,
            batch=5,
        )

    sent = [f"e{n:04d}" for n in range(1, 221)]

    async def produce(ids: list[str]) -> None:
        for event_id in ids:
            body = {"type": "portal_restarted", "id": event_id, "network": "acme"}
            await producer.publish("ctilink.in.acme", json.dumps(body).encode())

    old = consumer(clients[0], "old")
    await old.start()
    stop_old, stop_new = asyncio.Event(), asyncio.Event()
    running_old = asyncio.ensure_future(old.run(stop_old))
    await produce(sent[:20])
    await asyncio.sleep(0.3)
    # The old holder's role session broke; it has not noticed. The new one takes over.
    new = consumer(clients[1], "new")
    await new.start()
    running_new = asyncio.ensure_future(new.run(stop_new))
    for start in range(20, len(sent), 10):
        await produce(sent[start : start + 10])
        await asyncio.sleep(0.02)
    await wait_for(lambda: _all_logged(logged, sent))
    stop_new.set()
    await asyncio.gather(running_old, running_new)  # the old one ended on its own

    assert logged == sent  # once each, in the order sent
    assert any(line.startswith("consumer old: ") for line in said), said  # it stopped
    for client in clients:
        await client.close()


async def _all_logged(logged: list[str], sent: list[str]) -> bool:
    return len(logged) >= len(sent)
