"""`ctilink web`: the console, served from a store alone (no NATS needed)."""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

from ctilink.adapters.cli.parents import Parents, add_log_level
from ctilink.adapters.ops.logs import announce, emit, use_format
from ctilink.adapters.store.selection import is_postgres, opens_immutable, resolve
from ctilink.adapters.web.limits import Limits, add_limit_arguments, limits_of
from ctilink.adapters.web.listener import (
    TOKEN_ENV,
    bind,
    listen_address,
    required_token,
    serve_until,
    url_of,
)
from ctilink.domain.application import NetworkService

DEFAULT_LISTEN = "127.0.0.1:8080"


def cmd_web(service: NetworkService, args: argparse.Namespace) -> int:
    """Serve the console until interrupted."""
    from ctilink.adapters.web.app import console  # only the console loads the web stack

    use_format("plain", "web", args.log_level)
    host, port = args.listen
    token = required_token(host, args.console_token)
    limits = limits_of(args)
    location = resolve(args.store)
    if not is_postgres(location) and opens_immutable(location):
        emit(
            "this user cannot write beside the store (its -shm file): the console shows "
            "the store as it is now and sees no later commit",
            logging.WARNING,
        )
    sock = bind(host, port)
    asyncio.run(_serve(console(service, token=token, limits=limits), sock, limits))
    emit("stopped", logging.INFO)
    return 0


async def _serve(app: Any, sock: Any, limits: Limits) -> None:
    """Serve until SIGINT or SIGTERM (heard from before the address is told)."""
    from ctilink.adapters.bootstrap import stop_on_signals

    with stop_on_signals() as stop:
        announce(f"listening on {url_of(sock)}")
        await serve_until(app, sock, stop, limits)


def add_token_argument(parser: argparse.ArgumentParser, flag: str = "--token") -> None:
    """The token option, for the console's readers."""
    parser.add_argument(
        flag,
        dest="console_token",
        help=f"a token readers must present (default ${TOKEN_ENV}); needed beyond loopback",
    )


def register(verbs: argparse._SubParsersAction, parents: Parents) -> None:
    """Add the command to the parser."""
    p = verbs.add_parser("web", parents=[parents.store])
    p.add_argument(
        "--listen",
        type=listen_address,
        default=listen_address(DEFAULT_LISTEN),
        metavar="HOST:PORT",
        help=f"where to listen (default {DEFAULT_LISTEN}; port 0 picks a free one)",
    )
    add_token_argument(p)
    add_limit_arguments(p)
    add_log_level(p)
    p.set_defaults(run=cmd_web)
