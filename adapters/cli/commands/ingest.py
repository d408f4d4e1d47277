"""`ctilink ingest`: apply a JSON Lines file of events."""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from typing import BinaryIO

from ctilink.adapters.cli.output import encode_json
from ctilink.adapters.cli.render import pairs, table
from ctilink.adapters.ingest import lines as ingesting
from ctilink.adapters.ingest.dry_run import cmd_dry_run
from ctilink.adapters.ingest.parallel import ingest_parallel
from ctilink.adapters.store.selection import resolve
from ctilink.domain.service import NetworkService


def cmd_ingest(service: NetworkService, args: argparse.Namespace) -> int:
    """Apply a JSON Lines file; exit 1 when any line was rejected."""
    if args.dry_run:
        return cmd_dry_run(service, args)
    counts: Counter[str] = Counter()
    rejected: list[ingesting.LineReport] = []
    out = sys.stdout.buffer
    progress = sys.stderr.isatty()

    def report(line: ingesting.LineReport) -> None:
        counts[line.outcome] += 1
        if line.outcome == "rejected":
            rejected.append(line)
        if args.json:
            out.write(encode_json(line) + b"\n")
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


def register(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the command to the parser."""
    p = verbs.add_parser("ingest", parents=[common])
    p.add_argument("file", help="JSON Lines file, or - for standard input")
    p.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="worker processes, each owning a share of the networks "
        "(default: one per core for files of 4 MiB or more, else 1)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="commit nothing: print what would change per network and which lines "
        "would be rejected",
    )
    p.set_defaults(run=cmd_ingest, creates_store=True)
