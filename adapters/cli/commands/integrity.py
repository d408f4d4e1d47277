"""`ctilink verify`, `head` and `reindex`: tamper evidence, and the indexes rebuilt."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Iterator

from ctilink.adapters.cli.output import emit_json
from ctilink.adapters.cli.parents import Parents
from ctilink.adapters.cli.render import pairs, print_table
from ctilink.adapters.store.maintenance.reindex import reindex
from ctilink.adapters.store.maintenance.verification import (
    Tampered,
    Verdict,
    head,
    parse_head,
    strays,
    verify,
)
from ctilink.adapters.store.queries.log import network_heads
from ctilink.domain.application import NetworkService

TAMPERED = 1
USAGE = 2


def cmd_verify(service: NetworkService, args: argparse.Namespace) -> int:
    """Recompute every (or one) network's chain; exit 1 at the first sign of tampering."""
    if args.head is not None and args.network is None:
        print("ctilink: verify --head needs a NETWORK", file=sys.stderr)
        return USAGE
    started = time.monotonic()
    tally = Tally()
    shown = (
        v for v in tally.counting(verdicts(service, args)) if not args.failures_only or not v.ok
    )
    if args.json:
        for verdict in shown:
            emit_json(verdict)
    else:
        print_table(("network", "position", "result"), map(_row, shown))
        print(tally.summary(time.monotonic() - started))
    return 0 if tally.failures == 0 else TAMPERED


def verdicts(service: NetworkService, args: argparse.Namespace) -> Iterator[Verdict]:
    """Each network's verdict as it is reached, then the index lines no log holds."""
    if args.network is not None:
        yield verify(service, args.network, args.head)
        return
    names = [name for name, _ in network_heads(service)]
    for name in names:
        yield verify(service, name, None)
    yield from strays(service, names)


class Tally:
    """Networks, positions and failures counted as the verdicts go by."""

    def __init__(self) -> None:
        self.networks = self.positions = self.failures = 0

    def counting(self, verdicts: Iterable[Verdict]) -> Iterator[Verdict]:
        """The verdicts, each counted."""
        for verdict in verdicts:
            self.networks += 1
            self.positions += verdict.position
            self.failures += not verdict.ok
            yield verdict

    def summary(self, seconds: float) -> str:
        """The line that ends a report: how much was checked, how much failed, how long."""
        networks = f"{self.networks:,} network{'s' if self.networks != 1 else ''}"
        failed = f"{self.failures:,} failed" if self.failures else "all ok"
        return f"verified {networks}, {self.positions:,} positions in {seconds:.2f} s: {failed}"


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


def register(verbs: argparse._SubParsersAction, parents: Parents) -> None:
    """Add the commands to the parser."""
    p = verbs.add_parser("verify", parents=parents.both)
    p.add_argument("network", nargs="?", help="one network (default: every network)")
    p.add_argument(
        "--head",
        type=_head_argument,
        metavar="POSITION:HASH",
        help="a head kept elsewhere (from `ctilink head`): also catches truncation and "
        "a consistently rewritten chain",
    )
    p.add_argument(
        "--failures-only",
        action="store_true",
        help="show only the networks that failed (the summary still counts every one)",
    )
    p.set_defaults(run=cmd_verify)
    p = verbs.add_parser("head", parents=parents.both)
    p.add_argument("network")
    p.set_defaults(run=cmd_head)
    p = verbs.add_parser("reindex", parents=parents.both)
    p.set_defaults(run=cmd_reindex, creates_store=True, needs_log=True)
