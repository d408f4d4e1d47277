"""The consumer's own pull requests and the raw publishes it and the publisher use."""

from __future__ import annotations

import asyncio
import json

import pytest
from nats.errors import BadSubjectError

from adapters.consumer import EXPIRES
from adapters.jetstream_batch import publish_many
from adapters.streams import ensure_streams
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
