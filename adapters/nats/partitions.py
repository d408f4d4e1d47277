"""Every inbound partition pulled by this instance; the NATS server pins one puller each.

Each instance runs a consumer for every partition (consumer.py). The server
delivers a partition to one pinned client at a time, so correctness never
depends on counting instances; counting only spreads the work: an instance
pinned on more than its fair share steps back from the extras, and the server
pins another instance's waiting pull.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import msgspec
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from ctilink.adapters.nats import jsapi
from ctilink.adapters.nats.consumer import PRIORITY_TIMEOUT, PartitionConsumer, consumer_name
from ctilink.adapters.nats.streams import IN_STREAM, partition_subject
from ctilink.adapters.store.coordination.waiting import first_line, wait_or_stop

CHECK_SECONDS = 1.0
BALANCE_SECONDS = 2.0  # how often the share is looked at (a $SRV.PING and a count)


class Running:
    """A partition's consumer on this instance: its task and stop signal."""

    __slots__ = ("consumer", "stop", "task")

    def __init__(self, consumer: PartitionConsumer) -> None:
        self.consumer = consumer
        self.stop = asyncio.Event()
        self.task = asyncio.ensure_future(consumer.run(self.stop))


class Partitions:
    """Runs a consumer for every partition, starts again any that ends, keeps a fair share."""

    def __init__(
        self,
        count: int,
        start: Callable[[int], Awaitable[PartitionConsumer]],
        instances: Callable[[], Awaitable[int]],
        log: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.count = count
        self.start = start  # makes a partition's consumer, ready to run
        self.instances = instances  # how many instances pull (this one included)
        self.log = log
        self.running: dict[int, Running] = {}
        self.rounds = 0  # supervision rounds done: after the first, every consumer started
        self.metadata: dict[str, str] = {}  # the micro service's: it shows what is held
        self.started = asyncio.Event()  # set once every partition's consumer runs

    @property
    def held(self) -> list[int]:
        """The partitions the server delivers here now."""
        return sorted(p for p, r in self.running.items() if r.consumer.pinned)

    @property
    def pulling(self) -> bool:
        """Whether this instance pulls every partition (one that failed is started again)."""
        return len(self.running) == self.count and not any(
            r.task.done() for r in self.running.values()
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Keep every partition pulled until `stop`, then finish the batches in hand."""
        since_balance = 0.0
        try:
            while not stop.is_set():
                await self.supervise()
                since_balance += CHECK_SECONDS
                if since_balance >= BALANCE_SECONDS:
                    since_balance = 0.0
                    await self.balance()
                await wait_or_stop(stop, CHECK_SECONDS)
        finally:
            await self.release(*sorted(self.running))

    async def supervise(self) -> None:
        """Start the consumers that are not running (at first, or after one failed)."""
        for partition, running in list(self.running.items()):
            if running.task.done():  # it failed: its unacked messages come again
                await self.release(partition)
        for partition in range(self.count):
            if partition in self.running:
                continue
            try:
                self.running[partition] = Running(await self.start(partition))
            except Exception as error:  # NATS away: try again next round
                self.log(f"partition {partition}: cannot start its consumer ({first_line(error)})")
        self.log_share()
        self.rounds += 1
        if self.pulling:
            self.started.set()

    async def balance(self) -> None:
        """Step back from pins beyond a fair share, so that the others take them."""
        try:
            instances = await self.instances()
        except Exception:  # NATS away: nothing to balance now
            return
        share = math.ceil(self.count / max(1, instances))
        extra = self.held[share:]
        for partition in extra:
            self.running[partition].consumer.step_back(2 * PRIORITY_TIMEOUT)
        if extra:
            self.log(f"stepping back from partitions {extra}: {instances} instances share them")

    async def release(self, *partitions: int) -> None:
        """Finish the batches in hand, ack them, and stop pulling these partitions."""
        leaving = [(partition, self.running.pop(partition)) for partition in partitions]
        for _, running in leaving:  # all at once: each may wait for a commit
            running.stop.set()
        for partition, running in leaving:
            try:
                await running.task
            except Exception as error:
                self.log(f"partition {partition}: its consumer failed: {first_line(error)}")
            try:
                await running.consumer.close()
            except Exception as error:  # NATS away: the subscription went with it
                self.log(f"partition {partition}: closing its consumer: {first_line(error)}")

    def log_share(self) -> None:
        """One log line whenever the set of partitions pinned here changes."""
        now = self.held
        if now != getattr(self, "_logged", None):
            self._logged = now
            self.metadata["partitions_held"] = ",".join(map(str, now))
            self.log(f"pinned on partitions {now or 'none'} of {self.count}")


class PartitionState(msgspec.Struct, frozen=True):
    """What the stream and its consumer say of one partition, cluster-wide."""

    partition: int
    consumed: bool  # some instance pulls it (a consumer exists, pinned or with pulls waiting)
    pending: int  # messages not yet delivered, or delivered and not yet acked
    oldest_seconds: float  # age of the oldest message still in the stream (0: none)


async def survey(nc: Client, count: int, stream: str = IN_STREAM) -> list[PartitionState]:
    """Every partition's state, asked of the NATS server (not of this instance's view)."""
    js = nc.jetstream()

    async def one(partition: int) -> PartitionState:
        info = await jsapi.consumer_info(nc, stream, consumer_name(partition))
        oldest = 0.0
        with contextlib.suppress(NotFoundError):
            first = await js.get_msg(stream, seq=1, next=True, subject=partition_subject(partition))
            if first.time is not None:
                oldest = max(0.0, (datetime.now(UTC) - first.time).total_seconds())
        if info is None:
            return PartitionState(partition, False, 0, oldest)
        pinned = any(g.get("pinned_client_id") for g in info.get("priority_groups") or [])
        pending = int(info.get("num_pending") or 0) + int(info.get("num_ack_pending") or 0)
        return PartitionState(partition, pinned or bool(info.get("num_waiting")), pending, oldest)

    return list(await asyncio.gather(*(one(p) for p in range(count))))
