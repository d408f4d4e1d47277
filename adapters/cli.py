"""The `ctilink` command line."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any, BinaryIO

import msgspec
from eventsourcing.persistence import PersistenceError

from adapters import ingest as ingesting
from adapters.parallel import WorkerFailed, ingest_parallel
from adapters.render import pairs, table
from adapters.store import StoreError, network_heads, open_service, resolve
from domain.errors import PositionOutOfRange, UnknownNetwork
from domain.service import NetworkService
from projections.directory import directory
from projections.log import entry, fields
from projections.status import status

_json = msgspec.json.Encoder()


def emit_json(value: Any) -> None:
    """Write one JSON document and a newline to stdout."""
    sys.stdout.buffer.write(_json.encode(value) + b"\n")


def cmd_ingest(service: NetworkService, args: argparse.Namespace) -> int:
    """Apply a JSON Lines file; exit 1 when any line was rejected."""
    counts: Counter[str] = Counter()
    rejected: list[ingesting.LineReport] = []
    out = sys.stdout.buffer
    progress = sys.stderr.isatty()

    def report(line: ingesting.LineReport) -> None:
        counts[line.outcome] += 1
        if line.outcome == "rejected":
            rejected.append(line)
        if args.json:
            out.write(_json.encode(line) + b"\n")
        if progress and line.line % 10_000 == 0:
            print(f"\r{line.line} lines…", end="", file=sys.stderr, flush=True)

    stream = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115
    with stream:
        workers = worker_count(args.jobs, stream)
        if workers > 1:
            ingest_parallel(resolve(args.store), stream, report, workers)
        else:
            ingesting.ingest(service, stream, report)
    if progress:
        print("\r", end="", file=sys.stderr)
    if not args.json:
        total = sum(counts.values())
        print(
            pairs(
                [(k, counts[k]) for k in ("accepted", "duplicate", "rejected")] + [("lines", total)]
            )
        )
        if rejected:
            print()
            print(
                table(
                    ("line", "id", "code", "reason"),
                    [(r.line, r.id, r.code, r.message) for r in rejected],
                )
            )
    return 1 if rejected else 0


PARALLEL_FROM_BYTES = 4 << 20
MAX_AUTO_WORKERS = 4


def worker_count(jobs: int | None, stream: BinaryIO) -> int:
    """--jobs, or by default one worker per core for files big enough to pay for them."""
    if jobs is not None:
        return max(1, jobs)
    try:
        size = os.fstat(stream.fileno()).st_size
    except (OSError, ValueError):
        return 1
    if size < PARALLEL_FROM_BYTES:
        return 1  # starting workers costs more than they would save
    return max(1, min(os.cpu_count() or 1, MAX_AUTO_WORKERS))


def cmd_status(service: NetworkService, args: argparse.Namespace) -> int:
    """Print the status document (SPEC §8)."""
    state, position = service.state_at(args.network, args.at)
    doc = status(state, position)
    if args.json:
        emit_json(doc)
        return 0
    mode = doc.mode
    print(
        pairs(
            [
                ("network", doc.network),
                ("position", doc.position),
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


def cmd_directory(service: NetworkService, args: argparse.Namespace) -> int:
    """Print the directory document (SPEC §8)."""
    state, position = service.state_at(args.network, args.at)
    doc = directory(state, position)
    if args.json:
        emit_json(doc)
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
        print(f"\npersonal directory of {user}")
        print(table(("name", "number"), [(e.name, e.number) for e in entries]))
    return 0


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
        detail = " ".join(f"{k}={_json.encode(v).decode()}" for k, v in fields(e.event).items())
        rows.append(
            (e.position, e.at.isoformat(timespec="seconds"), e.actor, e.type, e.event.id, detail)
        )
    print(table(("position", "at", "actor", "type", "id", "fields"), rows))
    return 0


def cmd_networks(service: NetworkService, args: argparse.Namespace) -> int:
    """List every network with its position and effective mode."""
    listing = []
    for name, position in network_heads(service):
        state, _ = service.state_at(name)
        listing.append({"network": name, "position": position, "effective": state.effective.value})
    if args.json:
        emit_json(listing)
    else:
        print(table(("network", "position", "effective"), [tuple(n.values()) for n in listing]))
    return 0


def parser() -> argparse.ArgumentParser:
    """The argument parser, one sub-command per verb."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", help="SQLite file (default: $CTILINK_STORE or ./ctilink.db)")
    common.add_argument("--json", action="store_true", help="exact, stable JSON output")
    top = argparse.ArgumentParser(
        prog="ctilink", description="Event-sourced CTI link state for one-X Portal networks."
    )
    verbs = top.add_subparsers(dest="command", required=True)

    p = verbs.add_parser("ingest", parents=[common], help="apply a JSON Lines file of events")
    p.add_argument("file", help="JSON Lines file, or - for standard input")
    p.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="worker processes, each owning a share of the networks "
        "(default: one per core for files of 4 MiB or more, else 1)",
    )
    p.set_defaults(run=cmd_ingest)
    for name, run, what in (
        ("status", cmd_status, "mode, providers, component status"),
        ("directory", cmd_directory, "system and personal directories"),
    ):
        p = verbs.add_parser(name, parents=[common], help=what)
        p.add_argument("network")
        p.add_argument("--at", type=int, metavar="POSITION", help="as of this log position")
        p.set_defaults(run=run)
    p = verbs.add_parser("log", parents=[common], help="the network's events")
    p.add_argument("network")
    p.set_defaults(run=cmd_log)
    p = verbs.add_parser("networks", parents=[common], help="every network")
    p.set_defaults(run=cmd_networks)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; errors are one line on stderr, never a traceback."""
    args = parser().parse_args(argv)
    try:
        service = open_service(args.store)
        try:
            return args.run(service, args)
        finally:
            service.close()
    except BrokenPipeError:
        # The reader went away (`| head`): not an error of ours. Point stdout at
        # /dev/null so the interpreter's final flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (UnknownNetwork, PositionOutOfRange, StoreError, WorkerFailed, OSError) as error:
        print(f"ctilink: {error}", file=sys.stderr)
        return 2
    except (sqlite3.Error, PersistenceError) as error:
        # The store failed mid-command (disk full, locked too long): what was
        # reported before this line is durable; nothing after it was applied.
        print(f"ctilink: store error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ctilink: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
