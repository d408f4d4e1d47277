"""What the HTTP listener allows: connections, live streams, and how long each may take.

Each setting is an option of `ctilink web` and `ctilink serve` (`--http-…`), or
an environment variable (`CTILINK_HTTP_…`); the caps default to shares of the
process's file-descriptor limit (`ulimit -n`, systemd's `LimitNOFILE`), so that
HTTP clients can never take the descriptors the store and NATS need.
"""

from __future__ import annotations

import argparse
import os
import resource
from dataclasses import dataclass

from ctilink.adapters.errors import UserError

RESERVED_FDS = 64  # the store, NATS, the embedded server's and publisher's pipes, logs
MOST_CONNECTIONS = 4096  # a default never above this, however high the limit
IDLE_TIMEOUT = 15.0  # seconds a connection may wait before (or between) requests
REQUEST_TIMEOUT = 10.0  # seconds from a request's first byte until it has arrived whole
WRITE_TIMEOUT = 30.0  # seconds a client may leave an answer unread


@dataclass(frozen=True)
class Limits:
    """The listener's caps and timeouts."""

    max_connections: int
    max_live: int  # live pages' streams open at once; past it, 503
    idle_timeout: float = IDLE_TIMEOUT
    request_timeout: float = REQUEST_TIMEOUT
    write_timeout: float = WRITE_TIMEOUT


def descriptor_limit() -> int:
    """The process's soft limit on open files."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def default_connections(descriptors: int) -> int:
    """Half of what is left beside the reserve (1,024 descriptors: 480 connections)."""
    return max(8, min(MOST_CONNECTIONS, (descriptors - RESERVED_FDS) // 2))


def default_live(connections: int) -> int:
    """A quarter of the connections: the rest stay free for pages."""
    return max(2, connections // 4)


# (option, environment variable, type, what it sets)
SETTINGS = (
    ("--http-max-connections", "CTILINK_HTTP_MAX_CONNECTIONS", int, "max_connections"),
    ("--http-max-live", "CTILINK_HTTP_MAX_LIVE", int, "max_live"),
    ("--http-idle-timeout", "CTILINK_HTTP_IDLE_TIMEOUT", float, "idle_timeout"),
    ("--http-request-timeout", "CTILINK_HTTP_REQUEST_TIMEOUT", float, "request_timeout"),
    ("--http-write-timeout", "CTILINK_HTTP_WRITE_TIMEOUT", float, "write_timeout"),
)
HELP = {
    "max_connections": "connections held at once; a new one past it closes the one idle the "
    "longest (default: half the file-descriptor limit left after 64, at most 4,096)",
    "max_live": "live pages' streams open at once, past which a stream is refused with 503 "
    "(default: a quarter of the connections)",
    "idle_timeout": f"seconds a connection may send nothing (default {IDLE_TIMEOUT:g})",
    "request_timeout": "seconds a request may take to arrive whole from its first byte "
    f"(default {REQUEST_TIMEOUT:g})",
    "write_timeout": "seconds a client may leave an answer unread before it is dropped "
    f"(default {WRITE_TIMEOUT:g})",
}


def positive(kind: type) -> object:
    """argparse type: a number above zero."""

    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not value > 0 or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{text!r} is not a number above 0")
        return value  # type: ignore[no-any-return]

    return parse


def add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    """The listener's settings as options."""
    for flag, env, kind, name in SETTINGS:
        parser.add_argument(
            flag, dest=f"http_{name}", type=positive(kind), help=f"{HELP[name]}; or ${env}"
        )


def limits_of(args: argparse.Namespace | None = None, descriptors: int | None = None) -> Limits:
    """The settings given as options, else in the environment, else the defaults
    (UserError names a bad environment variable)."""
    given: dict[str, float | int] = {}
    for _, env, kind, name in SETTINGS:
        value = getattr(args, f"http_{name}", None)
        if value is None and os.environ.get(env):
            try:
                value = positive(kind)(os.environ[env])  # type: ignore[operator]
            except argparse.ArgumentTypeError as error:
                raise UserError(f"${env}: {error}") from None
        if value is not None:
            given[name] = value
    connections = int(
        given.get("max_connections") or default_connections(descriptors or descriptor_limit())
    )
    live = int(given.get("max_live") or default_live(connections))
    timeouts = {k: float(v) for k, v in given.items() if k.endswith("_timeout")}
    return Limits(connections, live, **timeouts)
