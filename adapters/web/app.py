"""The console's HTTP application (Starlette): routes, error pages, headers and the token.

Read-only: every page reads the store in one reader thread (the service's held
states are not shared between threads), and nothing is ever written.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ctilink.adapters.store.listing import DamagedIndex
from ctilink.adapters.store.network_index import SORTS
from ctilink.adapters.web.gate import HEADERS, SecurityHeaders, TokenGate, login_routes
from ctilink.adapters.web.health import operations_routes
from ctilink.adapters.web.live import Watcher
from ctilink.adapters.web.machine_svg import drawing
from ctilink.adapters.web.reads import (
    TYPES,
    BadQuery,
    audit_page,
    diff_page,
    directory_page,
    log_page,
    network_page,
    overview_page,
)
from ctilink.adapters.web.rejections import KEPT, RejectionTail
from ctilink.domain.application import NetworkService
from ctilink.domain.errors import DamagedLog, UnknownNetwork
from ctilink.domain.messages import is_name
from ctilink.domain.mode import Mode

HERE = Path(__file__).parent
PAGES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,  # every value shown comes from events anyone could send
    undefined=jinja2.StrictUndefined,
)


def render(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page from its template, with the security headers (an error page too)."""
    response = HTMLResponse(PAGES.get_template(name).render(**context), status_code=status_code)
    for key, value in HEADERS:
        response.headers[key.decode()] = value.decode()
    return response


def error_page(status_code: int, reason: str) -> HTMLResponse:
    """The page for a request with no answer, saying why."""
    titles = {400: "Bad request", 401: "Sign in", 404: "Not found", 500: "The store is damaged"}
    title = titles.get(status_code, "Error")
    return render("error.html", status_code, title=title, reason=reason, code=status_code)


def query_of(request: Request) -> dict[str, str]:
    """The query's parameters, the first of each (a repeated one cannot change the answer)."""
    found: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        found.setdefault(key, value)
    return found


def console(
    service: NetworkService,
    *,
    token: str | None = None,
    tail: RejectionTail | None = None,
    ops: Any = None,
) -> Starlette:
    """The console over a store; with `tail` (under `serve --http`), `/rejections` too."""
    reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ctilink-web")

    async def read(work: Callable[..., Any], *args: Any) -> Any:
        """Run one read in the reader thread."""
        return await asyncio.get_running_loop().run_in_executor(reader, work, *args)

    def network_name(request: Request) -> str:
        """The network named by the path (404 when it cannot be a network's name)."""
        name = request.path_params["network"]
        if not is_name(name):
            raise HTTPException(404, f"{name!r} is not a network name")
        return name

    async def overview(request: Request) -> Response:
        query = query_of(request)
        since = watcher.generation  # before reading: a later commit is told to the page
        page = await read(overview_page, service, query)
        return render(
            "overview.html",
            page=page,
            query=query,
            modes=[m.value for m in Mode],
            sorts=["name", *SORTS],
            since=since,
        )

    async def network(request: Request) -> Response:
        name = network_name(request)
        query = query_of(request)
        since = watcher.generation
        page = await read(network_page, service, name, query)
        # A position asked for stays that position: only "now" follows the log.
        pinned = bool(query.get("at") or query.get("at-time"))
        mode = page.status.mode
        return render(
            "network.html",
            page=page,
            network=name,
            since=since,
            pinned=pinned,
            drawing=drawing(mode.configured, mode.effective),
        )

    async def log(request: Request) -> Response:
        name = network_name(request)
        query = query_of(request)
        since = watcher.generation
        page = await read(log_page, service, name, query)
        return render("log.html", page=page, network=name, query=query, types=TYPES, since=since)

    async def directory(request: Request) -> Response:
        name = network_name(request)
        page = await read(directory_page, service, name, query_of(request))
        return render("directory.html", page=page, network=name, query=query_of(request))

    async def audit(request: Request) -> Response:
        name = network_name(request)
        query = query_of(request)
        page = await read(audit_page, service, name, query)
        return render("audit.html", page=page, network=name, query=query)

    async def changes(request: Request) -> Response:
        name = network_name(request)
        found = await read(diff_page, service, name, query_of(request))
        return render("diff.html", diff=found, network=name)

    async def bad_query(_: Request, error: Exception) -> Response:
        return error_page(400, str(error))

    async def unknown(_: Request, error: Exception) -> Response:
        return error_page(404, f"{error.args[0]} in this store")

    async def damaged(_: Request, error: Exception) -> Response:
        return error_page(500, str(error))

    async def http_error(_: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        return error_page(error.status_code, error.detail)

    async def unforeseen(_: Request, error: Exception) -> Response:
        # A store damaged in a way no check foresaw: one line, never a traceback.
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return error_page(
            500, f"{type(error).__name__}: {reason} (`ctilink verify` checks the store)"
        )

    watcher = Watcher(service.recorder)

    async def live(request: Request) -> Response:
        network = request.query_params.get("network") or None
        if network is not None:
            if not is_name(network):
                raise HTTPException(404, f"{network!r} is not a network name")
            await read(service.head, network)  # UnknownNetwork: 404
        since = request.query_params.get("since", "")
        seen = int(since) if since.isascii() and since.isdigit() and len(since) < 18 else None
        headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
        return StreamingResponse(
            watcher.changes(network, seen), media_type="text/event-stream", headers=headers
        )

    async def rejections(_: Request) -> Response:
        assert tail is not None
        return render("rejections.html", latest=list(tail.latest), count=tail.generation, kept=KEPT)

    async def live_rejections(_: Request) -> Response:
        assert tail is not None
        headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
        return StreamingResponse(tail.changes(), media_type="text/event-stream", headers=headers)

    served_only = (
        []
        if tail is None
        else [Route("/rejections", rejections), Route("/live/rejections", live_rejections)]
    )
    if ops is not None:
        served_only += operations_routes(ops)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        watcher.start()
        yield
        await watcher.stop()
        reader.shutdown(wait=True, cancel_futures=True)

    app = Starlette(
        routes=[
            Route("/", overview),
            Route("/networks/{network}", network),
            Route("/networks/{network}/log", log),
            Route("/networks/{network}/directory", directory),
            Route("/networks/{network}/audit", audit),
            Route("/networks/{network}/diff", changes),
            Route("/live", live),
            *served_only,
            *login_routes(token, render),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        exception_handlers={
            BadQuery: bad_query,
            UnknownNetwork: unknown,
            DamagedLog: damaged,
            DamagedIndex: damaged,
            HTTPException: http_error,
            Exception: unforeseen,
        },
        lifespan=lifespan,
    )

    def close_streams() -> None:
        watcher.close()
        if tail is not None:
            tail.close()

    app.state.close_streams = close_streams
    app.state.lifespan = lifespan  # entered by `serve` when the console comes in late
    app.add_middleware(TokenGate, token=token)
    app.add_middleware(SecurityHeaders)
    return app
