"""A partition's batch is one unbroken run of the consumer's deliveries (SPEC I4).

Messages of several pull requests wait together; between two of them the
consumer may have served another instance, been reset, or redelivered an older
message. A batch decided across such a break would record the later sequence as
decided while older messages were still unacked, and those would be taken for
decided when they came again: accepted events lost.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

from nats.aio.msg import Msg
from nats.js.errors import NotFoundError

from ctilink.adapters.nats import compat
from ctilink.adapters.nats.consumer import (
    PartitionConsumer,
    continues,
    sequence,
    sequences,
    unbroken,
)


def delivered(
    stream_seq: int,
    consumer_seq: int,
    *,
    times: int = 1,
    pin: str | None = "pin-1",
    domain: bool = False,
) -> Msg:
    """A message as the consumer delivers it, its sequences in its ack subject."""
    if domain:  # the layout with a domain and an account hash (and a token more)
        reply = f"$JS.ACK.hub.ACC.CTILINK_IN.ctilink-p0.{times}.{stream_seq}.{consumer_seq}.0.0.r"
    else:
        reply = f"$JS.ACK.CTILINK_IN.ctilink-p0.{times}.{stream_seq}.{consumer_seq}.0.0"
    headers = None if pin is None else {"Nats-Pin-Id": pin}
    return Msg(None, subject="ctilink.in.acme", reply=reply, data=b"{}", headers=headers)  # type: ignore[arg-type]


def waiting(*messages: Msg) -> collections.deque[Msg]:
    return collections.deque(messages)


def places(messages) -> list[tuple[int, int]]:
    return [(sequence(m).stream, sequence(m).consumer) for m in messages]


def test_both_ack_subject_layouts_give_the_sequences_and_the_delivery_count() -> None:
    assert sequences(delivered(17, 4, times=3).reply) == (17, 4, 3)
    assert sequences(delivered(17, 4, times=3, domain=True).reply) == (17, 4, 3)
    assert sequence(delivered(17, 4)).pin == "pin-1"


def test_a_batch_takes_consecutive_deliveries_up_to_its_limit() -> None:
    messages = waiting(delivered(10, 1), delivered(11, 2), delivered(12, 3), delivered(13, 4))
    assert places(unbroken(messages, 3)) == [(10, 1), (11, 2), (12, 3)]
    assert places(messages) == [(13, 4)]  # left for the next batch


def test_a_batch_stops_where_another_instance_was_served_between_deliveries() -> None:
    # consumer sequences 3..5 went elsewhere (stream 12..14, unacked there)
    messages = waiting(delivered(10, 1), delivered(11, 2), delivered(15, 6), delivered(16, 7))
    assert places(unbroken(messages, 1000)) == [(10, 1), (11, 2)]
    assert places(messages) == [(15, 6), (16, 7)]


def test_a_batch_stops_at_a_reset_that_numbered_deliveries_again() -> None:
    messages = waiting(delivered(20, 7), delivered(21, 8), delivered(12, 1), delivered(13, 2))
    assert len(unbroken(messages, 1000)) == 2


def test_a_batch_stops_at_another_pin_even_where_the_numbers_run_on() -> None:
    # After a reset the numbers start again at 1: another client's 1..8 can make a 9
    # that looks like this client's next delivery.
    messages = waiting(delivered(20, 8), delivered(40, 9, pin="pin-2"))
    assert len(unbroken(messages, 1000)) == 1


def test_a_redelivery_is_a_batch_of_its_own_and_continues_nothing() -> None:
    # Seen in a soak run: ack waits ran out for 2790..2797 and 2819 (one holder's)
    # before they did for 2803 and 2807 (another's): consecutive numbers, a gap.
    messages = waiting(
        delivered(2790, 163, times=2),
        delivered(2791, 164, times=2),
        delivered(2819, 165, times=2),
        delivered(2830, 166),
    )
    assert [len(unbroken(messages, 1000)) for _ in range(4)] == [1, 1, 1, 1]
    assert not continues(sequence(delivered(2791, 164, times=2)), sequence(delivered(2830, 165)))


def test_without_a_pin_nothing_continues() -> None:
    assert not continues(sequence(delivered(1, 1, pin=None)), sequence(delivered(2, 2, pin=None)))


class Recording:
    """An ingestor that keeps what it was given to decide."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    async def ingest(self, arrivals: list[Any]) -> list[Any]:
        self.batches.append([delivery.seq for delivery in arrivals])
        return []


