"""An event loop on a thread of its own, and calls between it and the loop that made it.

`serve` answers queries on such a loop: the consumers' loop handles thousands of
inbound messages a second, and a query waiting in its queue behind them would
wait for all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any


class LoopThread:
    """A thread running an event loop until stopped; coroutines are sent to it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        """Start the thread and its loop; return once the loop runs."""
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        await asyncio.to_thread(self._started.wait)

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.call_soon(self._started.set)
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    async def call(self, work: Coroutine[Any, Any, Any]) -> Any:
        """Run a coroutine on the thread's loop; its result, here."""
        assert self.loop is not None
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self.loop))

    async def stop(self) -> None:
        """Stop the loop (what it runs has been finished by then) and wait for the thread."""
        if self.loop is not None:
            with contextlib.suppress(RuntimeError):  # closed already
                self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10)


class OnLoop:
    """Calls an object's coroutine methods on the loop it belongs to, from any other."""

    def __init__(self, target: Any, home: asyncio.AbstractEventLoop) -> None:
        self._target, self._home = target, home

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._target, name)
        if not asyncio.iscoroutinefunction(method):
            return method

        async def at_home(*args: Any, **kwargs: Any) -> Any:
            future = asyncio.run_coroutine_threadsafe(method(*args, **kwargs), self._home)
            return await asyncio.wrap_future(future)

        return at_home
