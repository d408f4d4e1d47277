"""uvicorn's Server with ctilink's own accepting (adapters/web/edge.py) and no signal handling."""

from __future__ import annotations

import contextlib
import functools
import socket
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

from ctilink.adapters.ops.logs import json_logs
from ctilink.adapters.web.edge import Acceptor, Connections, Guarded, Throttle
from ctilink.adapters.web.limits import Limits


class ListenerFailed(RuntimeError):
    """The app did not start (its lifespan failed)."""


class Listener(uvicorn.Server):
    """A uvicorn server for the app on one socket, its connections guarded by the limits."""

    def __init__(
        self, app: Any, sock: socket.socket, limits: Limits, say: Callable[[str], None]
    ) -> None:
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            # With JSON logs, uvicorn's loggers keep the JSON handler given them.
            log_config=None if json_logs() else uvicorn.config.LOGGING_CONFIG,
            # Live pages hold their streams open: a stop does not wait on them for long
            # (their browsers reconnect to the next console and catch up).
            timeout_graceful_shutdown=2,
            timeout_keep_alive=max(1, round(limits.idle_timeout)),
            http="h11",
            ws="none",  # the console has no websockets
            lifespan="on",
        )
        super().__init__(config)
        self.sock = sock
        self.limits = limits
        self.connections = Connections(limits)
        self.throttle = Throttle(say)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """The caller hears SIGINT and SIGTERM, and sets `should_exit`."""
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """The app's lifespan, then accepting on the socket."""
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            raise ListenerFailed("the console did not start")
        make = functools.partial(
            Guarded,
            self.connections,
            config=self.config,
            server_state=self.server_state,
            app_state=self.lifespan.state,
        )
        self.servers = [Acceptor(self.sock, make, self.connections, self.throttle)]  # type: ignore[list-item]
        self.started = True
