"""A store that is away (PostgreSQL restarting) is waited out, never a crash or a lost event."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from eventsourcing.persistence import OperationalError
from nats.micro.request import ServiceError

from ctilink.adapters.nats.api import store_errors_as_503
from ctilink.adapters.nats.consumer import PartitionConsumer
from ctilink.adapters.nats.leading import publish_while_leading
from ctilink.adapters.store.coordination.roles import FileRoles
from ctilink.domain.decision import Outcome


class FlakyIngestor:
    """Fails like a restarting PostgreSQL a few times, then commits."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def ingest(self, messages: list) -> list[Outcome]:
        self.calls += 1
        if self.calls <= self.failures:
            raise OperationalError("connection refused")
        return [Outcome("accepted", position=n + 1) for n in range(len(messages))]


def consumer(ingestor: FlakyIngestor, logged: list[str]) -> PartitionConsumer:
    nc = SimpleNamespace(jetstream=lambda prefix: SimpleNamespace())
    return PartitionConsumer(
        ingestor,  # type: ignore[arg-type]
        nc,  # type: ignore[arg-type]
        committed=lambda: None,
        log=logged.append,
        partition=0,
        source="nats:CTILINK_IN:0",
    )


async def test_the_consumer_retries_a_batch_until_the_store_is_back(monkeypatch):
    monkeypatch.setattr("ctilink.adapters.nats.consumer.STORE_RETRY_SECONDS", 0.01)
    logged: list[str] = []
    flaky = FlakyIngestor(failures=3)

    outcomes = await consumer(flaky, logged)._ingest_when_stored(["e"], asyncio.Event())

    assert [o.outcome for o in outcomes or []] == ["accepted"]
    assert flaky.calls == 4
    assert logged == [
        "partition 0: waiting for the store: connection refused",
        "partition 0: the store is back",
    ]


async def test_a_consumer_stopped_while_the_store_is_away_acks_nothing():
    stop = asyncio.Event()
    stop.set()
    flaky = FlakyIngestor(failures=100)

    # None: the caller returns without acking, and the batch is delivered again.
    assert await consumer(flaky, [])._ingest_when_stored(["e"], stop) is None


async def test_queries_answer_503_with_the_reason_while_the_store_is_away():
    async def status(_: object) -> None:
        raise OperationalError("connection to server failed\nmore detail")

    with pytest.raises(ServiceError) as raised:
        await store_errors_as_503(status)(object())  # type: ignore[arg-type]

    assert (raised.value.code, raised.value.description) == (
        "503",
        "the store is unavailable: connection to server failed",
    )


class AwayThenPublishing:
    """A publisher whose first run finds the store away; the next runs until told."""

    runs = 0

    async def run(self, lost: asyncio.Event) -> None:
        AwayThenPublishing.runs += 1
        if AwayThenPublishing.runs == 1:
            raise OperationalError("server closed the connection")
        await lost.wait()


async def test_the_publisher_waits_for_the_store_and_publishes_again(tmp_path, monkeypatch):
    monkeypatch.setattr("ctilink.adapters.nats.leading.STORE_RETRY_SECONDS", 0.01)
    AwayThenPublishing.runs = 0
    roles = FileRoles(str(tmp_path / "ctilink.db"))
    logged: list[str] = []
    stop = asyncio.Event()

    publishing = asyncio.ensure_future(
        publish_while_leading(roles, AwayThenPublishing, stop, logged.append)  # type: ignore[arg-type]
    )
    while AwayThenPublishing.runs < 2:
        await asyncio.sleep(0.01)
    stop.set()
    await publishing

    assert "publisher waiting for the store: server closed the connection" in logged
    assert logged.count("publishing: this instance holds the publisher role") == 2
