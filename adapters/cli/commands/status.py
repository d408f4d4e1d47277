"""`ctilink status` and `ctilink directory`: the SPEC §8 documents, now or as of a position.

`--at-time` finds the position from the recorded times (adapters/commands/history.py).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ctilink.adapters.cli.as_of import add_as_of, as_of
from ctilink.adapters.cli.connection import add_connection_arguments, nats_options
from ctilink.adapters.cli.output import emit_json
from ctilink.adapters.cli.parents import Parents
from ctilink.adapters.cli.render import pairs, safe, table
from ctilink.adapters.nats.wire import Query
from ctilink.domain.application import NetworkService
from ctilink.projections.directory import Directory, directory
from ctilink.projections.log import entry
from ctilink.projections.status import Status, status


def fetch(
    service: NetworkService | None, args: argparse.Namespace, endpoint: str, answer: type
) -> tuple[bytes | None, Any]:
    """The document from the store, or from a running service with --nats."""
    if service is None:
        from ctilink.adapters.nats.remote import RemoteError, ask  # only --nats loads nats-py

        if args.at_time is not None:
            raise RemoteError("--at-time reads the store; use --at with --nats")
        return ask(args.nats, endpoint, Query(args.network, args.at), nats_options(args), answer)
    state, position = service.state_at(args.network, as_of(service, args))
    project = status if endpoint == "status" else directory
    return None, project(state, position)


def show_json(raw: bytes | None, doc: Any) -> None:
    """The document exactly: as the service sent it, or encoded here."""
    if raw is not None:
        sys.stdout.buffer.write(raw + b"\n")
    else:
        emit_json(doc)


def cmd_status(service: NetworkService | None, args: argparse.Namespace) -> int:
    """Print the status document (SPEC §8)."""
    raw, doc = fetch(service, args, "status", Status)
    if args.json:
        show_json(raw, doc)
        return 0
    mode = doc.mode
    print(
        pairs(
            [
                ("network", doc.network),
                ("position", doc.position),
                *made_by(service, doc.network, doc.position),
                ("setting shown", mode.setting),
                ("configured mode", mode.configured),
                ("effective mode", mode.effective),
                ("restart pending", mode.restart_pending),
                ("converted", mode.converted),
                ("central available", mode.central_available),
            ]
        )
    )
    print("\nproviders")
    print(
        table(("kind", "target", "origin"), [(p.kind, p.target, p.origin) for p in doc.providers])
    )
    print("\ncomponents")
    rows = [(c.system, c.role, c.component, c.state, c.via) for c in doc.components]
    print(table(("system", "role", "component", "state", "via"), rows))
    return 0


def made_by(service: NetworkService | None, network: str, position: int) -> list[tuple[str, str]]:
    """The `made by` line: the event logged at `position` (none when asked over NATS)."""
    if service is None:
        return []
    logged = entry(next(iter(service.log(network, upto=position, after=position - 1))))
    when = logged.at.isoformat()
    return [("made by", f"{logged.type} {logged.event.id} by {logged.actor} at {when}")]


def cmd_directory(service: NetworkService | None, args: argparse.Namespace) -> int:
    """Print the directory document (SPEC §8)."""
    raw, doc = fetch(service, args, "directory", Directory)
    if args.json:
        show_json(raw, doc)
        return 0
    print(pairs([("network", doc.network), ("position", doc.position)]))
    print("\nsystem directory")
    print(
        table(
            ("system", "name", "number", "via"),
            [(e.system, e.name, e.number, e.via) for e in doc.system],
        )
    )
    for user, entries in doc.personal.items():
        print(f"\npersonal directory of {safe(user)}")
        print(table(("name", "number"), [(e.name, e.number) for e in entries]))
    return 0


def register(verbs: argparse._SubParsersAction, parents: Parents) -> None:
    """Add the commands to the parser."""
    for name, run in (("status", cmd_status), ("directory", cmd_directory)):
        p = verbs.add_parser(name, parents=parents.both)
        p.add_argument("network")
        add_as_of(p)
        add_connection_arguments(p, "ask a running `ctilink serve` instead of the store")
        p.set_defaults(run=run, asks_service=True)
