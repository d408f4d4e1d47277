"""`ctilink serve`: consume, publish and answer over NATS."""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import sys

from ctilink.adapters.nats.remote import RemoteError
from ctilink.adapters.nats.service import publish_forever, serve
from ctilink.domain.service import NetworkService

URL_ENV = "CTILINK_NATS_URL"


def nats_options(args: argparse.Namespace) -> dict[str, object]:
    """Credentials and TLS, in the keywords nats.connect() takes."""
    options: dict[str, object] = {}
    if args.creds:
        options["user_credentials"] = args.creds
    if args.user:
        options["user"] = args.user
        options["password"] = args.password or os.environ.get("CTILINK_NATS_PASSWORD", "")
    if args.token:
        options["token"] = args.token
    if args.tls_ca or args.tls_cert:
        context = ssl.create_default_context(cafile=args.tls_ca)
        if args.tls_cert:
            context.load_cert_chain(args.tls_cert, args.tls_key)
        options["tls"] = context
    return options


def connection_argv(args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """The connection options as arguments for a child process (password in its env)."""
    argv: list[str] = []
    for flag in ("creds", "user", "token", "tls_ca", "tls_cert", "tls_key"):
        value = getattr(args, flag)
        if value:
            argv += [f"--{flag.replace('_', '-')}", value]
    env = dict(os.environ)
    if args.password:
        env["CTILINK_NATS_PASSWORD"] = args.password
    return argv, env


def cmd_serve(service: NetworkService, args: argparse.Namespace) -> int:
    """Run the service until SIGINT or SIGTERM."""
    service.close()  # the server opens its own
    url = args.nats or os.environ.get(URL_ENV)
    publisher = None
    if not args.publisher_in_process:
        argv, env = connection_argv(args)
        store = ["--store", args.store] if args.store else []
        command = [sys.executable, "-m", "ctilink.adapters.cli", "publish", *store, *argv]
        publisher = (command, env)
    return asyncio.run(serve(args.store, url, nats_options(args), publisher))


def cmd_publish(service: NetworkService, args: argparse.Namespace) -> int:
    """Publish the store's log to CTILINK_OUT until SIGINT or SIGTERM."""
    service.close()
    url = args.nats or os.environ.get(URL_ENV)
    if not url:
        raise RemoteError("publish needs --nats URL (or $CTILINK_NATS_URL)")
    return asyncio.run(publish_forever(args.store, url, nats_options(args)))


def add_connection_arguments(p: argparse.ArgumentParser, what: str = "") -> None:
    """--nats and the credential options."""
    default = f"NATS server (default: ${URL_ENV})"
    p.add_argument("--nats", metavar="URL", help=what or default)
    p.add_argument("--creds", help="NATS credentials file")
    p.add_argument("--user", help="NATS user")
    p.add_argument("--password", help="NATS password (or $CTILINK_NATS_PASSWORD)")
    p.add_argument("--token", help="NATS token")
    p.add_argument("--tls-ca", help="CA file to verify the server")
    p.add_argument("--tls-cert", help="client certificate")
    p.add_argument("--tls-key", help="client key")


def register(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the command to the parser."""
    p = verbs.add_parser(
        "serve",
        parents=[common],
        help="consume ctilink.in.*, publish to CTILINK_OUT, answer ctilink.api.* "
        "(without --nats: starts its own nats-server)",
    )
    add_connection_arguments(p)
    p.add_argument(
        "--publisher-in-process",
        action="store_true",
        help="publish from this process rather than a second one (one core only)",
    )
    p.set_defaults(run=cmd_serve, creates_store=True)
    p = verbs.add_parser(
        "publish",
        parents=[common],
        help="publish the store's log to CTILINK_OUT (serve runs this in a second process)",
    )
    add_connection_arguments(p)
    p.set_defaults(run=cmd_publish, creates_store=True)
