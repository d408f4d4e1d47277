"""`ctilink log` and `ctilink networks`: the logs and what they hold."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import msgspec

from ctilink.adapters.cli.connection import add_connection_arguments, nats_options
from ctilink.adapters.cli.output import emit_json, encode_json
from ctilink.adapters.cli.render import print_table, table
from ctilink.adapters.nats.wire import NetworkSummary, NoArguments
from ctilink.adapters.store.selection import network_heads
from ctilink.domain.errors import DamagedLog
from ctilink.domain.service import NetworkService
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
    """List every network with its position and effective mode."""
    if service is None:
        from ctilink.adapters.nats.remote import ask  # only --nats loads nats-py

        _, listing = ask(
            args.nats, "networks", NoArguments(), nats_options(args), list[NetworkSummary]
        )
    else:
        listing, damaged = [], []
        for name, position in network_heads(service):
            try:
                state, _ = service.state_at(name, hold=False)
            except DamagedLog as error:  # the healthy networks are listed all the same
                damaged.append(error)
                continue
            listing.append(NetworkSummary(name, position, state.effective.value))
    if args.json:
        emit_json(listing)
    else:
        rows = [(n.network, n.position, n.effective) for n in listing]
        print(table(("network", "position", "effective"), rows))
    if service is not None and damaged:
        for error in damaged:
            print(f"ctilink: {error}", file=sys.stderr)
        return 2
    return 0


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
    add_connection_arguments(p, "ask a running `ctilink serve` instead of the store")
    p.set_defaults(run=cmd_networks, asks_service=True)
