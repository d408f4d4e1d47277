"""The HTTP listener shared by `ctilink web` and `ctilink serve --http`: address, token, server."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import re
import socket
from typing import Any

from ctilink.adapters.errors import UserError

TOKEN_ENV = "CTILINK_WEB_TOKEN"


ADDRESS = re.compile(
    r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9.-]+)):(?P<port>[0-9]{1,5})"
)


def listen_address(text: str) -> tuple[str, int]:
    """argparse type for HOST:PORT (an IPv6 host in brackets: [::1]:8080)."""
    found = ADDRESS.fullmatch(text)
    if found is None or int(found["port"]) > 65535:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)"
        )
    return found["ipv6"] or found["host"], int(found["port"])


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach the host."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def required_token(host: str, token: str | None, flag: str = "--token") -> str | None:
    """The token readers must present (given, or from the environment); UserError if one
    is needed and missing: beyond loopback the console is never open to all."""
    token = token or os.environ.get(TOKEN_ENV) or None
    if token is not None and not (token.isascii() and token.isprintable()):
        # A header carries ASCII only: such a token could never be presented as Bearer.
        raise UserError("the console's token must be printable ASCII")
    if token is None and not is_loopback(host):
        raise UserError(
            f"the console listens on {host}, beyond this machine: give it a token "
            f"({flag} or ${TOKEN_ENV}) that readers must present"
        )
    return token


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: a free one); UserError when the address cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as error:
        raise UserError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)  # connections wait in the backlog until the server takes them
    except (OSError, OverflowError) as error:
        sock.close()
        reason = getattr(error, "strerror", None) or error
        raise UserError(f"cannot listen on {host}:{port}: {reason}") from None
    return sock


def url_of(sock: socket.socket) -> str:
    """The console's address, as a reader types it."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if sock.family == socket.AF_INET6 else host
    return f"http://{shown}:{port}/"


def server(app: Any) -> Any:
    """A uvicorn server for the app (quiet; live streams do not hold a stop up)."""
    import uvicorn  # only the console loads the web stack

    from ctilink.adapters.ops.logs import json_logs

    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        # With JSON logs, uvicorn's loggers keep the JSON handler given them.
        log_config=None if json_logs() else uvicorn.config.LOGGING_CONFIG,
        # Live pages hold their streams open: a stop does not wait on them for long
        # (their browsers reconnect to the next console and catch up).
        timeout_graceful_shutdown=2,
    )
    return uvicorn.Server(config)


async def serve_until(app: Any, sock: socket.socket, stop: asyncio.Event) -> None:
    """Serve the app on the socket until `stop` is set; live streams end first."""
    running = server(app)
    running.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # ours
    task = asyncio.ensure_future(running.serve(sockets=[sock]))
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    close_streams = getattr(app.state, "close_streams", None)
    if close_streams is not None:
        close_streams()  # so that the server does not wait on them to stop
    running.should_exit = True
    stopping.cancel()
    await task
