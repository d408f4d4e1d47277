"""`/healthz`, `/readyz` and `/metrics` on the console's listener (under `serve --http`).

The listener runs on a loop of its own; the probes ask the service's loop, where
NATS, the partitions and the store's probe thread live (`ServiceProbes`). Each
kind of question is asked once at a time however many requests ask it, at
most ten times a second, and every request gets an answer asked after it
came: a flood of probes costs the service's loop ten questions a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ctilink.adapters.ops.probes import CHECK_SECONDS, Readiness
from ctilink.adapters.web.gate import HEADERS

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
GAP_SECONDS = 0.1  # between two questions of a kind to the service's loop, at least
ALIVE_SECONDS = 5.0  # the service's loop not answering within this is not alive
READY_SECONDS = 2 * CHECK_SECONDS + 1  # readiness asks the store and NATS, each in time
SCRAPE_SECONDS = 30.0  # a scrape's refresh (per-network series fold every network)


class Shared:
    """A question asked on behalf of many requests: each gets an answer asked after it
    arrived, one question at a time, and at most one started every `gap` seconds."""

    def __init__(self, ask: Callable[[], Awaitable[Any]], gap: float = GAP_SECONDS) -> None:
        self.ask = ask
        self.gap = gap
        self._pending: asyncio.Future[Any] | None = None
        self._started = -gap

    async def __call__(self) -> Any:
        arrived = time.monotonic()
        while True:
            pending = self._pending
            if pending is not None and self._started >= arrived:
                return await asyncio.shield(pending)  # asked since: its answer is ours
            if pending is not None and not pending.done():
                await asyncio.wait({pending})  # asked before we came: the next one is ours
                continue
            wait = self._started + self.gap - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            self._started = time.monotonic()
            self._pending = asyncio.ensure_future(self.ask())


class ServiceProbes:
    """The service's `Operations`, asked on the service's own loop from the listener's."""

    def __init__(self, ops: Any, home: asyncio.AbstractEventLoop) -> None:
        self.ops = ops
        self.home = home
        self.alive = Shared(lambda: self._at_home(_nothing(), ALIVE_SECONDS, False))
        self.readiness = Shared(self._readiness)
        self.metrics = Shared(self._metrics)

    async def _at_home(self, work: Any, seconds: float, instead: Any) -> Any:
        """A coroutine run on the service's loop, in time (`instead` when it is not)."""
        try:
            future = asyncio.run_coroutine_threadsafe(work, self.home)
        except RuntimeError:  # that loop has ended
            work.close()
            return instead
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), seconds)
        except (TimeoutError, asyncio.CancelledError):
            future.cancel()
            raise
        except Exception:
            return instead

    async def _readiness(self) -> Readiness:
        busy = Readiness(False, False, False, False, ["service not answering"])
        try:
            return await self._at_home(self.ops.readiness(), READY_SECONDS, busy)  # type: ignore[no-any-return]
        except TimeoutError:
            return busy

    async def _metrics(self) -> bytes:
        with contextlib.suppress(TimeoutError):  # the figures of the last refresh, then
            await self._at_home(self.ops.refresh(), SCRAPE_SECONDS, None)
        return await asyncio.to_thread(self.ops.metrics.text)  # type: ignore[no-any-return]


async def _nothing() -> bool:
    return True


def operations_routes(probes: ServiceProbes) -> list[Route]:
    """The probes and the metrics of a running service."""

    async def healthz(_: Request) -> Response:
        # Liveness: the service's loop answers (the listener's own answering is not enough).
        try:
            alive = await probes.alive()
        except TimeoutError:
            alive = False
        body = b'{"status":"ok"}\n' if alive else b'{"status":"not answering"}\n'
        return Response(body, status_code=200 if alive else 503, media_type="application/json")

    async def readyz(_: Request) -> Response:
        found = await probes.readiness()
        return Response(
            msgspec.json.encode(found) + b"\n",
            status_code=200 if found.ready else 503,
            media_type="application/json",
        )

    async def metrics(_: Request) -> Response:
        return Response(await probes.metrics(), media_type=PROMETHEUS_TEXT)

    return [Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics)]


class Switch:
    """The listener's app from the moment `serve` binds it: `/healthz` answers at once,
    anything else says the service is starting (503), until the console takes over."""

    def __init__(self) -> None:
        self.target: Any = None  # the console, once the store and NATS are there
        self._lifespan: Any = None

    @property
    def state(self) -> Any:
        """The console's state (what `serve_until` closes streams through)."""
        return getattr(self.target, "state", None)

    async def attach(self, app: Any) -> None:
        """Hand over to the console, its lifespan entered (on the listener's loop)."""
        lifespan = app.state.lifespan(app)
        await lifespan.__aenter__()
        self._lifespan = lifespan
        self.target = app

    async def _detach(self) -> None:
        """The console's lifespan left (the listener stops)."""
        lifespan, self._lifespan = self._lifespan, None
        if lifespan is not None:
            await lifespan.__aexit__(None, None, None)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":  # the console's own is entered by `attach`
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self._detach()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if self.target is not None:
            await self.target(scope, receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"] == "/healthz":
            response = Response(b'{"status":"ok"}\n', media_type="application/json")
        elif scope["path"] == "/readyz":
            starting = Readiness(False, False, False, False, ["starting"])
            body = msgspec.json.encode(starting) + b"\n"
            response = Response(body, status_code=503, media_type="application/json")
        else:
            response = Response(b"ctilink serve is starting\n", status_code=503)
        for key, value in HEADERS:
            response.headers[key.decode()] = value.decode()
        await response(scope, receive, send)
