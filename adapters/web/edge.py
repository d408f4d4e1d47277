"""The HTTP edge: connections taken one at a time, counted, timed out, displaced at the cap.

uvicorn 0.54 never times out a connection that has sent no request, and the
accept loop of Python 3.11's asyncio logs every `EMFILE` it meets, up to the
listen backlog each time the socket wakes it (a flood of tracebacks). So the
listener takes connections itself (`Acceptor`), one `accept()` at a time, and
gives each to uvicorn's h11 protocol, watched (`Guarded`):

- a connection that sends no request is closed after `idle_timeout`;
- a request that has begun must have arrived whole (head and body) within
  `request_timeout` of its first byte, however slowly it trickles in;
- a response the client does not read (the socket's buffer full) for
  `write_timeout` ends the connection;
- at `max_connections`, a new connection displaces the one idle the longest;
  with none idle (every one busy with a request), it is answered 503 at once.

Running out of file descriptors, or any other trouble accepting, is logged
once per interval with a count (`Throttle`), never once per attempt.

The uvicorn internals used here (`H11Protocol`'s hooks, `Server.startup`) are
those of uvicorn 0.54, which pyproject pins.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from ctilink.adapters.web.limits import Limits

# Errors of accept() that mean "no room now" rather than a broken socket.
SHORTAGE = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# Errors of accept() about one connection only (it went away before it was taken).
PASSING = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.ENETDOWN})
RETRY_SECONDS = 0.05  # after a shortage: a pause, so that accept() is not spun on
LOG_INTERVAL = 10.0  # seconds between two log lines about one kind of trouble
KINDS_KEPT = 1000  # kinds of trouble remembered at once
_BUSY = b"ctilink: every connection is busy; try again in a second\n"
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nretry-after: 1\r\nconnection: close\r\n\r\n%s" % (len(_BUSY), _BUSY)
)


class Intervals:
    """For each kind of thing, whether one may pass now: one per interval, the rest counted."""

    def __init__(self, interval: float = LOG_INTERVAL) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def passes(self, kind: str) -> int | None:
        """None: hold this one back; else how many were held back since the last to pass."""
        now = time.monotonic()
        if now - self._last.get(kind, -self.interval) < self.interval:
            self._held[kind] = self._held.get(kind, 0) + 1
            return None
        if len(self._last) >= KINDS_KEPT:  # messages that vary without end: forget the old
            self._last = {k: t for k, t in self._last.items() if now - t < self.interval}
            self._held = {k: n for k, n in self._held.items() if k in self._last}
        self._last[kind] = now
        return self._held.pop(kind, 0)


def _held(count: int) -> str:
    return f" ({count:,} more like it held back)" if count else ""


class Throttle:
    """One log line per interval for one kind of trouble, saying how many were held back."""

    def __init__(self, say: Callable[[str], None], interval: float = LOG_INTERVAL) -> None:
        self.say = say
        self.intervals = Intervals(interval)

    def note(self, kind: str, line: str) -> None:
        """Log the line unless one of this kind was logged less than an interval ago."""
        held = self.intervals.passes(kind)
        if held is not None:
            self.say(line + _held(held))


class QuietLogs(logging.Filter):
    """A logger's records, at most one per interval for each message (uvicorn's per-request
    warnings and asyncio's errors would otherwise fill a disk under a flood)."""

    def __init__(self, interval: float = LOG_INTERVAL) -> None:
        super().__init__()
        self.intervals = Intervals(interval)

    def filter(self, record: logging.LogRecord) -> bool:
        held = self.intervals.passes(f"{record.name}:{record.msg}")
        if held:
            record.msg = f"{record.msg}{_held(held)}"
        return held is not None


@contextlib.contextmanager
def quiet(names: tuple[str, ...] = ("uvicorn.error", "asyncio")) -> Iterator[None]:
    """Those loggers throttled while the block runs."""
    quieting = QuietLogs()
    loggers = [logging.getLogger(name) for name in names]
    for logger in loggers:
        logger.addFilter(quieting)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(quieting)


