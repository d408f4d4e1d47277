"""Ingest JSON Lines: each line on its own, committed in batches, reported in order.

A file is a source: with each batch, the store keeps every line's digest and
first outcome (adapters/ingest/resume.py reads them back), so that a re-run
reports the lines decided before as they were decided, and decides only the
rest.
"""

from __future__ import annotations

import hashlib
import heapq
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

import msgspec

from ctilink.adapters.errors import UserError
from ctilink.adapters.store.persistence.inbound import OutcomeChunk
from ctilink.domain import messages as m
from ctilink.domain.application import NetworkService
from ctilink.domain.arrivals import Arrival
from ctilink.domain.decision import Outcome
from ctilink.domain.decoding import MAX_EVENT_BYTES, Invalid, decode_encoded, named
from ctilink.domain.errors import Code

MAX_LINE_BYTES = MAX_EVENT_BYTES
BATCH_LINES = 5000
BATCH_BYTES = 8 << 20


class LineReport(msgspec.Struct, frozen=True):
    """The --json line for one input line."""

    line: int
    id: str | None
    outcome: str
    position: int | None
    code: str | None
    message: str | None


class Line(msgspec.Struct, frozen=True, array_like=True):
    """One non-blank line of the input: its number, its bytes (None: too long)."""

    number: int
    raw: bytes | None
    hashed: bytes | None = None  # the digest of a line too long to hold

    @property
    def digest(self) -> bytes:
        """Its fingerprint, computed when asked: only a kept or resumed file needs it."""
        return self.hashed if self.raw is None else digest(self.raw)  # type: ignore[return-value]


class Kept(msgspec.Struct, frozen=True, array_like=True):
    """What the store keeps of one decided line: its digest and its report."""

    digest: bytes
    report: LineReport


def digest(content: bytes) -> bytes:
    """A line's fingerprint, its line break left out (a last line may gain one)."""
    return hashlib.blake2b(content.rstrip(b"\r\n"), digest_size=8).digest()


def read_lines(stream: BinaryIO) -> Iterator[Line]:
    """Every non-blank line, numbered from 1 as in the file; too long ones without bytes."""
    number = 0
    while True:
        # +2: a line of exactly the limit may end in \r\n.
        chunk = stream.readline(MAX_LINE_BYTES + 2)
        if not chunk:
            return
        number += 1
        if len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n"):
            # Skip the rest of the oversized line without holding it in memory.
            hashed = hashlib.blake2b(chunk, digest_size=8)
            while chunk and not chunk.endswith(b"\n"):
                chunk = stream.readline(MAX_LINE_BYTES)
                hashed.update(chunk.rstrip(b"\r\n"))
            yield Line(number, None, hashed.digest())
            continue
        if chunk.strip():
            yield Line(number, chunk)


def parse(line: Line) -> m.Message | Invalid:
    """Decode one line, or say why it is `invalid` (I1)."""
    return _parse(line)[0]


def _parse(line: Line) -> tuple[m.Message | Invalid, bytes | None]:
    """Decode one line, and the event as encoded for the log."""
    if line.raw is None:
        return Invalid(None, f"line is longer than {MAX_LINE_BYTES} bytes"), None
    return decode_encoded(line.raw)


def arrival(line: Line, source: str | None) -> Arrival:
    """One line as it arrived: decoded (I1), from its file, at its line."""
    event, encoded = _parse(line)
    network = named(line.raw, "network") if isinstance(event, Invalid) else None
    return Arrival(
        event, source, line.number, network, line.raw or b"", sequential=False, encoded=encoded
    )


def report_of(line: Line, item: Arrival, outcome: Outcome) -> LineReport:
    """The --json line for a decided line."""
    event = item.event
    return LineReport(
        line.number, event.id, outcome.outcome, outcome.position, outcome.code, outcome.message
    )


_encode_kept = msgspec.msgpack.Encoder().encode
_decode_kept = msgspec.msgpack.Decoder(list[Kept]).decode


def keep(source: str, lines: list[Line], reports: list[LineReport]) -> OutcomeChunk | None:
    """The record of a committed batch of lines, for the store (None: nothing to keep)."""
    kept = [
        Kept(line.digest, report)
        for line, report in zip(lines, reports, strict=True)
        if not _unfinished(line, report)
    ]
    if not kept:
        return None
    return OutcomeChunk(
        source, kept[0].report.line, kept[-1].report.line, zlib.compress(_encode_kept(kept), 1)
    )


def _unfinished(line: Line, report: LineReport) -> bool:
    """A last line with no line break that cannot be read: perhaps still being written."""
    # Kept, it would make the file "changed" once its writer finishes the line;
    # not kept, the next run decides it again, finished or not.
    return line.raw is not None and not line.raw.endswith(b"\n") and report.code == Code.INVALID


class DamagedRecord(UserError):
    """The store's record of a file's lines cannot be read."""


def unkeep(chunk: OutcomeChunk) -> list[Kept]:
    """The lines of a kept record; DamagedRecord when the store holds something else."""
    try:
        return _decode_kept(zlib.decompress(chunk.lines))
    except (zlib.error, msgspec.DecodeError, TypeError, ValueError) as error:
        raise DamagedRecord(
            f"the store's record of lines {chunk.first_line}-{chunk.last_line} of "
            f"{chunk.source!r} is damaged ({type(error).__name__}); give --again to "
            "ingest the file anew"
        ) from None


def ingest(
    service: NetworkService,
    stream: BinaryIO,
    report: Callable[[LineReport], None],
    batch_lines: int = BATCH_LINES,
    batch_bytes: int = BATCH_BYTES,
    source: str | None = None,
) -> None:
    """Apply every line of a stream; report each one, in order, once it is durable."""
    ingest_lines(service, read_lines(stream), report, batch_lines, batch_bytes, source)


def ingest_lines(
    service: NetworkService,
    lines: Iterable[Line | LineReport],
    report: Callable[[LineReport], None],
    batch_lines: int = BATCH_LINES,
    batch_bytes: int = BATCH_BYTES,
    source: str | None = None,
) -> None:
    """Decide lines in batches; report every line in order once it is durable.

    A LineReport among the lines is one decided before (a resumed file): it is
    reported in its place, after the lines before it.
    """
    pending: list[Line] = []
    waiting: list[LineReport] = []  # decided before, behind a pending line
    pending_bytes = 0

    def flush() -> None:
        nonlocal pending_bytes
        if pending:
            arrivals = [arrival(line, source) for line in pending]

            def journal(outcomes: list[Outcome]) -> OutcomeChunk | None:
                # Called on every attempt (a conflict decides the batch again): the last counts.
                decided[:] = [
                    report_of(line, item, outcome)
                    for line, item, outcome in zip(pending, arrivals, outcomes, strict=True)
                ]
                return keep(source, pending, decided) if source is not None else None

            decided: list[LineReport] = []
            service.ingest(arrivals, journal=journal)
        else:
            decided = []
        for line in heapq.merge(decided, waiting, key=lambda r: r.line):
            report(line)
        pending.clear()
        waiting.clear()
        pending_bytes = 0

    for item in lines:
        if isinstance(item, LineReport):
            if pending:
                waiting.append(item)
            else:
                report(item)
            continue
        pending.append(item)
        pending_bytes += len(item.raw) if item.raw else 0
        # Bounded by lines and by bytes, so a file of huge directories cannot
        # hold gigabytes in memory before its first commit.
        if len(pending) >= batch_lines or pending_bytes >= batch_bytes:
            flush()
    if pending or waiting:
        flush()
