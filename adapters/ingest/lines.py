"""Ingest JSON Lines: each line on its own, committed in batches, reported in order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

import msgspec

from ctilink.domain import messages as m
from ctilink.domain.decoding import MAX_EVENT_BYTES, Invalid, decode
from ctilink.domain.service import NetworkService, Outcome

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


def read_lines(stream: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """(line number, content) for every non-blank line; None for one too long."""
    number = 0
    while True:
        chunk = stream.readline(MAX_LINE_BYTES + 1)
        if not chunk:
            return
        number += 1
        if len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n"):
            # Skip the rest of the oversized line without holding it in memory.
            while chunk and not chunk.endswith(b"\n"):
                chunk = stream.readline(MAX_LINE_BYTES)
            yield number, None
            continue
        if chunk.strip():
            yield number, chunk


def parse(raw: bytes | None) -> m.Message | Invalid:
    """Decode one line, or say why it is `invalid` (I1)."""
    if raw is None:
        return Invalid(None, f"line is longer than {MAX_LINE_BYTES} bytes")
    return decode(raw)


def ingest(
    service: NetworkService,
    stream: BinaryIO,
    report: Callable[[LineReport], None],
    batch_lines: int = BATCH_LINES,
    batch_bytes: int = BATCH_BYTES,
) -> None:
    """Apply every line of a stream; report each one, in order, once it is durable."""
    ingest_lines(service, read_lines(stream), report, batch_lines, batch_bytes)


def ingest_lines(
    service: NetworkService,
    lines: Iterable[tuple[int, bytes | None]],
    report: Callable[[LineReport], None],
    batch_lines: int = BATCH_LINES,
    batch_bytes: int = BATCH_BYTES,
) -> None:
    """Apply numbered lines; report each one, in order, once its batch is durable."""
    pending: list[tuple[int, m.Message | Invalid]] = []
    pending_bytes = 0

    def flush() -> None:
        decided = iter(service.ingest([i for _, i in pending if not isinstance(i, Invalid)]))
        for number, item in pending:
            if isinstance(item, Invalid):
                report(LineReport(number, item.id, "rejected", None, "invalid", item.message))
            else:
                outcome: Outcome = next(decided)
                report(
                    LineReport(
                        number,
                        item.id,
                        outcome.outcome,
                        outcome.position,
                        outcome.code,
                        outcome.message,
                    )
                )
        pending.clear()

    for number, raw in lines:
        pending.append((number, parse(raw)))
        pending_bytes += len(raw) if raw else 0
        # Bounded by lines and by bytes, so a file of huge directories cannot
        # hold gigabytes in memory before its first commit.
        if len(pending) >= batch_lines or pending_bytes >= batch_bytes:
            flush()
            pending_bytes = 0
    if pending:
        flush()
