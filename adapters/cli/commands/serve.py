"""`ctilink serve`: consume, publish and answer over NATS."""

from __future__ import annotations

import argparse
import asyncio
import sys

from ctilink.adapters import bootstrap
from ctilink.adapters.cli.commands.web import add_token_argument
from ctilink.adapters.cli.connection import (
    add_connection_arguments,
    connection_argv,
    nats_options,
    nats_url,
)
from ctilink.adapters.cli.parents import Parents, add_log_level
from ctilink.adapters.nats.remote import RemoteError
from ctilink.adapters.nats.streams import (
    DEFAULT_OUT_MAX_AGE,
    OUT_MAX_AGE_ENV,
    OUT_MAX_BYTES_ENV,
    out_retention,
)
from ctilink.adapters.ops.logs import FORMATS, use_format
from ctilink.adapters.store.selection import MEMORY, StoreError, resolve
from ctilink.adapters.web.limits import add_limit_arguments, limits_of
from ctilink.adapters.web.listener import bind, listen_address, required_token
from ctilink.domain.application import NetworkService


def shared_store(store: str | None, command: str) -> None:
    """Refuse a store that a second process cannot open (StoreError)."""
    if resolve(store) == MEMORY:
        raise StoreError(
            f"{command} needs a store its publisher can open too: a SQLite file or "
            "postgresql://…, not memory://"
        )


def cmd_serve(service: NetworkService | None, args: argparse.Namespace) -> int:
    """Run the service until SIGINT or SIGTERM (it opens the store itself, waiting for it)."""
    use_format(args.log_format, "serve", args.log_level)
    shared_store(args.store, "serve")
    url = nats_url(args)
    retention = out_retention(args.out_max_age, args.out_max_bytes)  # refused now, if bad
    publisher = None
    if not args.publisher_in_process:
        argv, env = connection_argv(args)
        store = ["--store", args.store] if args.store else []
        logs = ["--log-format", args.log_format, "--log-level", args.log_level]
        command = [sys.executable, "-m", "ctilink.adapters.cli", "publish", *store, *argv, *logs]
        publisher = (command, env)
    http = token = limits = None
    if args.http is not None:  # refused now, not once NATS and the store are up
        host, port = args.http
        token = required_token(host, args.console_token, "--http-token")
        limits = limits_of(args)
        http = bind(host, port)
    config = bootstrap.ServeConfig(
        args.store,
        url,
        nats_options(args),
        publisher,
        nats_port=args.nats_port,
        sync_always=args.sync == "always",
        http=http,
        token=token,
        limits=limits,
        per_network=args.metrics_per_network,
        retention=retention,
    )
    return asyncio.run(bootstrap.serve(config))


def cmd_publish(service: NetworkService | None, args: argparse.Namespace) -> int:
    """Publish the store's log to CTILINK_OUT until SIGINT or SIGTERM."""
    use_format(args.log_format, "publish", args.log_level)
    shared_store(args.store, "publish")
    url = nats_url(args)
    if not url:
        raise RemoteError("publish needs --nats URL (or $CTILINK_NATS_URL)")
    return asyncio.run(bootstrap.publish(args.store, url, nats_options(args)))


def port_number(text: str) -> int:
    """argparse type: a TCP port, 1 to 65535."""
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1 to 65535)")
    return port


def register(verbs: argparse._SubParsersAction, parents: Parents) -> None:
    """Add the command to the parser."""
    p = verbs.add_parser("serve", parents=[parents.store])
    add_connection_arguments(p)
    p.add_argument(
        "--nats-port",
        type=port_number,
        metavar="PORT",
        help="without --nats: the embedded server's port (default: the one it had, kept "
        "beside the store; a free one the first time)",
    )
    p.add_argument(
        "--sync",
        choices=("always", "interval"),
        default="interval",
        help="without --nats: 'always' has the embedded server sync every JetStream write "
        "before acking it (a power cut loses nothing acked; slower); 'interval' syncs "
        "every 2 minutes (nats-server's default)",
    )
    p.add_argument(
        "--publisher-in-process",
        action="store_true",
        help="publish from this process rather than a second one (one core only)",
    )
    p.add_argument(
        "--http",
        type=listen_address,
        metavar="HOST:PORT",
        help="also serve the web console there (docs/console.md), with a live tail of rejections",
    )
    add_token_argument(p, "--http-token")  # --token is NATS's
    add_limit_arguments(p)
    p.add_argument(
        "--metrics-per-network",
        action="store_true",
        help="also per-network series on /metrics (each scrape folds every network)",
    )
    add_retention_arguments(p)
    add_log_format(p)
    p.set_defaults(run=cmd_serve, uses_store=False)
    p = verbs.add_parser("publish", parents=[parents.store])
    add_connection_arguments(p)
    add_log_format(p)
    p.set_defaults(run=cmd_publish, uses_store=False)


def add_retention_arguments(parser: argparse.ArgumentParser) -> None:
    """--out-max-age, --out-max-bytes: what a new CTILINK_OUT keeps."""
    parser.add_argument(
        "--out-max-age",
        metavar="AGE",
        help=f"a new CTILINK_OUT keeps messages this long: 30d, 12h, 0 for ever (default: "
        f"${OUT_MAX_AGE_ENV}, else {DEFAULT_OUT_MAX_AGE}); an existing stream keeps its own "
        "limits (`ctilink streams` changes them)",
    )
    parser.add_argument(
        "--out-max-bytes",
        metavar="SIZE",
        help=f"a new CTILINK_OUT keeps at most this much: 20GB, 512MiB, 0 for no limit "
        f"(default: ${OUT_MAX_BYTES_ENV}, else no limit)",
    )


def add_log_format(parser: argparse.ArgumentParser) -> None:
    """--log-format plain|json and --log-level."""
    parser.add_argument(
        "--log-format",
        choices=FORMATS,
        default="plain",
        help="plain lines: time, level, message (default); or one JSON object per line "
        "(time, level, message, fields)",
    )
    add_log_level(parser)
