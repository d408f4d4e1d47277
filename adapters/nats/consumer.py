"""Consumes one partition of CTILINK_IN: apply, commit, publish rejections, then ack."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import time
from collections.abc import Callable

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import DEFAULT_PREFIX as JS_API_PREFIX
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from ctilink.adapters.nats.batch import publish_many
from ctilink.adapters.nats.ingestor import Ingestor
from ctilink.adapters.nats.streams import IN_STREAM, network_of
from ctilink.adapters.store.waiting import STORE_AWAY, STORE_RETRY_SECONDS, first_line, wait_or_stop
from ctilink.domain import messages as m
from ctilink.domain.arrivals import Arrival
from ctilink.domain.decoding import Invalid, decode_encoded
from ctilink.domain.service import Outcome

FETCH = 1000  # at most this many messages are applied and committed together
EXPIRES = 1.0  # seconds a pull request waits on the server for messages
ACK = b"+ACK"


def arrival(msg: Msg, source: str) -> Arrival:
    """One inbound message as it arrived: decoded (I1), from its partition, at its sequence."""
    data = msg.data
    token = network_of(msg.subject)
    event, encoded = decode_encoded(data)
    if not m.is_name(token):  # a literal wildcard subject: routed nowhere
        named_network = None if isinstance(event, Invalid) else event.network
        event = Invalid(
            getattr(event, "id", None),
            f"the subject {msg.subject!r} names no network: publish to ctilink.in.<network>",
        )
        return Arrival(event, source, msg.metadata.sequence.stream, named_network, data)
    if not isinstance(event, Invalid) and event.network != token:
        event = Invalid(
            event.id,
            f"field `network`: {event.network!r} differs from the subject's network {token!r}",
        )
    return Arrival(event, source, msg.metadata.sequence.stream, token, data, encoded=encoded)


class Pull:
    """One pull request sent to the consumer: how many messages it may still bring."""

    __slots__ = ("deadline", "inbox", "left")

    def __init__(self, inbox: str, left: int, deadline: float) -> None:
        self.inbox, self.left, self.deadline = inbox, left, deadline


class Consumer:
    """A durable pull consumer on a work-queue stream; acks only what is durable."""

    # nats-py's fetch() spends more per message (a task and a wait_for each) than
    # applying the event does, and msg.ack() is a coroutine per message. So this
    # consumer sends the pull requests itself, to an inbox whose callback only
    # queues what arrives, keeps the next batch coming while one is committed,
    # and acks a committed batch with plain publishes.

    def __init__(
        self,
        ingestor: Ingestor,
        nc: Client,
        committed: Callable[[], None],
        log: Callable[[str], None] = lambda _: None,
        *,
        durable: str,
        subject: str,
        stream: str = IN_STREAM,
        batch: int = FETCH,
        api_prefix: str = JS_API_PREFIX,
        source: str | None = None,
    ) -> None:
        self.ingestor = ingestor
        self.nc = nc
        self.js = nc.jetstream(prefix=api_prefix)
        self.committed = committed
        self.log = log
        self.stream, self.durable, self.subject, self.batch = stream, durable, subject, batch
        # Where its messages come from, as the store records the last one decided.
        self.source = source or f"nats:{stream}:{subject}"
        # The pull request of the JetStream API, as nats-py's fetch() sends it.
        self.next_subject = f"{api_prefix}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self.subscription = None
        self.inbox = ""
        self.requests = itertools.count()
        self.pulls: collections.deque[Pull] = collections.deque()  # oldest first
        self.arrived: collections.deque[Msg] = collections.deque()  # in stream order
        self.wake = asyncio.Event()
        self.reconnects = 0
        self.ended: str | None = None  # why this consumer must be started afresh

    async def start(self) -> None:
        """Create the durable consumer afresh, so what a crashed run left unacked comes first."""
        # CTILINK_IN is a work queue: what was acked is gone, what was not is still
        # there. A new consumer delivers it at once and in order; the old one would
        # hold it back until ack_wait ran out and deliver newer events first (I4).
        # Every earlier consumer of these subjects goes, whoever made it: a holder
        # that lost its role unnoticed then pulls from a consumer that is gone,
        # rather than sharing ours and taking every other batch.
        for info in await self.js.consumers_info(self.stream):
            if info.name == self.durable or info.config.filter_subject == self.subject:
                with contextlib.suppress(NotFoundError):
                    await self.js.delete_consumer(self.stream, info.name)
        self.ended = None
        config = ConsumerConfig(
            durable_name=self.durable,
            filter_subject=self.subject,
            ack_policy=AckPolicy.EXPLICIT,  # what a work-queue stream requires (2.15 too)
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=60,
            max_ack_pending=50_000,
        )
        await self.js.add_consumer(self.stream, config)
        self.inbox = self.nc.new_inbox()
        self.subscription = await self.nc.subscribe(f"{self.inbox}.*", cb=self._arrive)
        self.reconnects = self.nc.stats["reconnects"]

    async def _arrive(self, msg: Msg) -> None:
        """Queue a delivered message; a status message (408, 409…) ends its pull request."""
        if msg.reply:  # a stream message: its reply subject is its ack subject
            self.arrived.append(msg)
            # The server fills pull requests oldest first.
            while self.pulls and self.pulls[0].left <= 0:
                self.pulls.popleft()
            if self.pulls:
                self.pulls[0].left -= 1
                if self.pulls[0].left == 0:
                    self.pulls.popleft()
            self.wake.set()
            return
        status = msg.headers.get("Status") if msg.headers else None
        if status == "100":  # idle heartbeat
            return
        for pull in self.pulls:
            if pull.inbox == msg.subject:
                self.pulls.remove(pull)
                break
        described = (msg.headers or {}).get("Description", "").strip().splitlines()
        reason = (described or [""])[0]
        if status == "409" and "deleted" in reason.lower():
            self.ended = "its consumer was deleted (another instance took the partition)"
        elif status == "503":
            # No consumer answered: deleted by a new holder, or a cluster electing
            # its leader. Starting afresh is right either way.
            self.ended = "no answer for its consumer (replaced, or JetStream unavailable)"
        elif status not in (None, "404", "408") and "shutdown" not in reason.lower():
            # (A server shutting down is logged once, as the disconnection.)
            self.log(f"consumer {self.durable}: pull request ended with {status} {reason}".rstrip())
        self.wake.set()

    async def _pull(self) -> None:
        """Ask for more, so that up to two batches are on their way or waiting here."""
        if self.nc.stats["reconnects"] != self.reconnects:
            # Messages on their way when the connection broke stay pending until
            # ack_wait runs out, and newer ones would come first: start afresh.
            self.ended = "NATS reconnected"
            return
        now = time.monotonic()
        while self.pulls and self.pulls[0].deadline < now:  # never answered: lost
            self.pulls.popleft()
        promised = sum(pull.left for pull in self.pulls) + len(self.arrived)
        if promised > self.batch or not self.nc.is_connected:
            return
        inbox = f"{self.inbox}.{next(self.requests)}"
        request = {"batch": self.batch, "expires": int(EXPIRES * 1e9)}
        self.pulls.append(Pull(inbox, self.batch, now + EXPIRES + 2.0))
        await self.nc.publish(self.next_subject, json.dumps(request).encode(), reply=inbox)

    async def run(self, stop: asyncio.Event) -> None:
        """Apply and ack batches until stopped; the batch in hand is finished."""
        assert self.subscription is not None
        while not stop.is_set():
            if self.ended is not None:
                # Unacked, whatever is here comes again from the next consumer.
                self.arrived.clear()
                self.log(f"consumer {self.durable}: {self.ended}; stopping it")
                return
            try:
                await self._pull()
            except Exception as error:
                self.log(f"consumer waiting for NATS ({type(error).__name__})")
                await asyncio.sleep(0.5)
                continue
            if not self.arrived:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=0.25)
                continue
            count = min(len(self.arrived), self.batch)
            batch = [self.arrived.popleft() for _ in range(count)]
            with contextlib.suppress(Exception):  # the next batch comes while this one commits
                await self._pull()
            await self.handle(batch, stop)

    async def handle(self, batch: list[Msg], stop: asyncio.Event) -> None:
        """Apply one batch, committing its rejections and position with it, then ack it all."""
        # A message at or below the partition's recorded position was decided by a
        # commit whose ack was lost (a crash, a handover): it is acked, not decided
        # again. Rejections are published by the publisher, from the store.
        arrivals = [arrival(msg, self.source) for msg in batch]
        committed = await self._ingest_when_stored(arrivals, stop)
        if committed is None:
            return  # stopped while the store was away: unacked, the batch comes again
        again = sum(outcome.outcome == "decided" for outcome in committed)
        if again:
            self.log(f"consumer {self.durable}: {again} messages decided before came again; acked")
        self.committed()
        # What msg.ack() sends for each, as one write.
        await publish_many(self.nc, ((msg.reply, ACK, "", None) for msg in batch))

    async def _ingest_when_stored(
        self, messages: list[Arrival], stop: asyncio.Event
    ) -> list[Outcome] | None:
        """Ingest, retrying while the store is away; None if stopped meanwhile."""
        waiting = False
        while True:
            try:
                outcomes = await self.ingestor.ingest(messages)
            except STORE_AWAY as error:
                if not waiting:
                    self.log(f"consumer waiting for the store: {first_line(error)}")
                    waiting = True
                await wait_or_stop(stop, STORE_RETRY_SECONDS)
                if stop.is_set():
                    return None
                continue
            if waiting:
                self.log("consumer: the store is back")
            return outcomes

    async def close(self) -> None:
        """Unsubscribe, so that draining the connection does not hang on the pull inbox."""
        if self.subscription is not None:
            await self.subscription.unsubscribe()
            self.subscription = None
