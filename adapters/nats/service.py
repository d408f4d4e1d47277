"""`ctilink serve`: the long-running NATS service and its lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

import nats

from ctilink.adapters.nats.api import Api, start_api
from ctilink.adapters.nats.consumer import Consumer, Ingestor
from ctilink.adapters.nats.embedded import EmbeddedNats
from ctilink.adapters.nats.leading import publish_while_leading
from ctilink.adapters.nats.partitions import Partitions
from ctilink.adapters.nats.publisher import Publisher
from ctilink.adapters.nats.streams import PARTITIONS, ensure_streams, partition_subject
from ctilink.adapters.store.roles import open_roles
from ctilink.adapters.store.selection import is_postgres, open_service, redact, resolve


def say(line: str) -> None:
    """One log line on stderr."""
    print(f"ctilink serve: {line}", file=sys.stderr, flush=True)


def connect_options(url: str, options: dict[str, Any], name: str = "ctilink") -> dict[str, Any]:
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
        "servers": [server.strip() for server in url.split(",") if server.strip()],
        "name": name,
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


async def supervise(command: list[str], env: dict[str, str], stop: asyncio.Event) -> None:
    """Run the publisher process until `stop`; its unexpected end is an error."""
    child = await asyncio.create_subprocess_exec(
        *command, env={**env, PARENT_ENV: str(os.getpid())}
    )
    exited = asyncio.ensure_future(child.wait())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait([exited, stopping], return_when=asyncio.FIRST_COMPLETED)
    if not stop.is_set():
        stopping.cancel()
        raise RuntimeError(f"the publisher process ended (status {child.returncode})")
    if child.returncode is None:
        child.terminate()  # it publishes what is committed, then exits
        try:
            await asyncio.wait_for(exited, 30)
        except TimeoutError:
            child.kill()
            await exited


def polled() -> None:
    """Nothing to wake after a commit: the publisher process looks every few ms."""


ORPHAN_GRACE_SECONDS = 5.0
PR_SET_PDEATHSIG = 1
PARENT_ENV = "CTILINK_SERVE_PID"


def die_with_parent() -> None:
    """On Linux, have the kernel kill this process when the serving process dies."""
    # Safe at any moment: a position is recorded only once JetStream acknowledged
    # it, so whatever was in flight is published again, deduplicated, next time.
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


async def stop_when_orphaned(stop: asyncio.Event) -> None:
    """Set `stop` once the parent process is gone (killed without telling us)."""
    # The serving process names itself: it may be gone before this line runs.
    parent = int(os.environ.get(PARENT_ENV, os.getppid()))
    while os.getppid() == parent:
        await asyncio.sleep(0.5)
    say("the serving process is gone; publisher stopping")
    stop.set()
    # NATS may be gone too: whatever is unpublished is published by the next
    # start (positions are recorded only once acknowledged), so do not linger.
    await asyncio.sleep(ORPHAN_GRACE_SECONDS)
    os._exit(0)


async def publish_forever(store: str | None, url: str, options: dict[str, Any]) -> int:
    """The publisher process: CTILINK_OUT from the store's log until SIGTERM or orphaned."""
    die_with_parent()
    service = open_service(store)
    roles = open_roles(resolve(store), member=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    watching = asyncio.ensure_future(stop_when_orphaned(stop))
    try:
        nc = await connect_or_stop(url, options, stop, name="ctilink-publisher")
        if nc is None:
            return 0
        await ensure_streams(nc.jetstream())
        # Nobody wakes this process: it looks for new positions every few ms.
        await publish_while_leading(
            roles, lambda: Publisher(service, nc, log=say, poll=0.02), stop, say
        )
        with contextlib.suppress(Exception):  # NATS may be gone as well
            await asyncio.wait_for(nc.drain(), 5)
    finally:
        watching.cancel()
        roles.close()
        service.close()
    return 0


async def leave_nats(api: Api, nc: Any) -> None:
    """Stop answering queries and drain the connection; NATS may be gone already."""
    try:
        await asyncio.wait_for(api.stop(), 5)
        await asyncio.wait_for(nc.drain(), 10)
    except Exception as error:  # nothing is left unacked that matters: acks follow commits
        say(f"left NATS without draining ({type(error).__name__})")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(nc.close(), 5)
    # Whatever happened above, no read may still run once the store closes.
    await api.finish_reads()


async def connect_or_stop(
    url: str, options: dict[str, Any], stop: asyncio.Event, name: str = "ctilink"
) -> Any:
    """Connect to NATS, however long it takes, unless `stop` comes first (then None)."""
    # nats-py keeps retrying a first connection that fails; a signal still stops us.
    connecting = asyncio.ensure_future(nats.connect(**connect_options(url, options, name)))
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait([connecting, stopping], return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not connecting.done():
        connecting.cancel()
        return None
    return connecting.result()


async def serve(
    store: str | None,
    url: str | None,
    options: dict[str, Any],
    publisher: tuple[list[str], dict[str, str]] | None = None,
) -> int:
    """Run until SIGINT or SIGTERM; finish the batch in hand, drain, exit 0."""
    location = resolve(store)
    embedded = None
    if url is None:
        # Its data beside a SQLite store, or in the working directory for PostgreSQL.
        beside = Path.cwd() / "ctilink" if is_postgres(location) else Path(location).resolve()
        embedded = EmbeddedNats(beside.parent / f"{beside.name}.nats")
        url = await asyncio.to_thread(embedded.start)
        say(f"started embedded nats-server at {url}")
    service = open_service(location)
    roles = open_roles(location)
    stop = asyncio.Event()
    failure: BaseException | None = None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        say(f"connecting to NATS at {url}")
        try:
            nc = await connect_or_stop(url, options, stop)
        except Exception as error:
            say(f"cannot connect to NATS at {url}: {error or type(error).__name__}")
            return 2
        if nc is None:
            say("stopped before NATS answered")
            return 0
        say(f"connected to NATS at {url}; store {redact(location)}")
        js = nc.jetstream()
        await ensure_streams(js)
        ingestor = Ingestor(service)
        if publisher is None:  # in this process
            wake = asyncio.Event()

            def in_process() -> Publisher:
                made = Publisher(service, nc, log=say)
                made.wake = wake  # the consumers wake whichever publisher is current
                return made

            committed = wake.set
            publishing = publish_while_leading(roles, in_process, stop, say)
        else:  # in a process of its own, on the other core
            command, env = publisher
            committed = polled
            publishing = supervise([*command, "--nats", url], env, stop)

        instance = secrets.token_hex(4)  # each holder's consumers have names of their own

        async def consume(partition: int) -> Consumer:
            consumer = Consumer(
                ingestor,
                nc,
                committed=committed,
                log=say,
                durable=f"ctilink-p{partition}-{instance}",
                subject=partition_subject(partition),
            )
            await consumer.start()
            return consumer

        partitions = Partitions(roles, PARTITIONS, consume, log=say)
        api = await start_api(nc, ingestor)
        say("ready: consuming ctilink.in.* by partition, answering ctilink.api.*")
        failure = await run_until_stopped(stop, partitions.run(stop), publishing)
        say("stopping" if failure is None else f"stopping after an error: {failure}")
        await leave_nats(api, nc)
        await ingestor.close()
    finally:
        roles.close()
        service.close()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signum)
    say("stopped")
    return 0 if failure is None else 1
