"""Under `serve --http`: the rejections as they are published, a live tail for the console."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import msgspec

from ctilink.adapters.nats.wire import RejectionMessage

KEPT = 200  # the latest rejections the page shows
SUBJECT = "ctilink.rejected.>"
_decode = msgspec.json.Decoder(RejectionMessage).decode


class Seen(msgspec.Struct, frozen=True):
    """One rejection as the tail saw it go out."""

    seen: datetime
    network: str
    code: str
    message: str
    payload: str


class RejectionTail:
    """The latest rejections on `ctilink.rejected.>`, and a wake-up for the pages showing them."""

    def __init__(self) -> None:
        self.latest: deque[Seen] = deque(maxlen=KEPT)
        self.count = 0  # rejections seen since the start
        self._wake = asyncio.Condition()
        self._subscription: Any = None
        self._closed = False

    def close(self) -> None:
        """End every stream (the console is stopping)."""
        self._closed = True
        asyncio.get_running_loop().create_task(self._wake_all())

    async def _wake_all(self) -> None:
        async with self._wake:
            self._wake.notify_all()

    async def start(self, nc: Any) -> None:
        """Subscribe (core NATS: what is published from now on)."""
        self._subscription = await nc.subscribe(SUBJECT, cb=self._on_message)

    async def stop(self) -> None:
        """Unsubscribe."""
        if self._subscription is not None:
            await self._subscription.unsubscribe()

    async def _on_message(self, msg: Any) -> None:
        try:
            rejection = _decode(msg.data)
        except (msgspec.DecodeError, UnicodeDecodeError):
            return  # not ours to show
        network = msg.subject.split(".", 2)[2] if msg.subject.count(".") >= 2 else ""
        self.latest.appendleft(
            Seen(datetime.now(UTC), network, rejection.code, rejection.message, rejection.payload)
        )
        async with self._wake:
            self.count += 1
            self._wake.notify_all()

    async def changes(self) -> AsyncIterator[str]:
        """Server-sent events: `change` after each rejection seen."""
        seen = self.count
        yield "retry: 1000\n\n"
        while not self._closed:
            async with self._wake:
                try:
                    await asyncio.wait_for(self._wake.wait_for(self._after(seen)), 15)
                except TimeoutError:
                    yield ": still here\n\n"
                    continue
                seen = self.count
            if self._closed:
                return
            yield f"event: change\ndata: {seen}\n\n"

    def _after(self, seen: int) -> Any:
        """Whether a rejection came after the count seen."""
        return lambda: self.count != seen or self._closed
