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
        self._closed = False  # the console is stopping: streams end

    def start(self) -> None:
        """Start looking (on the running event loop)."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    def close(self) -> None:
        """End every stream (the console is stopping; browsers reconnect to the next)."""
        self._closed = True
        if self._task is not None:
            asyncio.get_running_loop().create_task(self._wake_all())

    async def _wake_all(self) -> None:
        async with self._wake:
            self._wake.notify_all()

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
        """Whether a change came after the one seen (or the console is stopping)."""
        return lambda: self.generation != seen or self._closed

    def _top(self) -> int:
        """The store's latest notification id."""
        return int(self.recorder.max_notification_id() or 0)

    async def changes(self, network: str | None, since: int | None = None) -> AsyncIterator[str]:
        """Server-sent events for one page: `change` when its network (None: any) changes.

        `since`: the generation the page was read at; a change in between (while
        the page loaded) is told at once.
        """
        seen = self.generation
        yield "retry: 1000\n\n"  # reconnect a dropped stream after a second
        if since is not None and since != seen:
            yield f"event: change\ndata: {seen}\n\n"
        while not self._closed:
            async with self._wake:
                try:
                    moved = self._moved_past(seen)
                    await asyncio.wait_for(self._wake.wait_for(moved), KEEPALIVE)
                except TimeoutError:
                    yield ": still here\n\n"
                    continue
                seen, changed = self.generation, self.changed
            if self._closed:
                return
            if network is None or network in changed:
                yield f"event: change\ndata: {seen}\n\n"
