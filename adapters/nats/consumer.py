"""Consumes one partition of CTILINK_IN as one of every instance's pullers; decides while pinned.

Every instance pulls every partition through one shared durable consumer whose
priority group delivers to a single pinned client at a time (jsapi.py): the
NATS server decides who holds a partition, and hands it to another puller when
the holder stops pulling (a crash, a hang, a lost connection). So no partition
is left without a consumer while any instance runs, whatever else shares the
store's database server or the NATS account.

Order across a handover (I4): a new holder may be sent newer messages while the
old holder's unacked ones wait for redelivery. A batch is one unbroken run of
first deliveries under one pin (`continues`); before deciding a batch that does
not continue this client's own last one (a new pin, a reconnect, a reset, a
redelivery), the consumer asks the stream for the partition's oldest message;
if that one is older than the batch, it resets the consumer to its ack floor
and the messages come again in stream order (those the old holder had
committed but not acked are recognised as decided, and acked at once). The
store records each partition's last decided sequence with the events it led to
(compare-and-set), so that no message is decided twice, and none is skipped.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import time
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import DEFAULT_PREFIX as JS_API_PREFIX
from nats.js.errors import NotFoundError

from ctilink.adapters.nats import jsapi
from ctilink.adapters.nats.batch import publish_many
from ctilink.adapters.nats.streams import IN_STREAM, network_of, partition_subject
from ctilink.adapters.store.coordination.waiting import (
    STORE_AWAY,
    STORE_RETRY_SECONDS,
    first_line,
    wait_or_stop,
)
from ctilink.domain import messages as m
from ctilink.domain.arrivals import Arrival
from ctilink.domain.decision import Outcome
from ctilink.domain.decoding import Invalid, decode_encoded

GROUP = "ctilink"  # the priority group every instance pulls in
# How long the pinned client may go without pulling before the server pins another:
# the longest a partition waits after its holder died.
PRIORITY_TIMEOUT = 5.0
FETCH = 1000  # at most this many messages are applied and committed together
EXPIRES = 1.0  # seconds a pull request waits on the server for messages
ACK_WAIT = 60.0
MAX_ACK_PENDING = 50_000
RESET_PAUSE = 2.0  # after a reset, batches sent before it are dropped, not reset again
ACK = b"+ACK"


def consumer_name(partition: int) -> str:
    """The durable consumer every instance pulls one partition through."""
    return f"ctilink-p{partition}"


class Sequence(NamedTuple):
    """Where a delivered message stands: in the stream, in the consumer's deliveries, and whose."""

    stream: int
    consumer: int  # numbered again from 1 after a reset
    delivered: int  # how many times it was delivered (1 again after a reset)
    pin: str | None  # the pinned client's id it was delivered to (Nats-Pin-Id)


def sequences(reply: str) -> tuple[int, int, int]:
    """A delivered message's stream and consumer sequences and delivery count."""
    # $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>,
    # or with a domain and an account hash after ACK (and a token more at the end).
    tokens = reply.split(".")
    at = 5 if len(tokens) == 9 else 7
    return int(tokens[at]), int(tokens[at + 1]), int(tokens[at - 1])


def sequence(msg: Msg) -> Sequence:
    """A delivered message's place, and the pin it was delivered under."""
    pin = msg.headers.get("Nats-Pin-Id") if msg.headers else None
    return Sequence(*sequences(msg.reply), pin)


def stream_sequence(reply: str) -> int:
    """A delivered message's stream sequence, from its ack subject (both of its layouts)."""
    return sequences(reply)[0]


def continues(before: Sequence, after: Sequence) -> bool:
    """Whether `after` is the consumer's very next delivery after `before`, with no gap.

    One pinned client is sent every delivery of its pin's tenure, in order, and
    first deliveries go in stream order: so the next consumer sequence of the
    same pin, a first delivery of a later message, leaves nothing unacked
    between the two. A reset numbers deliveries again from 1 (it breaks the run),
    and a redelivery after an ack wait runs out may come before older messages
    that wait for theirs (so it never continues a run, nor is continued).
    """
    return (
        before.pin is not None
        and after.pin == before.pin
        and after.consumer == before.consumer + 1
        and after.stream > before.stream
        and before.delivered == 1
        and after.delivered == 1
    )


