"""One writer per process: the batches of every partition's consumer, committed together."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from ctilink.adapters.nats.consumer import Delivery
from ctilink.adapters.ops.metrics import source_kind
from ctilink.domain import messages as m
from ctilink.domain.application import NetworkService
from ctilink.domain.arrivals import Arrival
from ctilink.domain.decision import Outcome

Item = m.Message | Arrival | Delivery


def resolved(items: list[Item]) -> list[m.Message | Arrival]:
    """Arrivals and events as given; NATS deliveries decoded (in the committing thread)."""
    return [item.arrival() if isinstance(item, Delivery) else item for item in items]


class Ingestor:
    """Applies events for every consumer of this process, one commit at a time."""

    def __init__(self, service: NetworkService, metrics: Any = None, writer: Any = None) -> None:
        self.service = service
        self.metrics = metrics  # adapters/ops/metrics.py, when serving metrics
        # adapters/nats/writer.py: commits in a process of its own (None: in a thread here).
        self.writer = writer
        self.committing_since: float | None = None  # monotonic time the commit in hand began
        self.waiting: list[tuple[list[Item], asyncio.Future[list[Outcome]]]] = []
        self.committer: asyncio.Task[None] | None = None  # the single writer of this process

    async def ingest(self, items: list[Item]) -> list[Outcome]:
        """Decode, apply and commit in a worker thread, so the event loop stays free."""
        # Batches that arrive while a commit runs go together in the next one:
        # the partitions' consumers share a transaction rather than queue for one.
        future: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        self.waiting.append((items, future))
        if self.committer is None or self.committer.done():
            self.committer = asyncio.ensure_future(self._commit_waiting())
        # A caller that is cancelled leaves the commit running: it cannot be
        # stopped halfway, and a second one must not start beside it.
        return await future

    def _commit(self, items: list[Item]) -> tuple[list[str], list[Outcome]]:
        """Decode and ingest, in the writer process or in this thread; sources' kinds and
        outcomes."""
        if self.writer is not None:
            return self.writer.commit(items)
        arrivals = resolved(items)
        return [source_kind(a) for a in arrivals], self.service.ingest(arrivals)

    async def _commit_waiting(self) -> None:
        """Commit the waiting batches, together, until none wait; each caller gets its own."""
        while self.waiting:
            group, self.waiting = self.waiting, []
            together = [item for items, _ in group for item in items]
            started = time.perf_counter()
            self.committing_since = time.monotonic()
            try:
                kinds, outcomes = await asyncio.to_thread(self._commit, together)
            except Exception as error:
                self.committing_since = None
                for _, future in group:
                    if not future.done():
                        future.set_exception(error)
                continue
            self.committing_since = None
            if self.metrics is not None:
                self.metrics.batch_seconds.observe(time.perf_counter() - started)
                self.metrics.count(kinds, outcomes)
            start = 0
            for items, future in group:
                if not future.done():  # a cancelled caller's batch is committed all the same
                    future.set_result(outcomes[start : start + len(items)])
                start += len(items)

    async def close(self) -> None:
        """Wait for the commit in progress, if any (before the store is closed)."""
        if self.committer is not None:
            with contextlib.suppress(Exception):
                await self.committer
