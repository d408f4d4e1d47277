"""`ctilink verify`, `head` and `reindex`: tamper evidence, and the indexes rebuilt."""

from __future__ import annotations

import argparse
import sys

from ctilink.adapters.cli.output import emit_json
from ctilink.adapters.cli.render import pairs, table
from ctilink.adapters.store.reindex import reindex
from ctilink.adapters.store.selection import network_heads
from ctilink.adapters.store.verification import (
    Tampered,
    Verdict,
    head,
    parse_head,
    strays,
    verify,
)
from ctilink.domain.application import NetworkService

TAMPERED = 1
USAGE = 2


def cmd_verify(service: NetworkService, args: argparse.Namespace) -> int:
    """Recompute every (or one) network's chain; exit 1 at the first sign of tampering."""
    if args.head is not None and args.network is None:
        print("ctilink: verify --head needs a NETWORK", file=sys.stderr)
        return USAGE
    if args.network is not None:
        names = [args.network]
    else:
        names = [name for name, _ in network_heads(service)]
    verdicts: list[Verdict] = []
    for name in names:
        verdict = verify(service, name, args.head)
        verdicts.append(verdict)
        if args.json:
            emit_json(verdict)
    if args.network is None:
        for verdict in strays(service, names):
            verdicts.append(verdict)
            if args.json:
                emit_json(verdict)
    if not args.json:
        print(table(("network", "position", "result"), [_row(v) for v in verdicts]))
    return 0 if all(v.ok for v in verdicts) else TAMPERED


def _row(verdict: Verdict) -> tuple[str, int, str]:
    """One network's line in the text report."""
    problem = verdict.problem
    if problem is None:
        return verdict.network, verdict.position, "ok"
    return (
        verdict.network,
        verdict.position,
        f"TAMPERED at position {problem.position} ({problem.kind}): {problem.message}",
    )


def cmd_head(service: NetworkService, args: argparse.Namespace) -> int:
    """Print the network's last position and its hash, to keep outside the store."""
    try:
        found = head(service, args.network)
    except Tampered as error:
        print(f"ctilink: {error}", file=sys.stderr)
        return TAMPERED
    if args.json:
        emit_json(found)
    else:
        print(
            pairs(
                [
                    ("network", found.network),
                    ("position", found.position),
                    ("hash", found.hash),
                    ("--head", found.token()),
                ]
            )
        )
    return 0


def cmd_reindex(service: NetworkService, args: argparse.Namespace) -> int:
    """Build the id index and the network index again from the whole log."""
    done = reindex(service)
    if args.json:
        emit_json(done)
    else:
        print(
            pairs(
                [
                    ("ids indexed", f"{done.indexed:,}"),
                    ("unreadable rows", done.unreadable),
                    ("networks indexed", f"{done.networks:,}"),
                    ("damaged networks", done.damaged),
                    ("seconds", done.seconds),
                ]
            )
        )
    return 0


def _head_argument(text: str) -> tuple[int, bytes]:
    """argparse type for --head POSITION:HASH."""
    try:
        return parse_head(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not POSITION:HASH (a position from 1, a colon, 64 hex digits)"
        ) from None


def register(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the commands to the parser."""
    p = verbs.add_parser("verify", parents=[common])
    p.add_argument("network", nargs="?", help="one network (default: every network)")
    p.add_argument(
        "--head",
        type=_head_argument,
        metavar="POSITION:HASH",
        help="a head kept elsewhere (from `ctilink head`): also catches truncation and "
        "a consistently rewritten chain",
    )
    p.set_defaults(run=cmd_verify)
    p = verbs.add_parser("head", parents=[common])
    p.add_argument("network")
    p.set_defaults(run=cmd_head)
    p = verbs.add_parser("reindex", parents=[common])
    p.set_defaults(run=cmd_reindex, creates_store=True, needs_log=True)