def unbroken(messages: collections.deque[Msg], limit: int) -> list[Msg]:
    """Take up to `limit` messages that the consumer delivered one after another, in order.

    Messages of several pull requests wait together; between two of them the
    consumer may have served another client, been reset, or redelivered an older
    message. Deciding across such a break would record the later sequence as
    decided with unacked messages before it, and those would be taken for
    decided when they came again (I4). So a batch stops at the break, and what
    follows it is checked against the stream as a batch of its own.
    """
    taken = [messages.popleft()]
    last = sequence(taken[0])
    while messages and len(taken) < limit:
        following = sequence(messages[0])
        if not continues(last, following):
            break
        taken.append(messages.popleft())
        last = following
    return taken


class Delivery:
    """One inbound message as delivered: read and decoded later, in the committing thread."""

    __slots__ = ("data", "reply", "source", "subject")

    def __init__(self, subject: str, data: bytes, reply: str, source: str) -> None:
        self.subject, self.data, self.reply, self.source = subject, data, reply, source

    @property
    def seq(self) -> int:
        """Its stream sequence."""
        return stream_sequence(self.reply)

    def arrival(self) -> Arrival:
        """Decoded (I1), from its partition, at its stream sequence."""
        data, seq, source = self.data, self.seq, self.source
        token = network_of(self.subject)
        event, encoded = decode_encoded(data)
        if not m.is_name(token):  # a literal wildcard subject: routed nowhere
            named_network = None if isinstance(event, Invalid) else event.network
            event = Invalid(
                getattr(event, "id", None),
                f"the subject {self.subject!r} names no network: publish to ctilink.in.<network>",
            )
            return Arrival(event, source, seq, named_network, data)
        if not isinstance(event, Invalid) and event.network != token:
            event = Invalid(
                event.id,
                f"field `network`: {event.network!r} differs from the subject's network {token!r}",
            )
        return Arrival(event, source, seq, token, data, encoded=encoded)


class Ingestor(Protocol):
    """What a consumer commits through (adapters/nats/ingestor.py)."""

    async def ingest(self, arrivals: list[Any]) -> list[Outcome]:
        """Decide and commit; each item an Arrival, an event or a Delivery."""
        ...


class Pull:
    """One pull request sent to the consumer: how many messages it may still bring."""

    __slots__ = ("deadline", "inbox", "left")

    def __init__(self, inbox: str, left: int, deadline: float) -> None:
        self.inbox, self.left, self.deadline = inbox, left, deadline