class Stream:
    """The partition's oldest message still in the stream, and resets asked for."""

    def __init__(self, oldest: int) -> None:
        self.oldest, self.resets = oldest, 0

    async def get_msg(self, stream: str, **_: Any) -> Any:
        return type("Raw", (), {"seq": self.oldest})()

    async def reset_consumer(self, stream: str, name: str) -> None:
        self.resets += 1


class Connection:
    """Just enough of a NATS client for a consumer that commits and acks."""

    max_payload = 1 << 20

    def __init__(self, stream: Stream) -> None:
        self.stream, self.acks = stream, 0

    def jetstream(self, **_: Any) -> Stream:
        return self.stream

    async def publish(self, subject: str, payload: bytes = b"", **_: Any) -> None:
        self.acks += 1


def consuming(stream: Any) -> tuple[PartitionConsumer, Recording]:
    """A partition's consumer on a stand-in stream, and what it was given to decide."""
    ingestor = Recording()
    consumer = PartitionConsumer(
        ingestor, Connection(stream), lambda: None, partition=0, source="s"
    )  # type: ignore[arg-type]
    return consumer, ingestor


def test_the_run_after_a_break_is_checked_against_the_stream_and_not_decided_past_a_gap(
    monkeypatch,
) -> None:
    monkeypatch.setattr(compat, "ENABLED", False)  # acks as plain publishes
    stream = Stream(oldest=10)
    consumer, ingestor = consuming(stream)
    consumer.arrived = waiting(
        delivered(10, 1), delivered(11, 2), delivered(15, 6), delivered(16, 7)
    )

    async def two_batches() -> None:
        stop = asyncio.Event()
        await consumer.handle(unbroken(consumer.arrived, 1000), stop)
        stream.oldest = 12  # 12..14 are still unacked, delivered elsewhere
        await consumer.handle(unbroken(consumer.arrived, 1000), stop)

    asyncio.run(two_batches())
    assert ingestor.batches == [[10, 11]]  # never 15 and 16 before 12..14
    assert consumer.reset_due or stream.resets == 1  # delivered again from the ack floor
    assert list(consumer.arrived) == []
    assert consumer.nc.acks == 2  # the decided run only


class Holding:
    """A stream that still holds the messages whose acks it has not taken yet."""

    def __init__(self, *held: int) -> None:
        self.held, self.resets = set(held), 0

    async def get_msg(self, stream: str, *, seq: int, **_: Any) -> Any:
        after = [s for s in self.held if s >= seq]
        if not after:
            raise NotFoundError
        return type("Raw", (), {"seq": min(after)})()

    async def reset_consumer(self, stream: str, name: str) -> None:
        self.resets += 1


def test_messages_just_acked_do_not_look_undecided_to_the_order_check(monkeypatch) -> None:
    """The server may answer before it took the acks just sent: no needless reset (I4)."""
    monkeypatch.setattr(compat, "ENABLED", False)
    stream = Holding(10, 11, 12, 13)  # 10 and 11 decided and acked, the acks not yet taken
    consumer, ingestor = consuming(stream)
    consumer.arrived = waiting(delivered(10, 1), delivered(11, 2))

    async def then_another_pin() -> None:
        stop = asyncio.Event()
        await consumer.handle(unbroken(consumer.arrived, 1000), stop)
        consumer.arrived.extend([delivered(12, 1, pin="pin-2"), delivered(13, 2, pin="pin-2")])
        await consumer.handle(unbroken(consumer.arrived, 1000), stop)

    asyncio.run(then_another_pin())
    assert ingestor.batches == [[10, 11], [12, 13]]
    assert stream.resets == 0 and not consumer.reset_due


def test_an_older_message_held_elsewhere_is_still_seen_past_what_was_decided(monkeypatch) -> None:
    monkeypatch.setattr(compat, "ENABLED", False)
    stream = Holding(10, 11, 12, 15)  # 12 went to another instance and is unacked there
    consumer, ingestor = consuming(stream)
    consumer.arrived = waiting(delivered(10, 1), delivered(11, 2))

    async def then_a_gap() -> None:
        stop = asyncio.Event()
        await consumer.handle(unbroken(consumer.arrived, 1000), stop)
        consumer.arrived.append(delivered(15, 1, pin="pin-2"))
        await consumer.handle(unbroken(consumer.arrived, 1000), stop)

    asyncio.run(then_a_gap())
    assert ingestor.batches == [[10, 11]]  # never 15 before 12
    assert consumer.reset_due or stream.resets == 1
