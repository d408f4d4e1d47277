"""Under `serve --http`: the rejections as they are published, a live tail for the console.

The subscription's callback runs on the service's loop and only keeps the
message (the latest KEPT at most) and wakes the console's loop, once however
many arrive meanwhile; the console's loop decodes them and tells its pages.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import msgspec

from ctilink.adapters.nats.wire import RejectionMessage
from ctilink.adapters.web.live import Broadcast

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


class RejectionTail(Broadcast):
    """The latest rejections on `ctilink.rejected.>`, and a wake-up for the pages showing them."""

    def __init__(self) -> None:
        super().__init__()  # its generation counts the rejections seen since the start
        self.latest: deque[Seen] = deque(maxlen=KEPT)
        self.home: asyncio.AbstractEventLoop | None = None  # the console's loop
        self._subscription: Any = None
        self._inbox: deque[tuple[datetime, str, bytes]] = deque(maxlen=KEPT)
        self._arrived = 0  # rejections received and not yet told
        self._lock = threading.Lock()
        self._waking = False
        self._telling: set[asyncio.Task[None]] = set()

    async def start(self, nc: Any, home: asyncio.AbstractEventLoop | None = None) -> None:
        """Subscribe (core NATS: what is published from now on); pages are told on `home`
        (the console's loop; default: this one)."""
        self.home = home or asyncio.get_running_loop()
        self._subscription = await nc.subscribe(SUBJECT, cb=self._on_message)

    async def stop(self) -> None:
        """Unsubscribe."""
        if self._subscription is not None:
            await self._subscription.unsubscribe()

    async def _on_message(self, msg: Any) -> None:
        """On the service's loop: keep the message, wake the console's loop once."""
        with self._lock:
            self._inbox.append((datetime.now(UTC), msg.subject, msg.data))
            self._arrived += 1
            if self._waking:
                return
            self._waking = True
        assert self.home is not None
        with contextlib.suppress(RuntimeError):  # the console's loop has ended
            self.home.call_soon_threadsafe(self._take)

    def _take(self) -> None:
        """On the console's loop: what arrived, decoded and told to the pages."""
        with self._lock:
            arrived, self._arrived = self._arrived, 0
            inbox = list(self._inbox)
            self._inbox.clear()
            self._waking = False
        seen = [found for found in (_seen(*item) for item in inbox) if found is not None]
        assert self.home is not None
        task = self.home.create_task(self.tell(lambda: self.latest.extendleft(seen), by=arrived))
        self._telling.add(task)  # held until done: the loop keeps only a weak reference
        task.add_done_callback(self._telling.discard)

    def changes(self) -> AsyncIterator[str]:
        """Server-sent events: `change` after each rejection seen."""
        return self.events()


def _seen(at: datetime, subject: str, data: bytes) -> Seen | None:
    """One rejection as published, or None if it is not one."""
    try:
        rejection = _decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None  # not ours to show
    network = subject.split(".", 2)[2] if subject.count(".") >= 2 else ""
    return Seen(at, network, rejection.code, rejection.message, rejection.payload)