class PartitionConsumer:
    """Pulls one partition's shared consumer; decides and acks what it is sent while pinned."""

    # nats-py's fetch() spends more per message (a task and a wait_for each) than
    # applying the event does, and has no priority groups. So this consumer sends
    # the pull requests itself, to an inbox whose callback only queues what
    # arrives, keeps the next batch coming while one is committed, and acks a
    # committed batch with plain publishes.

    def __init__(
        self,
        ingestor: Ingestor,
        nc: Client,
        committed: Callable[[], None],
        log: Callable[[str], None] = lambda _: None,
        *,
        partition: int,
        source: str,
        stream: str = IN_STREAM,
        batch: int = FETCH,
        api_prefix: str = JS_API_PREFIX,
        priority_timeout: float = PRIORITY_TIMEOUT,
    ) -> None:
        self.ingestor, self.nc, self.committed, self.log = ingestor, nc, committed, log
        self.js = nc.jetstream(prefix=api_prefix)
        self.partition, self.stream, self.batch = partition, stream, batch
        self.durable, self.subject = consumer_name(partition), partition_subject(partition)
        self.priority_timeout = priority_timeout
        self.source = source  # where its messages come from, as the store records them
        self.next_subject = f"{api_prefix}.CONSUMER.MSG.NEXT.{stream}.{self.durable}"
        self.subscription: Any = None
        self.inbox = ""
        self.requests = itertools.count()
        self.pulls: collections.deque[Pull] = collections.deque()  # oldest first
        self.arrived: collections.deque[Msg] = collections.deque()  # in delivery order
        self.wake = asyncio.Event()
        self.reconnects = 0
        self.pin: str | None = None  # the server's Nats-Pin-Id while this client is pinned
        self.last_delivery: Sequence | None = None  # the last message taken
        # The last stream sequence this client committed and acked: messages up to it
        # that the stream still holds are decided (their acks are on their way).
        self.decided_through = 0
        self.reset_at = -RESET_PAUSE
        self.reset_due = False  # a reset is owed once RESET_PAUSE has passed
        self.missing = False  # the consumer was deleted: make it again
        self.standby_until = 0.0  # stepping back: no pulls before this (monotonic)
        self.unpin_wanted = False

    @property
    def pinned(self) -> bool:
        """Whether the server delivers this partition here now (as far as this client knows)."""
        return self.pin is not None

    async def start(self) -> None:
        """Make sure the shared consumer exists, and listen for what it delivers."""
        await self.ensure()
        self.inbox = self.nc.new_inbox()
        self.subscription = await self.nc.subscribe(f"{self.inbox}.*", cb=self._arrive)
        self.reconnects = self.nc.stats["reconnects"]

    async def ensure(self) -> None:
        """Create the partition's consumer unless a pinned one exists (another instance's)."""
        info = await jsapi.consumer_info(self.nc, self.stream, self.durable)
        if info is not None and jsapi.is_pinned_consumer(info.get("config", {}), GROUP):
            return
        # A work-queue stream takes one consumer per subject: one made by hand, or a
        # per-instance consumer of an earlier ctilink, would refuse ours.
        for other in await self.js.consumers_info(self.stream):
            if other.name == self.durable or other.config.filter_subject == self.subject:
                with contextlib.suppress(NotFoundError):
                    await self.js.delete_consumer(self.stream, other.name)
        try:
            await jsapi.create_pinned_consumer(
                self.nc,
                self.stream,
                self.durable,
                filter_subject=self.subject,
                group=GROUP,
                priority_timeout=self.priority_timeout,
                ack_wait=ACK_WAIT,
                max_ack_pending=MAX_ACK_PENDING,
            )
        except jsapi.ApiError:
            # Another instance made it a moment before: fine if it is one we can use.
            info = await jsapi.consumer_info(self.nc, self.stream, self.durable)
            if info is None or not jsapi.is_pinned_consumer(info.get("config", {}), GROUP):
                raise

    async def _arrive(self, msg: Msg) -> None:
        """Queue a delivered message; a status message (408, 409, 423…) ends its pull request."""
        if msg.reply:  # a stream message: its reply subject is its ack subject
            pin = msg.headers.get("Nats-Pin-Id") if msg.headers else None
            if pin is not None and pin != self.pin:
                self.pin = pin
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
        if status == "423":  # pinned elsewhere: pull as one of the others
            self.pin = None
        elif status == "503" or (status == "409" and "deleted" in reason.lower()):
            self.missing = True  # deleted (503: nobody answered, or a cluster electing)
        elif status not in (None, "404", "408") and "shutdown" not in reason.lower():
            # (A server shutting down is logged once, as the disconnection.)
            self.log(f"partition {self.partition}: pull request ended with {status} {reason}")
        self.wake.set()

    async def _pull(self) -> None:
        """Ask for more, so that up to two batches are on their way or waiting here."""
        if self.nc.stats["reconnects"] != self.reconnects:
            # Pull requests and messages on their way were lost with the connection:
            # the next batch is checked against the stream before it is decided.
            self.reconnects = self.nc.stats["reconnects"]
            self.pulls.clear()
            self.last_delivery = None
        now = time.monotonic()
        while self.pulls and self.pulls[0].deadline < now:  # never answered: lost
            self.pulls.popleft()
        if now < self.standby_until or not self.nc.is_connected:
            return
        promised = sum(pull.left for pull in self.pulls) + len(self.arrived)
        if promised > self.batch:
            return
        inbox = f"{self.inbox}.{next(self.requests)}"
        request: dict[str, Any] = {"batch": self.batch, "expires": int(EXPIRES * 1e9)}
        request["group"] = GROUP
        if self.pin is not None:
            request["id"] = self.pin
        self.pulls.append(Pull(inbox, self.batch, now + EXPIRES + 2.0))
        await self.nc.publish(self.next_subject, json.dumps(request).encode(), reply=inbox)

    async def run(self, stop: asyncio.Event) -> None:
        """Pull, decide and ack batches until stopped; the batch in hand is finished."""
        assert self.subscription is not None
        while not stop.is_set():
            try:
                if self.missing:
                    self.log(f"partition {self.partition}: its consumer is gone; making it again")
                    self.missing, self.pin, self.last_delivery = False, None, None
                    await self.ensure()
                if self.unpin_wanted and not self.pulls and not self.arrived:
                    await self._give_up_pin()
                await self._reset_when_due()
                await self._pull()
            except Exception as error:
                self.log(f"partition {self.partition}: waiting for NATS ({type(error).__name__})")
                await wait_or_stop(stop, 0.5)
                continue
            if not self.arrived:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=0.25)
                continue
            batch = unbroken(self.arrived, self.batch)
            with contextlib.suppress(Exception):  # the next batch comes while this one commits
                await self._pull()
            await self.handle(batch, stop)

    async def handle(self, batch: list[Msg], stop: asyncio.Event) -> None:
        """Decide one batch in stream order, commit its position with it, then ack it all."""
        first = sequence(batch[0])
        follows = self.last_delivery is not None and continues(self.last_delivery, first)
        if not follows and not await self._next_in_order(first.stream):
            await self._put_back_in_order()
            return
        self.last_delivery = sequence(batch[-1])
        source = self.source
        deliveries = [Delivery(msg.subject, msg.data, msg.reply, source) for msg in batch]
        committed = await self._ingest_when_stored(deliveries, stop)
        if committed is None:
            return  # stopped while the store was away: unacked, the batch comes again
        again = sum(outcome.outcome == "decided" for outcome in committed)
        if again:
            self.log(f"partition {self.partition}: {again} messages decided before came again")
        self.decided_through = max(self.decided_through, sequence(batch[-1]).stream)
        self.committed()
        # What msg.ack() sends for each, as one write.
        await publish_many(self.nc, ((msg.reply, ACK, "", None) for msg in batch))

    async def _next_in_order(self, first: int) -> bool:
        """Whether no message of the partition still in the stream is older than `first`."""
        # Deliveries that do not follow this client's last one: a new pin, a
        # reconnect, a reset, or another client served meanwhile. A work queue
        # keeps only what is unacked: an older message was delivered elsewhere.
        # Asked from past what this client decided: the server may not have taken
        # the acks just sent, and those messages must not look undecided.
        after = self.decided_through + 1 if self.decided_through < first else 1
        try:
            oldest = await self.js.get_msg(self.stream, seq=after, next=True, subject=self.subject)
        except NotFoundError:
            return True
        return (oldest.seq or 0) >= first

    async def _put_back_in_order(self) -> None:
        """Drop what came out of order and have the consumer deliver again from its ack floor."""
        self.arrived.clear()  # unacked: every message after the ack floor comes again
        self.last_delivery = None
        self.reset_due = True
        await self._reset_when_due()

    async def _reset_when_due(self) -> None:
        """Reset the consumer to its ack floor, at most once per RESET_PAUSE."""
        # Batches sent before a reset come in just after it; they are dropped, and
        # if older messages went elsewhere meanwhile (a puller that stopped with a
        # pull request still waiting), the next reset follows the pause.
        if not self.reset_due or time.monotonic() - self.reset_at < RESET_PAUSE:
            return
        self.reset_due, self.reset_at = False, time.monotonic()
        self.log(f"partition {self.partition}: older messages were still undelivered; resetting")
        try:
            await self.js.reset_consumer(self.stream, self.durable)
        except BaseException:
            self.reset_due = True  # not done: the next round tries again
            raise

    def step_back(self, seconds: float) -> None:
        """Let another instance hold this partition: stop pulling a while, then give up the pin."""
        self.standby_until = time.monotonic() + seconds
        self.unpin_wanted = True

    async def _give_up_pin(self) -> None:
        """Tell the server to pin the next puller (the batches in hand are finished)."""
        self.unpin_wanted = False
        if self.pin is not None:
            self.pin = None
            await jsapi.unpin(self.nc, self.stream, self.durable, GROUP)

    async def _ingest_when_stored(
        self, deliveries: list[Delivery], stop: asyncio.Event
    ) -> list[Outcome] | None:
        """Ingest, retrying while the store is away; None if stopped meanwhile."""
        waiting = False
        while True:
            try:
                outcomes = await self.ingestor.ingest(deliveries)  # type: ignore[arg-type]
            except STORE_AWAY as error:
                if not waiting:
                    reason = first_line(error)
                    self.log(f"partition {self.partition}: waiting for the store: {reason}")
                    waiting = True
                await wait_or_stop(stop, STORE_RETRY_SECONDS)
                if stop.is_set():
                    return None
                continue
            if waiting:
                self.log(f"partition {self.partition}: the store is back")
            return outcomes

    async def close(self) -> None:
        """Unsubscribe, so that draining the connection does not hang on the pull inbox."""
        if self.subscription is not None:
            await self.subscription.unsubscribe()
            self.subscription = None
