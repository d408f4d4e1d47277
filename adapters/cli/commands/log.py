"""`ctilink log` and `ctilink networks`: the logs and what they hold."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, cast

import msgspec

from ctilink.adapters.cli.connection import add_connection_arguments, nats_options
from ctilink.adapters.cli.output import emit_json, emit_json_array, encode_json
from ctilink.adapters.cli.render import print_table, table
from ctilink.adapters.nats.wire import NetworksQuery, NetworkSummary
from ctilink.adapters.store.listing import each_line
from ctilink.domain.application import NetworkService
from ctilink.domain.errors import DamagedLog
from ctilink.domain.messages import is_name
from ctilink.domain.mode import Mode
from ctilink.projections.log import entry, fields


def cmd_log(service: NetworkService, args: argparse.Namespace) -> int:
    """Print the network's log, one position per line."""
    service.head(args.network)  # unknown network -> exit 2
    if args.json:
        for event in service.log(args.network):
            emit_json(entry(event))
        return 0
    print_table(("position", "at", "actor", "type", "id", "fields"), _log_rows(service, args))
    return 0


def _log_rows(service: NetworkService, args: argparse.Namespace) -> Iterator[tuple[Any, ...]]:
    """The text table's rows, one per position, as the log is read."""
    for event in service.log(args.network):
        e = entry(event)
        detail = " ".join(f"{k}={encode_json(v).decode()}" for k, v in fields(e.event).items())
        yield (e.position, e.at.isoformat(timespec="seconds"), e.actor, e.type, e.event.id, detail)


def cmd_networks(service: NetworkService | None, args: argparse.Namespace) -> int:
    """List the networks (all, or those the filters pass) with position and effective mode."""
    query = NetworksQuery(
        effective=Mode(args.effective) if args.effective else None,
        restart_pending=True if args.restart_pending else None,
        name_prefix=args.name_prefix,
    )
    damaged: list[DamagedLog] = []
    if service is None:
        from ctilink.adapters.nats.remote import list_networks  # only --nats loads nats-py

        listing: Iterable[NetworkSummary] = list_networks(args.nats, query, nats_options(args))
    else:
        # A page at a time from the index: 100,000 networks are never held at once.
        lines = each_line(cast(NetworkService, service), query.filters(unpaged=True), damaged)
        listing = (NetworkSummary.of(line) for line in lines)
    if args.json:
        emit_json_array(listing)
    else:
        print_table(
            ("network", "position", "effective"),
            ((n.network, n.position, n.effective) for n in listing),
        )
    for error in damaged:
        print(f"ctilink: {error}", file=sys.stderr)
    return 2 if damaged else 0


def _name_prefix(text: str) -> str:
    """argparse type for --name-prefix: the start of a network name."""
    if not is_name(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not the start of a network name (1-64 of A-Z a-z 0-9 _ -)"
        )
    return text


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
    """Print the events that were rejected for a network, oldest first."""
    recorder: Any = service.recorder
    rows = []
    after = 0
    while page := recorder.rejections(network=args.network, after=after, limit=1000):
        after = page[-1][0]
        for _, r in page:
            entry = RejectionEntry(
                r.network,
                r.source,
                r.position,
                r.event_id,
                r.received,
                r.code,
                r.message,
                r.payload.decode("utf-8", "replace"),
            )
            if args.json:
                emit_json(entry)
            else:
                at = f"{r.source or '-'}:{r.position}" if r.position is not None else r.source
                rows.append(
                    (r.received.isoformat(timespec="seconds"), at, r.event_id, r.code, r.message)
                )
    if not args.json:
        print(table(("received", "from", "id", "code", "reason"), rows))
    return 0


def register(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the commands to the parser."""
    p = verbs.add_parser("log", parents=[common])
    p.add_argument("network")
    p.set_defaults(run=cmd_log)
    p = verbs.add_parser("rejections", parents=[common])
    p.add_argument("network", nargs="?", help="one network (default: every rejection)")
    p.set_defaults(run=cmd_rejections)
    p = verbs.add_parser("networks", parents=[common])
    p.add_argument(
        "--effective", choices=[mode.value for mode in Mode], help="only networks in this mode"
    )
    p.add_argument(
        "--restart-pending",
        action="store_true",
        help="only networks whose setting waits for a portal restart",
    )
    p.add_argument("--name-prefix", type=_name_prefix, metavar="P", help="only names starting so")
    add_connection_arguments(p, "ask a running `ctilink serve` instead of the store")
    p.set_defaults(run=cmd_networks, asks_service=True)
