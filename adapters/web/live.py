"""Live pages: one watcher polls the store for commits; each open page hears of its network's.

Whoever commits (another `ctilink ingest`, the NATS consumer, another instance
on PostgreSQL), the store's notification id moves: the watcher reads which
networks changed, every POLL seconds, once for all the pages open, and each
page's server-sent event stream says `change` when its own network (or, for
the overview, any network) did. The page then fetches itself again and swaps
in what changed (static/console.js). Rejections are kept in a table of their
own, which moves no notification id: the watcher looks at its newest id too,
and the rejections page hears of its filter's network (or of any).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from ctilink.adapters.store.queries.log import networks_changed
from ctilink.adapters.web.rejections import rejected_in, rejection_top

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
        self.rejected: frozenset[str | None] = frozenset()  # networks rejected in it
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
        last_rejection = await asyncio.to_thread(self._rejection_top)
        while True:
            await asyncio.sleep(self.every)
            try:
                top = await asyncio.to_thread(self._top)
                names: set[str] = set()
                if top > last:
                    names = await asyncio.to_thread(networks_changed, self.recorder, last, top)
            except Exception:  # the store is away: pages keep what they show, and ask later
                continue
            rejection, rejected = await asyncio.to_thread(self._rejected, last_rejection)
            last, last_rejection = max(top, last), rejection
            if names or rejected:
                await self.tell(lambda n=names, r=rejected: self._note(n, r))

    def _note(self, names: set[str], rejected: set[str | None]) -> None:
        self.changed, self.rejected = frozenset(names), frozenset(rejected)

    def _top(self) -> int:
        """The store's latest notification id."""
        return int(self.recorder.max_notification_id() or 0)

    def _rejection_top(self) -> int:
        """The newest rejection's id (0: none, or a store from before they were kept)."""
        try:
            return rejection_top(self.recorder)
        except Exception:
            return 0

    def _rejected(self, last: int) -> tuple[int, set[str | None]]:
        """The newest rejection's id, and the networks rejected after `last` up to it."""
        top = self._rejection_top()
        if top <= last:
            return last, set()
        try:
            return top, rejected_in(self.recorder, last, top)
        except Exception:  # asked again at the next look
            return last, set()

    def changes(self, network: str | None, since: int | None = None) -> AsyncIterator[str]:
        """Server-sent events for one page: `change` when its network (None: any) changes."""
        return self.events(since, lambda: bool(self.changed) and self._names(network, self.changed))

    def rejections(self, network: str | None, since: int | None = None) -> AsyncIterator[str]:
        """Server-sent events for the rejections page: `change` at a rejection it shows."""
        return self.events(
            since, lambda: bool(self.rejected) and self._names(network, self.rejected)
        )

    @staticmethod
    def _names(network: str | None, names: frozenset[Any]) -> bool:
        return network is None or network in names
