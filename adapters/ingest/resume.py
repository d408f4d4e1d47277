"""A file ingested before: its lines' first outcomes, read back and checked against the file.

The store keeps, per committed batch, each line's digest and report
(lines.keep). Merged in line order, they say which lines were decided and how;
a line whose digest differs means the file changed under its record, and the
file is refused rather than decided a second way.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from ctilink.adapters.errors import UserError
from ctilink.adapters.ingest.lines import Kept, Line, LineReport, read_lines, unkeep
from ctilink.adapters.store.persistence.inbound import OutcomeChunk


class ChangedFile(UserError):
    """A line ingested before is not the line the file holds now."""


def kept_lines(chunks: Iterable[OutcomeChunk]) -> Iterator[Kept]:
    """Every kept line in line order, holding only the records that overlap at once."""
    # Worker processes keep interleaved shares of the same lines: a record is
    # read only when it may hold a line before those already read.
    heap: list[tuple[int, int, Kept]] = []
    order = itertools.count()
    pending = iter(chunks)
    upcoming = next(pending, None)
    while heap or upcoming is not None:
        while upcoming is not None and (not heap or upcoming.first_line <= heap[0][0]):
            for kept in unkeep(upcoming):
                heapq.heappush(heap, (kept.report.line, next(order), kept))
            upcoming = next(pending, None)
        yield heapq.heappop(heap)[2]


def resumed(lines: Iterable[Line], kept: Iterable[Kept]) -> Iterator[Line | LineReport]:
    """The file's lines in order: those decided before as their first report, the rest to decide."""
    before = iter(kept)
    known = next(before, None)
    for line in lines:
        if known is not None and known.report.line < line.number:
            raise _missing(known)
        if known is not None and known.report.line == line.number:
            if known.digest != line.digest:
                raise ChangedFile(
                    f"line {line.number} differs from the line ingested from this file before; "
                    "to ingest the file as it is now, give it another --source name, or --again"
                )
            yield known.report
            known = next(before, None)
        else:
            yield line
    if known is not None:
        raise _missing(known)


def _missing(known: Kept) -> ChangedFile:
    """The error for a line ingested before that the file no longer holds."""
    return ChangedFile(
        f"line {known.report.line} was ingested from this file before and is not in it now "
        "(blank, or the file is shorter); give it another --source name, or --again"
    )


def check(stream: BinaryIO, kept: Iterable[Kept], last_line: int) -> None:
    """Compare a seekable file's lines up to `last_line` with their record; back to its start."""
    for item in resumed(read_lines(stream), kept):
        if (item.number if isinstance(item, Line) else item.line) >= last_line:
            break
    stream.seek(0)
