"""The NATS micro service `ctilink`: status, directory, networks and ingest queries."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from typing import Any

import msgspec
from nats.aio.client import Client
from nats.micro import add_service
from nats.micro.request import Request, ServiceError
from nats.micro.service import Service

from ctilink.adapters.nats.ingestor import Ingestor
from ctilink.adapters.nats.wire import IngestReply, NetworksQuery, NetworkSummary, Query, encode
from ctilink.adapters.store.coordination.waiting import STORE_AWAY, first_line
from ctilink.adapters.store.queries.listing import DamagedIndex, network_lines
from ctilink.domain.arrivals import Arrival
from ctilink.domain.decoding import Invalid, decode, explain, named, repeated_key_problem
from ctilink.domain.errors import DamagedLog, PositionOutOfRange, UnknownNetwork
from ctilink.projections.directory import directory
from ctilink.projections.status import status

NAME = "ctilink"
VERSION = version("ctilink")
QUEUE_GROUP = "ctilink"
API_SOURCE = "api"
REPLY_HEADROOM = 1024  # the reply's subject and headers travel with it

_query = msgspec.json.Decoder(Query).decode
_networks_query = msgspec.json.Decoder(NetworksQuery).decode


def _decode(decode: Any, data: bytes) -> Any:
    """Decode a request, or a 400 error naming the field."""
    try:
        decoded = decode(data or b"{}")
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as error:
        # Whatever the bytes: a bad request is a 400 that says why, never a 500.
        raise ServiceError("400", f"bad request: {explain(error)}") from None
    repeated = repeated_key_problem(data) if data else None
    if repeated is not None:  # as for events (I1): which one was meant cannot be told
        raise ServiceError("400", f"bad request: {repeated}")
    return decoded


Handler = Callable[[Request], Awaitable[None]]


def store_errors_as_503(handler: Handler, timed: Any = None) -> Handler:
    """A store that is away answers 503 with the reason, not 500 with a repr; timed if asked."""

    async def answer(request: Request) -> None:
        started, code = time.perf_counter(), "200"
        try:
            await handler(request)
        except STORE_AWAY as error:
            code = "503"
            raise ServiceError("503", f"the store is unavailable: {first_line(error)}") from None
        except ServiceError as error:
            code = error.code
            raise
        except Exception:
            code = "500"
            raise
        finally:
            if timed is not None:
                timed(code).observe(time.perf_counter() - started)

    return answer


class Api:
    """Endpoint handlers over one ingestor (and its service)."""

    def __init__(self, ingestor: Ingestor, reads: Any = None) -> None:
        self.ingestor = ingestor
        # Reads have a service of their own (its own connections and held states)
        # when given one, so they never wait on the writer's; and a thread of their
        # own: a store that is slow or away must not stall the event loop (acks,
        # pulls, signals). One thread, so that held states are touched by one.
        self.service = reads if reads is not None else ingestor.service
        self.reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ctilink-reads")
        self.inline = False  # reads run on the loop itself (a loop that only answers queries)
        self.micro: Service | None = None  # the registered micro service
        self.max_payload = 0  # the server's, once connected (0: unknown)

    async def stop(self) -> None:
        """Stop answering requests."""
        if self.micro is not None:
            await self.micro.stop()

    async def finish_reads(self) -> None:
        """Wait for the read in progress and take no more (before the store closes)."""
        await asyncio.to_thread(self.reader.shutdown, wait=True, cancel_futures=True)

    async def _read(self, work: Callable[..., bytes], *args: Any) -> bytes:
        """Run one read: on this loop when it is the queries' own, else in the reader thread."""
        if self.inline:
            return work(*args)
        return await asyncio.get_running_loop().run_in_executor(self.reader, work, *args)

    def _state(self, query: Query) -> tuple[Any, int]:
        """The network's state as asked; 404/400 when it has none."""
        try:
            return self.service.state_at(query.network, query.at)
        except UnknownNetwork as error:
            raise ServiceError("404", str(error)) from None
        except PositionOutOfRange as error:
            raise ServiceError("400", str(error)) from None
        except DamagedLog as error:  # the store, not the request: an operator must look
            raise ServiceError("500", str(error)) from None

    async def status(self, request: Request) -> None:
        """SPEC §8 status document."""
        await self._respond(request, await self._read(self._status, _decode(_query, request.data)))

    async def directory(self, request: Request) -> None:
        """SPEC §8 directory document."""
        answer = await self._read(self._directory, _decode(_query, request.data))
        await self._respond(request, answer)

    async def networks(self, request: Request) -> None:
        """A page of networks with their positions and effective modes, sorted by name."""
        query = _decode(_networks_query, request.data)
        await self._respond(request, await self._read(self._networks, query))

    async def _respond(self, request: Request, answer: bytes) -> None:
        """Send the answer, or a 413 that says why when NATS cannot carry it."""
        limit = self.max_payload - REPLY_HEADROOM
        if self.max_payload and len(answer) > limit:
            raise ServiceError(
                "413",
                f"the answer is {len(answer):,} bytes, more than this NATS server carries "
                f"({self.max_payload:,}, max_payload): raise it, or read the store with the "
                "ctilink command itself",
            )
        await request.respond(answer)

    def _status(self, query: Query) -> bytes:
        return encode(status(*self._state(query)))

    def _directory(self, query: Query) -> bytes:
        return encode(directory(*self._state(query)))

    def _networks(self, query: NetworksQuery) -> bytes:
        try:
            # One damaged network must not hide the others (status names it).
            lines, _ = network_lines(self.service, query.filters())
        except DamagedIndex as error:
            raise ServiceError("500", str(error)) from None
        listing = [NetworkSummary.of(line) for line in lines]
        answer = encode(listing)
        if self.max_payload:
            # A page NATS cannot carry is cut short: the asker goes on after its last name.
            room = self.max_payload - REPLY_HEADROOM
            while len(answer) > room and len(listing) > 1:
                listing = listing[: len(listing) * room // len(answer) or 1]
                answer = encode(listing)
        return answer

    async def ingest(self, request: Request) -> None:
        """Apply one event now and say what became of it."""
        event = decode(request.data)
        network = named(request.data, "network") if isinstance(event, Invalid) else None
        # Kept like every rejection (source "api"), but answered here, not published.
        arrival = Arrival(event, API_SOURCE, None, network, request.data)
        outcome = (await self.ingestor.ingest([arrival]))[0]
        reply = IngestReply(outcome.outcome, outcome.position, outcome.code, outcome.message)
        await request.respond(encode(reply))


async def instances(nc: Client, wait: float = 0.3) -> int:
    """How many `ctilink serve` instances answer a ping of the service (this one included)."""
    inbox = nc.new_inbox()
    subscription = await nc.subscribe(inbox)
    seen: set[bytes] = set()
    try:
        await nc.publish(f"$SRV.PING.{NAME}", b"", reply=inbox)
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            try:
                reply = await subscription.next_msg(timeout=left)
            except Exception:  # nats-py's TimeoutError: nobody else answered in time
                break
            seen.add(reply.data)
    finally:
        await subscription.unsubscribe()
    return max(1, len(seen))


async def start_api(
    nc: Client,
    ingestor: Ingestor,
    metrics: Any = None,
    metadata: dict[str, str] | None = None,
    reads: Any = None,
) -> Api:
    """Register the micro service and its endpoints, in the shared queue group.

    `metadata` ($SRV.INFO and $SRV.PING) is kept by reference: what the service
    updates in it (the partitions it holds) is what the next answer says.
    """
    api = Api(ingestor, reads)
    api.max_payload = nc.max_payload
    api.micro = service = await add_service(
        nc,
        name=NAME,
        version=VERSION,
        queue_group=QUEUE_GROUP,
        description="CTI link state of one-X Portal networks",
        metadata=metadata if metadata is not None else {},
        # $SRV.STATS carries each endpoint's own figures too.
        stats_handler=None if metrics is None else (lambda stats: metrics.stats(stats.name)),
    )
    for name, handler in (
        ("status", api.status),
        ("directory", api.directory),
        ("networks", api.networks),
        ("ingest", api.ingest),
    ):
        timed = None if metrics is None else functools.partial(metrics.api_seconds.labels, name)
        await service.add_endpoint(
            name=name, subject=f"ctilink.api.{name}", handler=store_errors_as_503(handler, timed)
        )
    return api
