"""The console's HTTP application (Starlette): routes, error pages, headers and the token.

Read-only: every page reads the store and is rendered in one reader thread (the
service's held states are not shared between threads, and no page holds the
event loop up), and nothing is ever written.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Match, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from ctilink.adapters.store.queries.listing import DamagedIndex
from ctilink.adapters.store.queries.networks import SORTS
from ctilink.adapters.text import cut
from ctilink.adapters.web.gate import HEADERS, SecurityHeaders, TokenGate, login_routes
from ctilink.adapters.web.health import operations_routes
from ctilink.adapters.web.limits import Limits, default_connections, default_live
from ctilink.adapters.web.live import Watcher
from ctilink.adapters.web.machine_svg import drawing
from ctilink.adapters.web.pages import HERE
from ctilink.adapters.web.pages import render as render_page
from ctilink.adapters.web.preview import choices, preview_page
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
from ctilink.adapters.web.rejections import CODES, rejections_page
from ctilink.adapters.web.rejections import query_of as rejection_query
from ctilink.adapters.web.timeline import timeline_page
from ctilink.domain.application import NetworkService
from ctilink.domain.errors import DamagedLog, UnknownNetwork
from ctilink.domain.messages import is_name
from ctilink.domain.mode import Mode

REASON = 1_000  # characters of an error's reason shown (it may quote what was sent)


def html(body: bytes, status_code: int = 200) -> HTMLResponse:
    """A page, with the security headers (an error page too)."""
    response = HTMLResponse(body, status_code=status_code)
    for key, value in HEADERS:
        response.headers[key.decode()] = value.decode()
    return response


def render(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A small page rendered where it is asked for (login, errors)."""
    return html(render_page(name, **context), status_code)


def error_page(status_code: int, reason: str) -> HTMLResponse:
    """The page for a request with no answer, saying why."""
    titles = {
        400: "Bad request",
        401: "Sign in",
        404: "Not found",
        500: "The store is damaged",
        503: "Busy",
    }
    title = titles.get(status_code, "Error")
    reason = cut(reason, REASON)
    return render("error.html", status_code, title=title, reason=reason, code=status_code)


class Slots:
    """Live streams open at once, up to a number."""

    def __init__(self, most: int) -> None:
        self.most = most
        self.taken = 0

    def counted(self, response: Response) -> ASGIApp:
        """The stream if a slot is free (held until it ends), else a 503 page."""

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if self.taken >= self.most:
                busy = error_page(
                    503, f"{self.most:,} live pages are open already; this one is not live"
                )
                busy.headers["retry-after"] = "10"
                await busy(scope, receive, send)
                return
            self.taken += 1
            try:
                await response(scope, receive, send)
            finally:
                self.taken -= 1

        return app


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
    ops: Any = None,
    limits: Limits | None = None,
) -> Starlette:
    """The console over a store; with `ops` (the service's probes, under `serve --http`),
    `/healthz`, `/readyz` and `/metrics` too."""
    reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ctilink-web")
    live_slots = Slots(limits.max_live if limits else default_live(default_connections(1024)))

    async def read(work: Callable[..., Any], *args: Any) -> Any:
        """Run one read in the reader thread."""
        return await asyncio.get_running_loop().run_in_executor(reader, work, *args)

    async def show(name: str, **context: Any) -> HTMLResponse:
        """A page rendered in the reader thread (a long one never holds the loop up)."""
        return html(await read(lambda: render_page(name, **context)))

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
        return await show(
            "overview.html",
            here="networks",
            search=query.get("q", ""),
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
        return await show(
            "network.html",
            here="now",
            page=page,
            network=name,
            since=since,
            pinned=pinned,
            drawing=drawing(mode.configured, mode.effective),
            choices=[] if page.past else choices(name, mode.configured),
        )

    def network_route(reads: Callable[..., Any], template: str, here: str) -> Any:
        """A page of one network: read, then rendered with what was asked."""

        async def route(request: Request) -> Response:
            name = network_name(request)
            query = query_of(request)
            since = watcher.generation  # before reading: a later commit is told to the page
            page = await read(reads, service, name, query)
            return await show(
                template, here=here, page=page, network=name, query=query, since=since, types=TYPES
            )

        return route

    async def rejections(request: Request) -> Response:
        query = query_of(request)
        filters = rejection_query(query)
        since = watcher.generation
        page = await read(rejections_page, service.recorder, filters)
        return await show(
            "rejections.html",
            here="rejections",
            page=page,
            query=query,
            filters=filters,
            codes=CODES,
            since=since,
        )

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
        told = (
            watcher.rejections(network, seen)
            if request.query_params.get("rejections")
            else watcher.changes(network, seen)
        )
        stream = StreamingResponse(told, media_type="text/event-stream", headers=headers)
        return live_slots.counted(stream)  # type: ignore[return-value]

    served_only = [] if ops is None else operations_routes(ops)

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
            Route("/networks/{network}/log", network_route(log_page, "log.html", "log")),
            Route(
                "/networks/{network}/directory",
                network_route(directory_page, "directory.html", "directory"),
            ),
            Route("/networks/{network}/audit", network_route(audit_page, "audit.html", "audit")),
            Route("/networks/{network}/diff", network_route(diff_page, "diff.html", "diff")),
            Route(
                "/networks/{network}/timeline",
                network_route(timeline_page, "timeline.html", "timeline"),
            ),
            Route(
                "/networks/{network}/preview", network_route(preview_page, "preview.html", "now")
            ),
            Route("/rejections", rejections),
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
    # Starlette's own redirect (/networks/acme/ to /networks/acme) is absolute, built
    # from the Host header: ours is relative, to this site whatever the Host says.
    app.router.redirect_slashes = False
    app.router.default = slash_redirect(app.router.routes, app.router.not_found)

    app.state.close_streams = watcher.close
    app.state.lifespan = lifespan  # entered by `serve` when the console comes in late
    app.add_middleware(TokenGate, token=token)
    app.add_middleware(SecurityHeaders)
    return app


def slash_redirect(routes: list[Any], not_found: ASGIApp) -> ASGIApp:
    """A path that names a page but for a trailing slash: redirected to the page by a
    relative URL (its path and query only); anything else: `not_found`."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if scope["type"] == "http" and path not in ("", "/"):
            other = path.rstrip("/") if path.endswith("/") else path + "/"
            raw = scope.get("raw_path") or path.encode()
            target = raw.rstrip(b"/") if path.endswith("/") else raw + b"/"
            candidate = {**scope, "path": other}
            relative = target.startswith(b"/") and not target.startswith((b"//", b"/\\"))
            if relative and any(r.matches(candidate)[0] is not Match.NONE for r in routes):
                query = scope.get("query_string", b"")
                location = (target + b"?" + query if query else target).decode("latin-1")
                await RedirectResponse(location, status_code=307)(scope, receive, send)
                return
        await not_found(scope, receive, send)

    return app
