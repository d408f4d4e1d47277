"""The HTTP listener shared by `ctilink web` and `ctilink serve --http`: address, token, server."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import re
import socket
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from ctilink.adapters.errors import UserError
from ctilink.adapters.web.limits import Limits

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


BACKLOG = 512  # connections the kernel holds until the listener takes them


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
        sock.listen(BACKLOG)  # they hold no descriptor of ours until taken
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


def say_web(line: str) -> None:
    """A log line of `ctilink web`, on stderr."""
    print(f"ctilink web: {line}", file=sys.stderr, flush=True)


async def serve_until(
    app: Any,
    sock: socket.socket,
    stop: asyncio.Event,
    limits: Limits,
    say: Callable[[str], None] = say_web,
) -> None:
    """Serve the app on the socket until `stop` is set; live streams end first."""
    from ctilink.adapters.web.edge import quiet
    from ctilink.adapters.web.server import Listener

    running = Listener(app, sock, limits, say)
    with quiet():
        task = asyncio.ensure_future(running.serve())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        close_streams = getattr(app.state, "close_streams", None)
        if close_streams is not None:
            close_streams()  # so that the server does not wait on them to stop
        running.should_exit = True
        stopping.cancel()
        await task


class HttpThread:
    """The listener on a thread and an event loop of its own (`serve --http`): nothing an
    HTTP client does can hold up the loop of the NATS service that started it."""

    def __init__(
        self, app: Any, sock: socket.socket, limits: Limits, say: Callable[[str], None]
    ) -> None:
        self.app, self.sock, self.limits, self.say = app, sock, limits, say
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self.done: asyncio.Future[None] | None = None  # on the caller's loop: the thread ended

    async def start(self) -> None:
        """Start the thread and its loop; return once it listens."""
        caller = asyncio.get_running_loop()
        self.done = caller.create_future()
        thread = threading.Thread(target=self._run, args=(caller,), name="ctilink-http")
        thread.daemon = True  # a stuck client never keeps the process alive
        thread.start()
        await asyncio.to_thread(self._started.wait)

    def _run(self, caller: asyncio.AbstractEventLoop) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._started.set()
            await serve_until(self.app, self.sock, self._stop, self.limits, self.say)

        outcome: BaseException | None = None
        try:
            asyncio.run(main())
        except BaseException as error:  # told to the caller, which stops the service
            outcome = error
        finally:
            self._started.set()
            with contextlib.suppress(RuntimeError):  # the caller's loop has closed
                caller.call_soon_threadsafe(self._ended, outcome)

    def _ended(self, outcome: BaseException | None) -> None:
        assert self.done is not None
        if self.done.done():
            return
        if outcome is None:
            self.done.set_result(None)
        else:
            self.done.set_exception(outcome)

    async def call(self, work: Coroutine[Any, Any, Any]) -> Any:
        """Run a coroutine on the listener's loop, from the caller's."""
        assert self.loop is not None
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self.loop))

    async def stop(self) -> None:
        """Stop listening (streams end, requests in hand finish) and wait for the thread."""
        if self.loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # its loop has ended already
                self.loop.call_soon_threadsafe(self._stop.set)
        if self.done is not None:
            with contextlib.suppress(Exception):  # told by the job that awaits it
                await asyncio.shield(self.done)
