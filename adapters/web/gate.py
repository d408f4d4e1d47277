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
OPEN_PATHS = ("/login", "/static/")  # reachable without the token


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
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def holds_token(request: Request, token: str) -> bool:
    """Whether the request carries the token, as a bearer header or the login cookie."""
    header = request.headers.get("authorization", "")
    offered = header[7:] if header.lower().startswith("bearer ") else request.cookies.get(COOKIE)
    return offered is not None and hmac.compare_digest(offered.encode(), token.encode())


class TokenGate:
    """Without the token: a page asked for goes to the login form, anything else is 401."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        path = request.url.path
        if path.startswith(OPEN_PATHS) or holds_token(request, self.token):
            await self.app(scope, receive, send)
            return
        wants_page = "text/html" in request.headers.get("accept", "")
        target = path + (f"?{request.url.query}" if request.url.query else "")
        response: Response = (
            RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
            if wants_page
            else Response("the console needs its token\n", status_code=401)
        )
        await response(scope, receive, send)


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
        body = await request.body()
        fields: dict[str, Any] = parse_qs(body.decode("utf-8", "replace"), max_num_fields=4)
        offered = (fields.get("token") or [""])[0]
        target = safe_next((fields.get("next") or ["/"])[0])
        if not hmac.compare_digest(offered.encode(), token.encode()):
            return render("login.html", 401, target=target, failed=True)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
        return response

    return [Route("/login", form, methods=["GET"]), Route("/login", sign_in, methods=["POST"])]
