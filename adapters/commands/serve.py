"""`ctilink serve`: consume, publish and answer over NATS."""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl

from adapters.server import serve
from domain.service import NetworkService

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


def cmd_serve(service: NetworkService, args: argparse.Namespace) -> int:
    """Run the service until SIGINT or SIGTERM."""
    service.close()  # the server opens its own
    url = args.nats or os.environ.get(URL_ENV)
    return asyncio.run(serve(args.store, url, nats_options(args)))


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
    p.set_defaults(run=cmd_serve, creates_store=True)
