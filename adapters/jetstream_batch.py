"""Publish many messages to JetStream and wait until each is stored (or deduplicated)."""

from __future__ import annotations

import asyncio
import itertools

from nats.aio.client import Client
from nats.aio.msg import Msg


class PublishFailed(RuntimeError):
    """JetStream refused a message, or did not acknowledge it in time."""


class BatchPublisher:
    """Like js.publish_async for a whole batch, at a fraction of the cost per message."""

    # publish_async spends more per message on its stall semaphore, its wait_for
    # task and a random token than on publishing; one inbox and a counter will do.

    def __init__(self, nc: Client) -> None:
        self.nc = nc
        self.prefix = nc.new_inbox()
        self.batches = itertools.count()
        self.batch = ""
        self.outstanding: set[str] = set()
        self.refused: list[str] = []
        self.done = asyncio.Event()

    async def start(self) -> None:
        """Listen for the acknowledgements."""
        await self.nc.subscribe(f"{self.prefix}.>", cb=self._acknowledged)

    async def publish(self, messages: list[tuple[str, bytes, str]], timeout: float) -> None:
        """Publish (subject, payload, Nats-Msg-Id) triples; return once all are stored."""
        if not messages:
            return
        self.batch = f"{self.prefix}.{next(self.batches)}."
        self.outstanding = {str(i) for i in range(len(messages))}
        self.refused = []
        self.done.clear()
        for i, (subject, payload, msg_id) in enumerate(messages):
            await self.nc.publish(
                subject, payload, reply=f"{self.batch}{i}", headers={"Nats-Msg-Id": msg_id}
            )
        try:
            await asyncio.wait_for(self.done.wait(), timeout)
        except TimeoutError:
            raise PublishFailed(
                f"{len(self.outstanding)} of {len(messages)} messages not acknowledged "
                f"within {timeout:.0f} s"
            ) from None
        if self.refused:
            raise PublishFailed(f"JetStream refused a message: {self.refused[0]}")

    async def _acknowledged(self, msg: Msg) -> None:
        """Count one acknowledgement of the current batch (late ones of old batches are moot)."""
        if not msg.subject.startswith(self.batch):
            return
        index = msg.subject[len(self.batch) :]
        if index not in self.outstanding:
            return
        if b'"error"' in msg.data:
            self.refused.append(msg.data.decode(errors="replace"))
        self.outstanding.discard(index)
        if not self.outstanding:
            self.done.set()
