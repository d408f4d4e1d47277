"""`/healthz`, `/readyz` and `/metrics` on the console's listener (under `serve --http`)."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ctilink.adapters.ops.probes import Readiness
from ctilink.adapters.web.gate import HEADERS

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def operations_routes(ops: Any) -> list[Route]:
    """The probes and the metrics of a running service."""

    async def healthz(_: Request) -> Response:
        # Liveness: the event loop answers; nothing else is asked.
        return Response(b'{"status":"ok"}\n', media_type="application/json")

    async def readyz(_: Request) -> Response:
        found = await ops.readiness()
        return Response(
            msgspec.json.encode(found) + b"\n",
            status_code=200 if found.ready else 503,
            media_type="application/json",
        )

    async def metrics(_: Request) -> Response:
        await ops.refresh()
        return Response(ops.metrics.text(), media_type=PROMETHEUS_TEXT)

    return [Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics)]


class Switch:
    """The listener's app from the moment `serve` binds it: `/healthz` answers at once,
    anything else says the service is starting (503), until the console takes over."""

    def __init__(self) -> None:
        self.target: Any = None  # the console, once the store and NATS are there

    @property
    def state(self) -> Any:
        """The console's state (what `serve_until` closes streams through)."""
        return getattr(self.target, "state", None)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":  # the console's own is entered by `serve`
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
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
