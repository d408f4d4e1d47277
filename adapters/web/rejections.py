"""Under `serve --http`: the rejections as they are published, a live tail for the console."""

from __future__ import annotations

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
        self._subscription: Any = None

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
        seen = Seen(
            datetime.now(UTC), network, rejection.code, rejection.message, rejection.payload
        )
        await self.tell(lambda: self.latest.appendleft(seen))

    def changes(self) -> AsyncIterator[str]:
        """Server-sent events: `change` after each rejection seen."""
        return self.events()
