"""`ctilink export`: a network's log as the JSON Lines that `ctilink ingest` reads.

Each line is one event in the form of SPEC §2, as it was accepted, in position
order. An event sent without `at` gets the time it was received, in UTC: that
time already stands in for `at` in the hash chain (domain/network.py `link`),
so ingesting the export into an empty store rebuilds the same log, with the same
status, directory and hash at every position.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from datetime import UTC
from typing import Any

import msgspec

from ctilink.adapters.cli.output import encode_json
from ctilink.adapters.cli.parents import Parents
from ctilink.adapters.store.queries.log import network_heads
from ctilink.domain.application import NetworkService
from ctilink.domain.network import Installed, Recorded

ENVELOPE = ("type", "id", "network", "at", "actor")
FLUSH_BYTES = 1 << 20


def exported(event: Installed | Recorded) -> dict[str, Any]:
    """One logged event as a SPEC §2 object: the envelope first, `at` always set."""
    message = event.message
    if message.at is None:
        message = msgspec.structs.replace(message, at=event.timestamp.astimezone(UTC))
    body = msgspec.to_builtins(message)
    ordered = {key: body.pop(key) for key in ENVELOPE if key in body}
    ordered.update(body)
    return ordered


def export_lines(service: NetworkService, name: str) -> Iterator[bytes]:
    """The network's log as JSON lines (newline included); raises UnknownNetwork."""
    service.head(name)
    for event in service.log(name):
        yield encode_json(exported(event)) + b"\n"


def cmd_export(service: NetworkService, args: argparse.Namespace) -> int:
    """Write the log(s) to stdout as JSON Lines."""
    names = [args.network] if args.network else [name for name, _ in network_heads(service)]
    out = sys.stdout.buffer
    chunk: list[bytes] = []
    size = 0
    for name in names:
        for line in export_lines(service, name):
            chunk.append(line)
            size += len(line)
            if size >= FLUSH_BYTES:
                out.write(b"".join(chunk))
                chunk, size = [], 0
    out.write(b"".join(chunk))
    return 0


def register(verbs: argparse._SubParsersAction, parents: Parents) -> None:
    """Add the command to the parser."""
    p = verbs.add_parser("export", parents=[parents.store])
    p.add_argument("network", nargs="?", help="one network (default: every network, by name)")
    p.set_defaults(run=cmd_export)
