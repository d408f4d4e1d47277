"""Live pages: one watcher polls the store for commits; each open page hears of its network's.

Whoever commits (another `ctilink ingest`, the NATS consumer, another instance
on PostgreSQL), the store's notification id moves: the watcher reads which
networks changed, every POLL seconds, once for all the pages open, and each
page's server-sent event stream says `change` when its own network (or, for
the overview, any network) did. The page then fetches itself again and swaps
in what changed (static/console.js).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

POLL = 0.2  # seconds between looks at the store
KEEPALIVE = 15.0  # seconds between comments on a quiet stream (proxies close idle ones)


class Watcher:
    """Which networks changed since the last look, told to every waiting page."""

    def __init__(self, recorder: Any, every: float = POLL) -> None:
        self.recorder = recorder
        self.every = every
        self.generation = 0  # counts the looks that found a change
        self.changed: frozenset[str] = frozenset()  # the networks of the latest change
        self._wake = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start looking (on the running event loop)."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop looking."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        last = await asyncio.to_thread(self._top)
        while True:
            await asyncio.sleep(self.every)
            try:
                top = await asyncio.to_thread(self._top)
                if top <= last:
                    continue
                names = await asyncio.to_thread(self.recorder.networks_changed, last, top)
            except Exception:  # the store is away: pages keep what they show, and ask later
                continue
            last = top
            async with self._wake:
                self.generation += 1
                self.changed = frozenset(names)
                self._wake.notify_all()

    def _moved_past(self, seen: int) -> Callable[[], bool]:
        """Whether a change came after the one seen."""
        return lambda: self.generation != seen

    def _top(self) -> int:
        """The store's latest notification id."""
        return int(self.recorder.max_notification_id() or 0)

    async def changes(self, network: str | None) -> AsyncIterator[str]:
        """Server-sent events for one page: `change` when its network (None: any) changes."""
        seen = self.generation
        yield "retry: 1000\n\n"  # reconnect a dropped stream after a second
        while True:
            async with self._wake:
                try:
                    moved = self._moved_past(seen)
                    await asyncio.wait_for(self._wake.wait_for(moved), KEEPALIVE)
                except TimeoutError:
                    yield ": still here\n\n"
                    continue
                seen, changed = self.generation, self.changed
            if network is None or network in changed:
                yield f"event: change\ndata: {seen}\n\n"
