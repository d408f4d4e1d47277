"""Waiting out what the service does not control: a stop signal, a store that is away."""

from __future__ import annotations

import asyncio
import contextlib

from eventsourcing.persistence import InterfaceError, OperationalError

# What a store that is restarting or unreachable raises (the pool re-connects).
STORE_AWAY = (OperationalError, InterfaceError)
STORE_RETRY_SECONDS = 1.0


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake at once when `stop` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def first_line(error: BaseException) -> str:
    """An error's first line, for a one-line log."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
