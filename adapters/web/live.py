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


class Broadcast:
    """Changes counted and told to every waiting page as server-sent events; an end for all."""

    def __init__(self) -> None:
        self.generation = 0  # counts the changes told
        self.closed = False  # the console is stopping: streams end
        self._wake = asyncio.Condition()

    async def tell(self, note: Callable[[], None] = lambda: None, by: int = 1) -> None:
        """One more change, or `by` more (`note` records what, under the same lock)."""
        async with self._wake:
            self.generation += by
            note()
            self._wake.notify_all()

    def close(self) -> None:
        """End every stream (browsers reconnect to the next console)."""
        self.closed = True
        with contextlib.suppress(RuntimeError):  # no loop: no stream to end
            asyncio.get_running_loop().create_task(self._wake_all())

    async def _wake_all(self) -> None:
        async with self._wake:
            self._wake.notify_all()

    def _moved_past(self, seen: int) -> Callable[[], bool]:
        """Whether a change came after the one seen (or the console is stopping)."""
        return lambda: self.generation != seen or self.closed

    async def events(
        self, since: int | None = None, wanted: Callable[[], bool] = lambda: True
    ) -> AsyncIterator[str]:
        """`change` after each change that is `wanted` (asked right after it, under the lock).

        `since`: the generation a page was read at; a change in between (while
        the page loaded) is told at once.
        """
        seen = self.generation
        yield "retry: 1000\n\n"  # reconnect a dropped stream after a second
        if since is not None and since != seen:
            yield f"event: change\ndata: {seen}\n\n"
        while not self.closed:
            async with self._wake:
                try:
                    await asyncio.wait_for(self._wake.wait_for(self._moved_past(seen)), KEEPALIVE)
                except TimeoutError:
                    yield ": still here\n\n"
                    continue
                seen, told = self.generation, wanted()
            if self.closed:
                return
            if told:
                yield f"event: change\ndata: {seen}\n\n"


class Watcher(Broadcast):
    """Which networks changed since the last look, told to every waiting page."""

    def __init__(self, recorder: Any, every: float = POLL) -> None:
        super().__init__()
        self.recorder = recorder
        self.every = every
        self.changed: frozenset[str] = frozenset()  # the networks of the latest change
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
            await self.tell(lambda names=names: setattr(self, "changed", frozenset(names)))

    def _top(self) -> int:
        """The store's latest notification id."""
        return int(self.recorder.max_notification_id() or 0)

    def changes(self, network: str | None, since: int | None = None) -> AsyncIterator[str]:
        """Server-sent events for one page: `change` when its network (None: any) changes."""
        return self.events(since, lambda: network is None or network in self.changed)
