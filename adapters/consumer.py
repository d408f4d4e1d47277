"""Consumes CTILINK_IN: apply, commit, publish rejections, then ack."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import msgspec
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from adapters.ingest import MAX_LINE_BYTES, explain
from adapters.streams import IN_STREAM
from adapters.wire import Rejection, encode
from domain import messages as m
from domain.service import NetworkService, Outcome

DURABLE = "ctilink"
FETCH = 1000


class Ingestor:
    """Applies events one batch at a time; the single writer of this process."""

    def __init__(self, service: NetworkService) -> None:
        self.service = service
        self.lock = asyncio.Lock()  # the consumer and api.ingest take turns

    async def ingest(self, messages: list[m.Message]) -> list[Outcome]:
        """Apply and commit in a worker thread, so queries keep being answered."""
        async with self.lock:
            return await asyncio.to_thread(self.service.ingest, messages)


def check(msg: Msg) -> m.Message | Rejection:
    """Decode one inbound message, or the `invalid` rejection that says why not (I1)."""
    text = msg.data.decode("utf-8", "replace")
    if len(msg.data) > MAX_LINE_BYTES:
        return Rejection("invalid", f"event is longer than {MAX_LINE_BYTES} bytes", text[:1024])
    try:
        message = m.decode(msg.data)
    except msgspec.DecodeError as error:
        return Rejection("invalid", explain(error), text)
    token = msg.subject.split(".", 2)[-1]
    if message.network != token:
        return Rejection(
            "invalid",
            f"field `network`: {message.network!r} differs from the subject's network {token!r}",
            text,
        )
    return message


class Consumer:
    """A durable pull consumer on CTILINK_IN; acks only what is durable."""

    def __init__(
        self,
        ingestor: Ingestor,
        js: JetStreamContext,
        committed: Callable[[], None],
        log: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.ingestor = ingestor
        self.js = js
        self.committed = committed
        self.log = log
        self.subscription = None

    async def start(self) -> None:
        """Create the durable consumer afresh, so what a crashed run left unacked comes first."""
        # CTILINK_IN is a work queue: what was acked is gone, what was not is still
        # there. A new consumer delivers it at once and in order; the old one would
        # hold it back until ack_wait ran out and deliver newer events first (I4).
        with contextlib.suppress(NotFoundError):
            await self.js.delete_consumer(IN_STREAM, DURABLE)
        config = ConsumerConfig(
            durable_name=DURABLE,
            ack_policy=AckPolicy.EXPLICIT,  # what a work-queue stream requires
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=60,
            max_ack_pending=50_000,
        )
        self.subscription = await self.js.pull_subscribe(
            "ctilink.in.*", durable=DURABLE, stream=IN_STREAM, config=config
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Fetch, apply and ack batches until stopped; the batch in hand is finished."""
        assert self.subscription is not None
        while not stop.is_set():
            try:
                batch = await self.subscription.fetch(batch=FETCH, timeout=0.5)
            except (NatsTimeout, TimeoutError):
                continue
            except Exception as error:
                self.log(f"consumer waiting for NATS ({type(error).__name__})")
                await asyncio.sleep(0.5)
                continue
            await self.handle(batch)

    async def handle(self, batch: list[Msg]) -> None:
        """Apply one fetched batch: commit, publish rejections, then ack every message."""
        checked = [check(msg) for msg in batch]
        valid = [c for c in checked if not isinstance(c, Rejection)]
        outcomes = iter(await self.ingestor.ingest(valid))
        rejections: list[Awaitable[object]] = []
        for msg, item in zip(batch, checked, strict=True):
            if not isinstance(item, Rejection):
                outcome = next(outcomes)
                if outcome.outcome != "rejected":
                    continue
                item = Rejection(outcome.code or "", outcome.message or "", msg.data.decode())
            token = msg.subject.split(".", 2)[-1]
            # The inbound sequence makes the id: a redelivered message is deduplicated.
            msg_id = f"rejected:{msg.metadata.sequence.stream}"
            rejections.append(
                await self.js.publish_async(
                    f"ctilink.rejected.{token}", encode(item), headers={"Nats-Msg-Id": msg_id}
                )
            )
        self.committed()
        if rejections:
            await asyncio.wait_for(asyncio.gather(*rejections), timeout=10)
        for msg in batch:
            await msg.ack()

    async def close(self) -> None:
        """Unsubscribe, so that draining the connection does not hang on the pull inbox."""
        if self.subscription is not None:
            await self.subscription.unsubscribe()
