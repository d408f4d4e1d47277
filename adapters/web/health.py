"""`/healthz`, `/readyz` and `/metrics` on the console's listener (under `serve --http`)."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

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
