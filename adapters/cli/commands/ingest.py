"""`ctilink ingest`: apply a JSON Lines file of events."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ctilink.adapters.cli.argtypes import positive
from ctilink.adapters.cli.output import encode_json
from ctilink.adapters.cli.parents import Parents
from ctilink.adapters.cli.reading import Marks, total_size
from ctilink.adapters.cli.render import pairs, table
from ctilink.adapters.errors import UserError
from ctilink.adapters.ingest.dry_run import cmd_dry_run
from ctilink.adapters.ingest.lines import (
    BATCH_LINES,
    Line,
    LineReport,
    ingest_lines,
    read_lines,
)
from ctilink.adapters.ingest.parallel import ingest_parallel
from ctilink.adapters.ingest.resume import check, kept_lines, resumed
from ctilink.adapters.progress import ReadProgress
from ctilink.adapters.store.selection import MEMORY, resolve
from ctilink.domain.application import NetworkService


def cmd_ingest(service: NetworkService, args: argparse.Namespace) -> int:
    """Apply a JSON Lines file; exit 1 when any line was rejected."""
    if args.dry_run:
        return cmd_dry_run(service, args)
    stream = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115
    output = Output(args.json, stream)
    source = source_of(args)
    with stream, holding(args.store, source):
        lines: Iterator[Line | LineReport] = read_lines(stream)
        if source is not None:
            if args.again:
                service.recorder.forget_outcomes(source)
            lines = output.counting(resume(service, source, stream))
        lines = output.marks.watching(lines)
        workers = worker_count(args.jobs, stream)
        if workers > 1:
            ingest_parallel(resolve(args.store), lines, output.report, workers, source, args.batch)
        else:
            ingest_lines(service, lines, output.report, batch_lines=args.batch, source=source)
    return output.finish()


def source_of(args: argparse.Namespace) -> str | None:
    """The name a file's lines are kept under: --source, else the file's full path."""
    if args.source:
        return f"file:{args.source}"
    if args.file == "-":
        return None  # stdin resumes only when named
    return f"file:{Path(args.file).resolve()}"


def resume(service: NetworkService, source: str, stream: BinaryIO) -> Iterator[Line | LineReport]:
    """The lines, those ingested before from this source as their first reports."""
    chunks = list(service.recorder.outcome_chunks(source))
    if chunks and stream.seekable():
        # Refuse a changed file before anything of it is decided.
        check(stream, kept_lines(chunks), max(chunk.last_line for chunk in chunks))
    return resumed(read_lines(stream), kept_lines(chunks))


@contextlib.contextmanager
def holding(store: str | None, source: str | None) -> Iterator[None]:
    """One ingest at a time per source (a role on the store); refused if another runs."""
    location = resolve(store)
    if source is None or location == MEMORY:
        yield
        return
    from ctilink.adapters.store.coordination.roles import open_roles, source_role

    roles = open_roles(location)
    try:
        if not roles.take(source_role(source)):
            raise UserError(f"another ingest of {source.removeprefix('file:')!r} is running")
        yield
    finally:
        roles.close()


class Output:
    """The report of every line: --json lines as they come, else a summary at the end."""

    def __init__(self, as_json: bool, stream: BinaryIO) -> None:
        self.as_json = as_json
        self.marks = Marks(stream)
        self.progress = ReadProgress("ingest", total_size(stream))
        self.counts: Counter[str] = Counter()
        self.rejected: list[LineReport] = []
        self.closed_at: int | None = None  # the line at which the reader went away
        self.before = 0  # lines decided by an earlier run of the same source
        self.out = sys.stdout.buffer

    def report(self, line: LineReport) -> None:
        """Count one line, and write its --json line while anybody reads."""
        self.counts[line.outcome] += 1
        if line.outcome == "rejected":
            self.rejected.append(line)
        if self.as_json and self.closed_at is None:
            try:
                self.out.write(encode_json(line) + b"\n")
            except BrokenPipeError:
                # `| head`: the rest of the file is ingested all the same, quietly.
                self.closed_at = line.line
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        done = self.marks.through(line.line)
        if done is not None:
            self.progress.update(done, line.line)

    def counting(self, items: Iterator[Line | LineReport]) -> Iterator[Line | LineReport]:
        """The items, counting the lines an earlier run decided."""
        for item in items:
            if isinstance(item, LineReport):
                self.before += 1
            yield item

    def finish(self) -> int:
        """The summary (without --json); exit 1 when any line was rejected."""
        self.progress.close()
        if self.closed_at is not None:
            print(
                f"ctilink: the output was closed at line {self.closed_at}; every line was ingested",
                file=sys.stderr,
            )
        if self.before:
            now = sum(self.counts.values()) - self.before
            print(
                f"ctilink: {self.before} lines were decided by an earlier run of this input "
                f"and are reported as then; {now} were decided now",
                file=sys.stderr,
            )
        if not self.as_json:
            total = sum(self.counts.values())
            rows = [(k, self.counts[k]) for k in ("accepted", "duplicate", "rejected")]
            print(pairs([*rows, ("lines", total)]))
            if self.rejected:
                print()
                print(
                    table(
                        ("line", "id", "code", "reason"),
                        [(r.line, r.id, r.code, r.message) for r in self.rejected],
                    )
                )
        return 1 if self.rejected else 0


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


def source_name(text: str) -> str:
    """argparse type: a name to keep lines under, not empty."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the source name is empty")
    return text


def register(verbs: argparse._SubParsersAction, parents: Parents) -> None:
    """Add the command to the parser."""
    p = verbs.add_parser("ingest", parents=parents.both)
    p.add_argument("file", help="JSON Lines file, or - for standard input")
    p.add_argument(
        "--jobs",
        type=positive,
        metavar="N",
        help="worker processes, each owning a share of the networks "
        "(default: one per core for files of 4 MiB or more, else 1)",
    )
    p.add_argument(
        "--batch",
        type=positive,
        default=BATCH_LINES,
        metavar="N",
        help=f"lines decided and committed together (default {BATCH_LINES}): fewer show "
        "results sooner, more ingest faster",
    )
    p.add_argument(
        "--source",
        type=source_name,
        metavar="NAME",
        help="the name this input's lines are kept under, so that a re-run resumes "
        "(default: the file's full path; standard input resumes only when named)",
    )
    p.add_argument(
        "--again",
        action="store_true",
        help="forget what was kept of this source and decide every line again "
        "(accepted lines are duplicates by id; rejected ones may now pass)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="commit nothing: print what would change per network and which lines "
        "would be rejected",
    )
    p.set_defaults(run=cmd_ingest, creates_store=True)