class Connections:
    """The listener's open connections; the idle ones in the order they fell idle."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.open: set[Guarded] = set()
        self.idle: dict[Guarded, None] = {}  # a dict keeps order: the oldest idle first
        self.displaced = 0
        self.refused = 0

    def full(self) -> bool:
        """Whether the next connection needs room made for it."""
        return len(self.open) >= self.limits.max_connections

    def displace(self) -> bool:
        """Close the connection idle the longest; False when none is idle."""
        oldest = next(iter(self.idle), None)
        if oldest is None:
            return False
        oldest.drop()
        self.displaced += 1
        return True

    def forget(self, connection: Guarded) -> None:
        """A connection closed."""
        self.open.discard(connection)
        self.idle.pop(connection, None)


IDLE, READING, BUSY = "idle", "reading", "busy"


class Guarded(H11Protocol):
    """uvicorn's h11 protocol, timed and counted: idle, reading a request, or busy with one."""

    def __init__(self, registry: Connections, **uvicorn: Any) -> None:
        super().__init__(**uvicorn)
        self.registry = registry  # (uvicorn's own `connections` is its server's set)
        self.state = ""
        self.deadline: asyncio.TimerHandle | None = None
        self.stall: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.registry.open.add(self)
        self._settle(received=False)

    def connection_lost(self, exc: Exception | None) -> None:
        self.registry.forget(self)
        for timer in (self.deadline, self.stall):
            if timer is not None:
                timer.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._settle(received=True)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._settle(received=False)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.stall is None:
            limit = self.registry.limits.write_timeout
            self.stall = self.loop.call_later(limit, self.reset)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.stall is not None:
            self.stall.cancel()
            self.stall = None

    def drop(self) -> None:
        """Close now (what is left to send is not waited for)."""
        self.registry.forget(self)
        if self.transport.get_write_buffer_size():
            self.reset()
        else:
            self.transport.close()

    def reset(self) -> None:
        """Close with a reset: what the client left unread is let go by the kernel too."""
        self.registry.forget(self)
        sock = self.transport.get_extra_info("socket")
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    def _settle(self, *, received: bool) -> None:
        """Where the connection stands after what just happened, and its timer."""
        if self.transport.is_closing():
            self.registry.forget(self)
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            state = READING if cycle.more_body else BUSY
        elif received or self.state == READING:
            state = READING  # a request has begun (its head is incomplete)
        else:
            state = IDLE
        if state == self.state:
            return  # a request trickling in keeps the deadline of its first byte
        self.state = state
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
        limits = self.registry.limits
        if state == BUSY:
            self.registry.idle.pop(self, None)
            return
        self.registry.idle.setdefault(self, None)
        timeout = limits.idle_timeout if state == IDLE else limits.request_timeout
        self.deadline = self.loop.call_later(timeout, self.drop)


class Acceptor:
    """Takes connections off the listening socket, one accept() at a time, making room at
    the cap; what uvicorn's Server calls a server (`close`, `wait_closed`)."""

    def __init__(
        self,
        sock: socket.socket,
        make: Callable[[], asyncio.Protocol],
        connections: Connections,
        throttle: Throttle,
    ) -> None:
        self.sock = sock
        self.make = make
        self.connections = connections
        self.throttle = throttle
        sock.setblocking(False)
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(self.sock)
            except OSError as error:
                made_room = self._trouble(error)
                # Room made: its descriptor is let go in the loop's next turn.
                await asyncio.sleep(0 if made_room or error.errno in PASSING else RETRY_SECONDS)
                continue
            if self.connections.full() and not self.connections.displace():
                self._refuse(conn)
                continue
            try:
                # A response's head and body go out at once, never 40 ms apart (Nagle's
                # wait for a delayed ACK): asyncio sets this only on sockets made with
                # proto IPPROTO_TCP.
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                await loop.connect_accepted_socket(self.make, conn)
            except OSError as error:
                conn.close()
                self._trouble(error)
            except Exception as error:  # one connection's trouble never stops the accepting
                conn.close()
                self.throttle.note("connect", f"the HTTP listener dropped a connection: {error!r}")

    def _trouble(self, error: OSError) -> bool:
        """A failed accept(): logged once an interval; a shortage makes room (True: made)."""
        if error.errno in SHORTAGE:
            made = self.connections.displace()  # an idle connection's descriptor for the next
            self.throttle.note(
                "shortage",
                f"the HTTP listener cannot take a connection: {error.strerror or error} "
                f"({len(self.connections.open):,} open; the idle longest is closed to make room)",
            )
            return made
        if error.errno not in PASSING:
            self.throttle.note("accept", f"the HTTP listener cannot accept: {error}")
        return False

    def _refuse(self, conn: socket.socket) -> None:
        """Every connection busy: a 503 at once, and closed."""
        self.connections.refused += 1
        with contextlib.suppress(OSError):
            conn.setblocking(False)
            conn.send(REFUSAL)
        conn.close()
        most = self.connections.limits.max_connections
        self.throttle.note(
            "full",
            f"the HTTP listener refused a connection: all {most:,} are busy with requests "
            "(--http-max-connections)",
        )

    def close(self) -> None:
        """Take no more connections; the socket is closed once accept() is left."""
        self.task.cancel()
        self.task.add_done_callback(lambda _: self.sock.close())

    async def wait_closed(self) -> None:
        """Until the accepting has stopped."""
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
