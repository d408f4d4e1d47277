"""nats-py's private API is used on the version it was written for only; elsewhere, the public one.

Both paths must put the same messages, with the same Nats-Msg-Id, into JetStream.
"""

from __future__ import annotations

import pytest
from nats.aio.client import __version__ as NATS_PY_VERSION

from ctilink.adapters.nats import compat
from ctilink.adapters.nats.batch import BatchPublisher
from ctilink.adapters.nats.streams import ensure_streams
from tests.e2e.conftest import stream_messages


def test_the_private_api_is_used_only_on_the_version_it_was_written_for() -> None:
    assert NATS_PY_VERSION.startswith(compat.WRITTEN_FOR) == compat.ENABLED


@pytest.mark.parametrize("fast", [True, False], ids=["private", "public"])
async def test_a_batch_reaches_jetstream_once_with_its_ids_on_either_path(
    nc, monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    monkeypatch.setattr(compat, "ENABLED", fast and compat.ENABLED)
    await ensure_streams(nc.jetstream(), 1)
    publisher = BatchPublisher(nc)
    await publisher.start()
    batch = [
        (f"ctilink.status.n{i}", b'{"i":%d}' % i, {"Nats-Msg-Id": f"n{i}:1:status", "X-I": str(i)})
        for i in range(50)
    ]

    await publisher.publish(batch, timeout=10)
    await publisher.publish(batch[:10], timeout=10)  # again: deduplicated by Nats-Msg-Id

    stored = await stream_messages(nc, "CTILINK_OUT", "ctilink.status.*")
    assert [(m.subject, m.data, m.headers) for m in stored] == batch
    assert nc.stats["out_msgs"] >= 60
