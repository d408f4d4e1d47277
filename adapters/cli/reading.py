"""How far through its input `ingest` is: the bytes read up to each line, until the line's
report says it is through (reports come once lines are committed, behind the reading)."""

from __future__ import annotations

import os
import stat
from collections import deque
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from ctilink.adapters.ingest.lines import Line, LineReport

MARK_EVERY = 64  # lines between two marks: a mark is a tell() and a tuple


class Marks:
    """Where the input stood after every 64th line read, kept until that line is reported."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.tells = _seekable(stream)  # else: count the bytes of the lines read
        self.read = 0
        self.count = 0
        self.pending: deque[tuple[int, int]] = deque()

    def watching(self, items: Iterable[Line | LineReport]) -> Iterator[Line | LineReport]:
        """The items, marked as they are read."""
        for item in items:
            if isinstance(item, Line):
                number = item.number
                if not self.tells and item.raw is not None:
                    self.read += len(item.raw)
            else:
                number = item.line
            self.count += 1
            if self.count % MARK_EVERY == 0:
                self.pending.append((number, self.stream.tell() if self.tells else self.read))
            yield item

    def through(self, line: int) -> int | None:
        """The bytes read up to the last mark at or before `line` (None: no new mark)."""
        done = None
        while self.pending and self.pending[0][0] <= line:
            done = self.pending.popleft()[1]
        return done


def total_size(stream: BinaryIO) -> int | None:
    """The input's size when it is a regular file (standard input may be a pipe: None)."""
    try:
        found = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return None
    return found.st_size if stat.S_ISREG(found.st_mode) else None


def _seekable(stream: BinaryIO) -> bool:
    """Whether the stream can tell its position."""
    try:
        stream.tell()
    except (OSError, ValueError):
        return False
    return stream.seekable()
