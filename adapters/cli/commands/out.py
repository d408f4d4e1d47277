"""`ctilink out`: CTILINK_OUT replayed from any sequence, and followed, as a reader may."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys

from ctilink.adapters.cli.connection import add_connection_arguments, nats_target
from ctilink.adapters.cli.output import encode_json
from ctilink.adapters.cli.parents import Parents
from ctilink.adapters.cli.render import safe
from ctilink.adapters.nats.outbound import EVERY_SUBJECT, Stored, read
from ctilink.adapters.nats.remote import connected

SHOWN = 100  # characters of a body shown on a terminal line


def cmd_out(service: object, args: argparse.Namespace) -> int:
    """Print CTILINK_OUT's messages from --since (default: the first); --follow waits for more."""
    url, options = nats_target(args, "out")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with connected(url, options) as nc:
            reading = asyncio.ensure_future(
                _print(read(nc, args.since, args.subject, args.follow), args.json)
            )
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not reading.done():  # stopped by a signal while following: a clean end
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reading
            else:
                reading.result()

    asyncio.run(run())
    return 0


async def _print(messages: object, as_json: bool) -> None:
    """Each message as a JSON line, or as one readable line."""
    out = sys.stdout
    async for message in messages:  # type: ignore[attr-defined]
        assert isinstance(message, Stored)
        if as_json:
            out.write(encode_json(message).decode() + "\n")
        else:
            body = json.dumps(message.data, ensure_ascii=False, separators=(",", ":"))
            shown = body if len(body) <= SHOWN else body[: SHOWN - 1] + "…"
            out.write(
                f"{message.seq:>8}  {message.time[:23]}  {safe(message.subject)}  {safe(shown)}\n"
            )
        out.flush()


def since(text: str) -> int:
    """argparse type: a stream sequence from 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a stream sequence (a number from 1)")
    return int(text)


def register(verbs: argparse._SubParsersAction, parents: Parents) -> None:
    """Add the command to the parser."""
    p = verbs.add_parser("out", parents=parents.both)
    add_connection_arguments(p)
    p.add_argument("--since", type=since, default=1, metavar="SEQ", help="from this sequence")
    p.add_argument(
        "--subject",
        default=EVERY_SUBJECT,
        help=f"only these subjects (NATS wildcards; default {EVERY_SUBJECT}: every one)",
    )
    p.add_argument("--follow", action="store_true", help="wait for new messages (until SIGINT)")
    p.set_defaults(run=cmd_out, uses_store=False)
