"""A crash never changes a decision over NATS: `ctilink serve` killed and restarted mid-stream.

The stream is rich in rejections that depend on order (tests/scenarios.py). A
message redelivered after a kill (committed, not yet acked) is recognised by
its partition's recorded position and acked, not decided again; its rejection,
kept with the commit, is published once. In the end the logs and hash chains
are those of one uninterrupted `ctilink ingest` of the same lines, CTILINK_OUT
holds every event once and every rejection once.
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

KILLS = 20


@pytest.fixture
def serving(nats_server, tmp_path, new_store) -> Iterator[Service]:  # type: ignore[no-untyped-def]
    """The service on each kind of store, not started; killed at the end if still running."""
    service = Service(new_store(), nats_server.url, tmp_path / "serve.log")
    yield service
    if service.process is not None and service.process.poll() is None:
        service.kill()


async def test_serve_killed_twenty_times_mid_stream_ends_as_one_uninterrupted_run_i3_i4(
    nc, serving, tmp_path
):
    events = order_dependent_events(seed=3, count=4_000, networks=150)
    lines = [json.dumps(e).encode() for e in events]
    reports, expected = uninterrupted(lines, tmp_path)
    rejected = Counter(
        (json.loads(line)["network"], r["id"], r["code"])
        for line, r in zip(lines, reports, strict=True)
        if r["outcome"] == "rejected"
    )
    assert len(rejected) > len(lines) // 5  # rich in rejections
    service = serving
    service.start()  # creates the streams
    service.kill()
    rng = random.Random(4)

    # A backlog for each start, taken in batches of up to a thousand, where an
    # event's verdict often depends on events later in the same batch.
    waves = [lines[k * len(lines) // KILLS : (k + 1) * len(lines) // KILLS] for k in range(KILLS)]
    for kill, wave in enumerate(waves):
        await publish_all(nc, wave)  # fresh work for each start, while it is down
        service.start()
        if kill % 2:
            await asyncio.sleep(rng.uniform(0.02, 0.3))  # anywhere: deciding, committing
        else:
            await asyncio.to_thread(right_after_a_commit, service.store)  # before its ack
        service.kill()
    service.start()

    async def settled() -> bool:
        info = await nc.jetstream().stream_info("CTILINK_IN")
        return info.state.messages == 0 and await asyncio.to_thread(
            publisher_caught_up, service.store
        )

    await wait_for(settled, timeout=120, every=0.3)
    assert logs_and_heads(service.store) == expected
    events = await event_ids(nc)
    assert set(events.values()) == {1}
    assert len(events) == sum(len(ids) for ids, _ in expected.values())
    out = await stream_messages(nc, "CTILINK_OUT", "ctilink.rejected.>")
    assert Counter(m.headers["Nats-Msg-Id"] for m in out).most_common(1)[0][1] == 1
    published = Counter(
        (
            m.subject.rsplit(".", 1)[1],
            json.loads(json.loads(m.data)["payload"])["id"],
            json.loads(m.data)["code"],
        )
        for m in out
    )
    assert published == rejected
    assert service.stop() == 0
    assert "decided before came again" in service.log.read_text()  # redeliveries happened
