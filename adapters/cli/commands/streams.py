"""`ctilink streams`: the JetStream streams' limits and contents; CTILINK_OUT's limits changed."""

from __future__ import annotations

import argparse
import asyncio

from ctilink.adapters.cli.connection import add_connection_arguments, nats_target
from ctilink.adapters.cli.output import emit_json
from ctilink.adapters.cli.parents import Parents
from ctilink.adapters.cli.render import print_table
from ctilink.adapters.nats.remote import connected
from ctilink.adapters.nats.streams import (
    describe,
    duration,
    set_out_limits,
    size,
)


def cmd_streams(service: object, args: argparse.Namespace) -> int:
    """Show both streams; with --out-max-age/--out-max-bytes, change CTILINK_OUT's first."""
    url, options = nats_target(args, "streams")
    age = None if args.out_max_age is None else duration(args.out_max_age, "--out-max-age")
    most = None if args.out_max_bytes is None else size(args.out_max_bytes, "--out-max-bytes")

    async def run() -> list:  # type: ignore[type-arg]
        async with connected(url, options) as nc:
            js = nc.jetstream()
            if age is not None or most is not None:
                await set_out_limits(js, age, most)
            return await describe(js)

    views = asyncio.run(run())
    if args.json:
        emit_json(views)
        return 0
    print_table(
        [
            "stream",
            "retention",
            "replicas",
            "max age",
            "max bytes",
            "messages",
            "bytes",
            "subjects",
        ],
        [
            [
                v.name,
                v.retention,
                v.replicas,
                _age(v.max_age_seconds),
                f"{v.max_bytes:,}" if v.max_bytes else "no limit",
                f"{v.messages:,}",
                f"{v.bytes:,}",
                " ".join(v.subjects),
            ]
            for v in views
        ],
    )
    return 0


def _age(seconds: float) -> str:
    """A limit in days, hours or seconds, as it was most likely given."""
    if not seconds:
        return "no limit"
    for unit, length in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds % length == 0:
            return f"{int(seconds // length)}{unit}"
    return f"{seconds:g}s"


def register(verbs: argparse._SubParsersAction, parents: Parents) -> None:
    """Add the command to the parser."""
    p = verbs.add_parser("streams", parents=parents.both)
    add_connection_arguments(p)
    p.add_argument("--out-max-age", metavar="AGE", help="set CTILINK_OUT's max age (30d; 0: none)")
    p.add_argument(
        "--out-max-bytes", metavar="SIZE", help="set CTILINK_OUT's max bytes (20GB; 0: none)"
    )
    p.set_defaults(run=cmd_streams, uses_store=False)
