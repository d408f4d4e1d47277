"""Consumes CTILINK_IN: apply, commit, publish rejections, then ack."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import time
from collections.abc import Awaitable, Callable

import msgspec
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from adapters.ingest import MAX_LINE_BYTES, explain
from adapters.jetstream_batch import publish_many
from adapters.streams import IN_STREAM, network_of
from adapters.waiting import STORE_AWAY, STORE_RETRY_SECONDS, first_line, wait_or_stop
from adapters.wire import Rejection, encode
from domain import messages as m
from domain.service import NetworkService, Outcome

DURABLE = "ctilink"
SUBJECT = "ctilink.in.*"
FETCH = 1000  # at most this many messages are applied and committed together
EXPIRES = 1.0  # seconds a pull request waits on the server for messages
ACK = b"+ACK"


class Ingestor:
    """Applies events for every consumer of this process, one commit at a time."""

    def __init__(self, service: NetworkService) -> None:
        self.service = service
        self.lock = asyncio.Lock()  # one commit at a time: the single writer of this process
        self.waiting: list[tuple[list[m.Message], asyncio.Future[list[Outcome]]]] = []

    async def ingest(self, messages: list[m.Message]) -> list[Outcome]:
        """Apply and commit in a worker thread, so queries keep being answered."""
        # Batches that arrive while a commit runs go together in the next one:
        # the partitions' consumers share a transaction rather than queue for one.
        future: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        self.waiting.append((messages, future))
        async with self.lock:
            if not future.done():
                await self._commit_waiting()
        return await future

    async def _commit_waiting(self) -> None:
        """Commit every waiting batch together; each caller gets its own outcomes."""
        group, self.waiting = self.waiting, []
        together = [message for messages, _ in group for message in messages]
        try:
            outcomes = await asyncio.to_thread(self.service.ingest, together)
        except BaseException as error:
            # Every caller hears of it (a cancelled commit may have landed: the
            # callers do not ack, and what comes again is a duplicate).
            failure = error if isinstance(error, Exception) else RuntimeError("commit interrupted")
            for _, future in group:
                future.set_exception(failure)
            if not isinstance(error, Exception):
                raise
            return
        start = 0
        for messages, future in group:
            future.set_result(outcomes[start : start + len(messages)])
            start += len(messages)


def check(msg: Msg) -> m.Message | Rejection:
    """Decode one inbound message, or the `invalid` rejection that says why not (I1)."""
    data = msg.data
    if len(data) > MAX_LINE_BYTES:
        text = data[:1024].decode("utf-8", "replace")
        return Rejection("invalid", f"event is longer than {MAX_LINE_BYTES} bytes", text)
    try:
        message = m.decode(data)
    except msgspec.DecodeError as error:
        return Rejection("invalid", explain(error), data.decode("utf-8", "replace"))
    token = network_of(msg.subject)
    if message.network != token:
        return Rejection(
            "invalid",
            f"field `network`: {message.network!r} differs from the subject's network {token!r}",
            data.decode("utf-8", "replace"),
        )
    return message


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
        js: JetStreamContext,
        committed: Callable[[], None],
        log: Callable[[str], None] = lambda _: None,
        *,
        stream: str = IN_STREAM,
        durable: str = DURABLE,
        subject: str = SUBJECT,
        batch: int = FETCH,
    ) -> None:
        self.ingestor = ingestor
        self.js = js
        self.nc = js._nc  # the connection the JetStream context uses
        self.committed = committed
        self.log = log
        self.stream, self.durable, self.subject, self.batch = stream, durable, subject, batch
        prefix = getattr(js, "_prefix", "$JS.API")
        self.next_subject = f"{prefix}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self.subscription = None
        self.inbox = ""
        self.requests = itertools.count()
        self.pulls: collections.deque[Pull] = collections.deque()  # oldest first
        self.arrived: collections.deque[Msg] = collections.deque()  # in stream order
        self.wake = asyncio.Event()
        self.reconnects = 0

    async def start(self) -> None:
        """Create the durable consumer afresh, so what a crashed run left unacked comes first."""
        # CTILINK_IN is a work queue: what was acked is gone, what was not is still
        # there. A new consumer delivers it at once and in order; the old one would
        # hold it back until ack_wait ran out and deliver newer events first (I4).
        with contextlib.suppress(NotFoundError):
            await self.js.delete_consumer(self.stream, self.durable)
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
        if status not in (None, "404", "408"):
            # 503: nobody answers for the consumer (deleted: another instance took it over).
            described = (msg.headers or {}).get("Description", "").strip().splitlines()
            reason = "no responders" if status == "503" else (described or [""])[0]
            self.log(f"consumer {self.durable}: pull request ended with {status} {reason}".rstrip())
        self.wake.set()

    async def _pull(self) -> None:
        """Ask for more, so that up to two batches are on their way or waiting here."""
        if self.nc.stats["reconnects"] != self.reconnects:
            # Pull requests do not outlive the connection they were sent on.
            self.reconnects = self.nc.stats["reconnects"]
            self.pulls.clear()
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
        """Apply one batch: commit, publish rejections, then ack every message."""
        checked = [check(msg) for msg in batch]
        valid = [c for c in checked if not isinstance(c, Rejection)]
        committed = await self._ingest_when_stored(valid, stop)
        if committed is None:
            return  # stopped while the store was away: unacked, the batch comes again
        outcomes = iter(committed)
        rejections: list[Awaitable[object]] = []
        for msg, item in zip(batch, checked, strict=True):
            if not isinstance(item, Rejection):
                outcome = next(outcomes)
                if outcome.outcome != "rejected":
                    continue
                item = Rejection(outcome.code or "", outcome.message or "", msg.data.decode())
            token = network_of(msg.subject)
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
        # What msg.ack() sends for each, as one write.
        await publish_many(self.nc, ((msg.reply, ACK, "", None) for msg in batch))

    async def _ingest_when_stored(
        self, messages: list[m.Message], stop: asyncio.Event
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
                if stop.is_set():
                    return None
                await wait_or_stop(stop, STORE_RETRY_SECONDS)
                continue
            if waiting:
                self.log("consumer: the store is back")
            return outcomes

    async def close(self) -> None:
        """Unsubscribe, so that draining the connection does not hang on the pull inbox."""
        if self.subscription is not None:
            await self.subscription.unsubscribe()
            self.subscription = None
