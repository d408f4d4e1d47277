"""`ctilink serve`: the long-running NATS service and its lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Any

import nats

from adapters.api import start_api
from adapters.consumer import Consumer, Ingestor
from adapters.nats_server import EmbeddedNats
from adapters.publisher import Publisher
from adapters.store import open_service, resolve
from adapters.streams import ensure_streams


def say(line: str) -> None:
    """One log line on stderr."""
    print(f"ctilink serve: {line}", file=sys.stderr, flush=True)


def connect_options(url: str, options: dict[str, Any]) -> dict[str, Any]:
    """nats.connect() keywords: reconnect forever, one log line per event."""

    async def disconnected() -> None:
        say("disconnected from NATS")

    async def reconnected() -> None:
        say(f"reconnected to NATS at {url}")

    async def error(e: Exception) -> None:
        # Without this callback nats-py prints a traceback on every failed attempt.
        if not isinstance(e, (ConnectionRefusedError, OSError)):
            say(f"NATS error: {e}")

    return {
        "servers": [url],
        "name": "ctilink",
        "reconnect_time_wait": 0.5,
        "max_reconnect_attempts": -1,
        "disconnected_cb": disconnected,
        "reconnected_cb": reconnected,
        "error_cb": error,
        **options,
    }


async def run_until_stopped(stop: asyncio.Event, *jobs: Any) -> BaseException | None:
    """Run the jobs until `stop` is set, or one fails (which stops the others)."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    failure: BaseException | None = None
    for finished in asyncio.as_completed(tasks):
        try:
            await finished
        except Exception as error:
            if failure is None:
                failure = error
                stop.set()  # each job finishes what it has in hand and returns
    return failure


async def serve(store: str | None, url: str | None, options: dict[str, Any]) -> int:
    """Run until SIGINT or SIGTERM; finish the batch in hand, drain, exit 0."""
    location = resolve(store)
    embedded = None
    if url is None:
        embedded = EmbeddedNats(Path(location).resolve().parent / f"{Path(location).name}.nats")
        url = await asyncio.to_thread(embedded.start)
        say(f"started embedded nats-server at {url}")
    service = open_service(location)
    stop = asyncio.Event()
    failure: BaseException | None = None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        say(f"connecting to NATS at {url}")
        # nats-py keeps retrying a first connection that fails; a signal still stops us.
        connecting = asyncio.ensure_future(nats.connect(**connect_options(url, options)))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait([connecting, stopping], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not connecting.done():
            connecting.cancel()
            say("stopped before NATS answered")
            return 0
        try:
            nc = connecting.result()
        except Exception as error:
            say(f"cannot connect to NATS at {url}: {error or type(error).__name__}")
            return 2
        say(f"connected to NATS at {url}; store {location}")
        js = nc.jetstream()
        await ensure_streams(js)
        ingestor = Ingestor(service)
        publisher = Publisher(service, nc, log=say)
        consumer = Consumer(ingestor, js, committed=publisher.wake.set, log=say)
        await consumer.start()
        api = await start_api(nc, ingestor)
        say("ready: consuming ctilink.in.*, answering ctilink.api.*")
        failure = await run_until_stopped(stop, consumer.run(stop), publisher.run(stop))
        say("stopping" if failure is None else f"stopping after an error: {failure}")
        await api.stop()
        await consumer.close()
        await nc.drain()
    finally:
        service.close()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signum)
    say("stopped")
    return 0 if failure is None else 1
