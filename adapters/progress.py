"""A progress bar for long work, drawn on stderr when it is a terminal."""

from __future__ import annotations

import sys
from typing import TextIO

PROGRESS_FROM = 10_000  # steps; shorter work finishes before a bar is worth drawing


class Progress:
    """A progress bar on a terminal: `replay [#####.....]  52% 52,000/100,000`."""

    width = 30

    def __init__(self, label: str, total: int, stream: TextIO) -> None:
        self.label = label
        self.total = max(total, 1)
        self.stream = stream
        self.every = max(1, total // 200)
        self.next = 0

    @classmethod
    def maybe(cls, label: str, total: int, stream: TextIO | None = None) -> Progress | None:
        """A bar when `stream` (stderr) is a terminal and the work is long, else None."""
        stream = sys.stderr if stream is None else stream
        return cls(label, total, stream) if total >= PROGRESS_FROM and stream.isatty() else None

    def update(self, done: int) -> None:
        """Redraw, at most every 0.5 % of the way."""
        if done < self.next and done < self.total:
            return
        self.next = done + self.every
        done = min(done, self.total)
        filled = self.width * done // self.total
        bar = "#" * filled + "." * (self.width - filled)
        percent = 100 * done // self.total
        self.stream.write(f"\r{self.label} [{bar}] {percent:3d}% {done:,}/{self.total:,}")
        self.stream.flush()

    def close(self) -> None:
        """Clear the bar's line."""
        self.stream.write("\r\x1b[K")
        self.stream.flush()
