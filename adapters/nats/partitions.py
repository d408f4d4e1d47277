"""This instance's fair share of the inbound partitions, each consumed by one instance."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from typing import Protocol

from ctilink.adapters.store.roles import Roles, partition_role
from ctilink.adapters.store.waiting import first_line, wait_or_stop

CHECK_SECONDS = 1.0


class Worker(Protocol):
    """Consumes one partition until told to stop."""

    async def run(self, stop: asyncio.Event) -> None:
        """Apply and ack batches until `stop`; the batch in hand is finished."""
        ...

    async def close(self) -> None:
        """Let go of the partition's subscription."""
        ...


class Owned:
    """A partition this instance consumes: its worker, task and stop signal."""

    __slots__ = ("stop", "task", "worker")

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.stop = asyncio.Event()
        self.task = asyncio.ensure_future(worker.run(self.stop))


class Partitions:
    """Takes free partitions up to a fair share, gives back the rest, follows lost roles."""

    def __init__(
        self,
        roles: Roles,
        count: int,
        start: Callable[[int], Awaitable[Worker]],
        log: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.roles = roles
        self.count = count
        self.start = start  # makes a partition's worker, ready to run
        self.log = log
        self.owned: dict[int, Owned] = {}
        self.rounds = 0  # balancing rounds done: after the first, the share is settled
        # Instances that start together try partitions in different orders.
        offset = random.randrange(count)
        self.order = [(offset + n) % count for n in range(count)]

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the share until `stop`, then finish and give back every partition."""
        try:
            while not stop.is_set():
                await self.balance()
                await wait_or_stop(stop, CHECK_SECONDS)
        finally:
            await self.release(*sorted(self.owned))

    async def balance(self) -> None:
        """One round: drop lost partitions, give back extras, take free ones."""
        for partition, owned in list(self.owned.items()):
            if owned.task.done():  # it failed: a fresh consumer redelivers what is unacked
                await self.release(partition)
                continue
            if not await asyncio.to_thread(self.roles.holds, partition_role(partition)):
                self.log(f"partition {partition}: role lost, stopping its consumer")
                await self.release(partition)
        members = await asyncio.to_thread(self.roles.members)
        share = math.ceil(self.count / members)
        await self.release(*sorted(self.owned, reverse=True)[: max(0, len(self.owned) - share)])
        for partition in self.order:
            if len(self.owned) >= share:
                break
            if partition in self.owned:
                continue
            if not await asyncio.to_thread(self.roles.take, partition_role(partition)):
                continue
            try:
                self.owned[partition] = Owned(await self.start(partition))
            except Exception as error:  # NATS away: give it back, try again next round
                self.log(f"partition {partition}: cannot start its consumer ({error!r})")
                await asyncio.to_thread(self.roles.give_up, partition_role(partition))
        self.log_share()
        self.rounds += 1

    async def release(self, *partitions: int) -> None:
        """Finish the batches in hand, ack them, then let other instances have the partitions."""
        leaving = [(partition, self.owned.pop(partition)) for partition in partitions]
        for _, owned in leaving:  # all at once: each may wait for a commit
            owned.stop.set()
        for partition, owned in leaving:  # each given back whatever became of the others
            try:
                await owned.task
            except Exception as error:
                self.log(f"partition {partition}: its consumer failed: {first_line(error)}")
            try:
                await owned.worker.close()
            except Exception as error:  # NATS away: the subscription went with it
                self.log(f"partition {partition}: closing its consumer: {first_line(error)}")
            await asyncio.to_thread(self.roles.give_up, partition_role(partition))

    def log_share(self) -> None:
        """One log line whenever the set of owned partitions changes."""
        now = sorted(self.owned)
        if now != getattr(self, "_logged", None):
            self._logged = now
            self.log(f"consuming partitions {now or 'none'} of {self.count}")
