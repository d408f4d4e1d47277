"""Who may read the console (a token, off loopback) and the headers every answer carries."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "ctilink_token"
# No script but the console's own files, nothing framed, nothing sent elsewhere.
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
HEADERS = [
    (b"content-security-policy", POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
# Reachable without the token: the login form, the styles, and the probes an
# orchestrator calls (they tell only whether the service runs and is ready).
OPEN_PATHS, OPEN_PREFIX = frozenset({"/login", "/healthz", "/readyz"}), "/static/"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
LOGIN_BODY = 4096  # bytes a login form may send


class SecurityHeaders:
    """Adds the content security policy and its companions to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                missing = [header for header in HEADERS if header[0] not in present]
                message["headers"] = [*message.get("headers", []), *missing]
            await send(message)

        await self.app(scope, receive, with_headers)


def holds_token(request: Request, token: str) -> bool:
    """Whether the request carries the token, as a bearer header or the login cookie."""
    header = request.headers.get("authorization", "")
    offered = header[7:] if header.lower().startswith("bearer ") else request.cookies.get(COOKIE)
    return offered is not None and hmac.compare_digest(offered.encode(), token.encode())


def host_name(request: Request) -> str:
    """The Host header's name, without its port."""
    host = request.headers.get("host", "")
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if ":" in host else host


class TokenGate:
    """Without the token: a page asked for goes to the login form, anything else is 401.

    With no token (loopback only), a request must name a loopback host: a web
    page elsewhere that rebinds its own name to 127.0.0.1 gets nothing (421).
    """

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if scope["type"] == "websocket":  # the console has none: never let one through
            await Response(status_code=403)(scope, receive, send)
            return
        if self.token is None:
            if host_name(request) in LOOPBACK_HOSTS:
                await self.app(scope, receive, send)
            else:
                await Response(
                    "this console answers only to 127.0.0.1, localhost or [::1]\n",
                    status_code=421,
                )(scope, receive, send)
            return
        path = request.url.path
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIX) or holds_token(request, self.token):
            await self.app(scope, receive, _no_store(send))
            return
        wants_page = "text/html" in request.headers.get("accept", "")
        target = path + (f"?{request.url.query}" if request.url.query else "")
        response: Response = (
            RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
            if wants_page
            else Response("the console needs its token\n", status_code=401)
        )
        await response(scope, receive, send)


def _no_store(send: Send) -> Send:
    """Answers behind the token are not kept by caches on the way."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), (b"cache-control", b"no-store")]
        await send(message)

    return sending


def safe_next(target: str) -> str:
    """Where to go after signing in: a path of this site only (never another host)."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


def login_routes(token: str | None, render: Callable[..., Response]) -> list[Route]:
    """The login form and its answer (none without a token)."""
    if token is None:
        return []

    async def form(request: Request) -> Response:
        target = safe_next(request.query_params.get("next", "/"))
        return render("login.html", target=target, failed=False)

    async def sign_in(request: Request) -> Response:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > LOGIN_BODY:  # read no further than a login form can need
                return render(
                    "error.html",
                    413,
                    title="Too large",
                    code=413,
                    reason=(f"a login form sends less than {LOGIN_BODY:,} bytes"),
                )
        try:
            fields: dict[str, Any] = parse_qs(body.decode("utf-8", "replace"), max_num_fields=4)
        except ValueError:
            return render(
                "error.html",
                400,
                title="Bad request",
                code=400,
                reason=("a login form sends a token and where to go next, nothing more"),
            )
        offered = (fields.get("token") or [""])[0]
        target = safe_next((fields.get("next") or ["/"])[0])
        if not hmac.compare_digest(offered.encode(), token.encode()):
            return render("login.html", 401, target=target, failed=True)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
        return response

    return [Route("/login", form, methods=["GET"]), Route("/login", sign_in, methods=["POST"])]
