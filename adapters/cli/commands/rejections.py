"""`ctilink rejections`: the events that were rejected, from every source, with the reason."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import msgspec

from ctilink.adapters.cli.argtypes import network_name
from ctilink.adapters.cli.as_of import rfc3339
from ctilink.adapters.cli.output import encode_json
from ctilink.adapters.cli.parents import Parents
from ctilink.adapters.cli.render import print_table
from ctilink.adapters.errors import UserError
from ctilink.adapters.store.queries.rejections import rejections
from ctilink.domain.application import NetworkService
from ctilink.domain.arrivals import Rejection
from ctilink.domain.errors import Code

PAGE = 1000  # rejections read a query at a time


class RejectionEntry(msgspec.Struct, frozen=True):
    """`rejections --json`: one rejected event, as kept."""

    network: str | None
    source: str | None  # nats:<stream>:<partition>@<stream created>, file:<path>, api
    position: int | None  # in its source: stream sequence, line number
    id: str | None
    received: datetime
    code: str
    message: str
    payload: str  # as sent (its first 64 KiB), as text


def cmd_rejections(service: NetworkService, args: argparse.Namespace) -> int:
    """Print the rejected events the filters keep, oldest first."""
    if args.network and args.network_option and args.network != args.network_option:
        raise UserError("rejections: name the network once (NETWORK or --network)")
    network = args.network or args.network_option
    found = kept(service, network, args.code, args.since)
    if args.json:
        out = sys.stdout.buffer
        for r in found:
            out.write(encode_json(as_entry(r)) + b"\n")
        return 0
    print_table(("received", "network", "from", "id", "code", "reason"), map(row, found))
    return 0


def kept(
    service: NetworkService, network: str | None, code: str | None, since: datetime | None
) -> Iterator[Rejection]:
    """The rejections the filters keep, in commit order, a page at a time (filtered by the
    store: ctilink_rejections may hold millions of rows)."""
    recorder: Any = service.recorder
    after = 0
    while page := rejections(
        recorder, network=network, after=after, limit=PAGE, code=code, since=since
    ):
        after = page[-1][0]
        for _, rejection in page:
            yield rejection


def as_entry(r: Rejection) -> RejectionEntry:
    """A rejection as `--json` prints it."""
    payload = r.payload.decode("utf-8", "replace")
    return RejectionEntry(
        r.network, r.source, r.position, r.event_id, r.received, r.code, r.message, payload
    )


def row(r: Rejection) -> tuple[Any, ...]:
    """A rejection as a row of the table."""
    where = f"{r.source or '-'}:{r.position}" if r.position is not None else r.source
    received = r.received.isoformat(timespec="seconds")
    return (received, r.network, where, r.event_id, r.code, r.message)


def register(verbs: argparse._SubParsersAction, parents: Parents) -> None:
    """Add the command to the parser."""
    p = verbs.add_parser("rejections", parents=parents.both)
    p.add_argument("network", nargs="?", type=network_name, help="one network (as --network)")
    p.add_argument(
        "--network",
        dest="network_option",
        type=network_name,
        metavar="N",
        help="only the rejections of this network",
    )
    p.add_argument(
        "--code",
        choices=[code.value for code in Code],
        metavar="C",
        help=f"only this code (any of: {', '.join(code.value for code in Code)})",
    )
    p.add_argument(
        "--since",
        type=rfc3339,
        metavar="T",
        help="only those received at or after this RFC 3339 time",
    )
    p.set_defaults(run=cmd_rejections)
