"""`ctilink log` and `ctilink networks`: the logs and what they hold."""

from __future__ import annotations

import argparse
import sys

from ctilink.adapters.cli.connection import add_connection_arguments, nats_options
from ctilink.adapters.cli.output import emit_json, encode_json
from ctilink.adapters.cli.render import table
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
    rows = []
    for event in service.log(args.network):
        e = entry(event)
        detail = " ".join(f"{k}={encode_json(v).decode()}" for k, v in fields(e.event).items())
        rows.append(
            (e.position, e.at.isoformat(timespec="seconds"), e.actor, e.type, e.event.id, detail)
        )
    print(table(("position", "at", "actor", "type", "id", "fields"), rows))
    return 0


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


def register(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the commands to the parser."""
    p = verbs.add_parser("log", parents=[common])
    p.add_argument("network")
    p.set_defaults(run=cmd_log)
    p = verbs.add_parser("networks", parents=[common])
    add_connection_arguments(p, "ask a running `ctilink serve` instead of the store")
    p.set_defaults(run=cmd_networks, asks_service=True)
