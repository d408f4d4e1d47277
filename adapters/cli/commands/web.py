"""`ctilink web`: the console, served from a store alone (no NATS needed)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys

from ctilink.adapters.errors import UserError
from ctilink.adapters.store.service import StoredNetworks

TOKEN_ENV = "CTILINK_WEB_TOKEN"
DEFAULT_LISTEN = "127.0.0.1:8080"


def listen_address(text: str) -> tuple[str, int]:
    """argparse type for --listen HOST:PORT (an IPv6 host in brackets)."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isascii() or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:8080)")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach the host."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def cmd_web(service: StoredNetworks, args: argparse.Namespace) -> int:
    """Serve the console until interrupted."""
    import uvicorn  # only the console loads the web stack

    from ctilink.adapters.web.app import console

    host, port = args.listen
    token = args.token or os.environ.get(TOKEN_ENV) or None
    if token is None and not is_loopback(host):
        raise UserError(
            f"the console listens on {host}, beyond this machine: give it a token "
            f"(--token or ${TOKEN_ENV}) that readers must present"
        )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    sock.listen(2048)  # connections wait in the backlog until the server takes them
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if family == socket.AF_INET6 else bound_host
    print(f"ctilink web: listening on http://{shown}:{bound_port}/", flush=True)
    config = uvicorn.Config(
        console(service, token=token),
        log_level="warning",
        access_log=False,
        # Live pages hold their streams open: a stop does not wait on them for long
        # (their browsers reconnect to the next console and catch up).
        timeout_graceful_shutdown=2,
    )
    uvicorn.Server(config).run(sockets=[sock])
    print("ctilink web: stopped", file=sys.stderr)
    return 0


def register(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the command to the parser."""
    p = verbs.add_parser("web", parents=[common])
    p.add_argument(
        "--listen",
        type=listen_address,
        default=listen_address(DEFAULT_LISTEN),
        metavar="HOST:PORT",
        help=f"where to listen (default {DEFAULT_LISTEN}; port 0 picks a free one)",
    )
    p.add_argument(
        "--token",
        help=f"a token readers must present (default ${TOKEN_ENV}); needed beyond loopback",
    )
    p.set_defaults(run=cmd_web)
