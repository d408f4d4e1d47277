"""Connecting to NATS for a long-running process: reconnect forever, one log line per event."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from nats.aio.client import Client

from ctilink.adapters.errors import UserError
from ctilink.adapters.ops.logs import said

Log = Callable[[str], None]


AUTH_SIGNS = ("authorization violation", "authentication", "user authentication expired")


class Refused(UserError):
    """The NATS server refused this client's credentials."""


def connect_options(
    url: str,
    options: dict[str, Any],
    name: str,
    log: Log,
    client: Client | None = None,
    refused: asyncio.Event | None = None,
) -> dict[str, Any]:
    """nats.connect() keywords: every server of `url`, reconnecting forever.

    `refused` is set when the server refuses the credentials (no retry mends that).
    """

    async def disconnected() -> None:
        # Closed by us (`leave`, a normal stop) is no problem; lost is a warning.
        closed = client is not None and client.is_closed
        log(said("disconnected from NATS", logging.INFO if closed else logging.WARNING))

    async def reconnected() -> None:
        log(f"reconnected to NATS at {url}")

    async def error(e: Exception) -> None:
        # Without this callback nats-py prints a traceback on every failed attempt.
        if refused is not None and any(sign in str(e).lower() for sign in AUTH_SIGNS):
            if not refused.is_set():
                refused.set()
                log(f"NATS refused the credentials: {e}")
            return
        if not isinstance(e, (ConnectionRefusedError, OSError)):
            log(f"NATS error: {e}")

    return {
        "servers": [server.strip() for server in url.split(",") if server.strip()],
        "name": name,
        "reconnect_time_wait": 0.5,
        "max_reconnect_attempts": -1,
        # A server that stops answering (not only one that closes the connection)
        # is noticed within about ten seconds, so that /readyz says so (2 min by default).
        "ping_interval": 4,
        "max_outstanding_pings": 2,
        "disconnected_cb": disconnected,
        "reconnected_cb": reconnected,
        "error_cb": error,
        **options,
    }


async def connect_or_stop(
    url: str, options: dict[str, Any], stop: asyncio.Event, name: str, log: Log
) -> Client | None:
    """Connect to NATS, however long it takes, unless `stop` comes first (then None).

    Refused credentials end the wait at once (Refused): no retry mends them.
    """
    # nats-py keeps retrying a first connection that fails; a signal still stops us.
    client = Client()  # as nats.connect() makes it, known to the callbacks
    refused = asyncio.Event()
    connecting = asyncio.ensure_future(
        client.connect(**connect_options(url, options, name, log, client, refused))
    )
    waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(refused.wait())]
    await asyncio.wait([connecting, *waits], return_when=asyncio.FIRST_COMPLETED)
    for wait in waits:
        wait.cancel()
    if not connecting.done():
        connecting.cancel()
        with contextlib.suppress(BaseException):
            await connecting
        if refused.is_set():
            raise Refused("the server refused the credentials (authorization violation)")
        return None
    connecting.result()  # raises what connecting raised
    return client


async def leave(nc: Client, log: Log) -> None:
    """Drain the connection; NATS may be gone already, then just close it."""
    try:
        await asyncio.wait_for(nc.drain(), 10)
    except Exception as error:  # nothing is left unacked that matters: acks follow commits
        log(f"left NATS without draining ({type(error).__name__})")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(nc.close(), 5)
