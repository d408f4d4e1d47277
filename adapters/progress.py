"""Progress of long work on stderr: a bar on a terminal, a line now and then elsewhere."""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

from ctilink.adapters.errors import UserError

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


EVERY_ENV = "CTILINK_PROGRESS_EVERY"
EVERY_DEFAULT = 5.0  # seconds between progress lines off a terminal
BAR_DELAY = 0.5  # seconds before a bar is drawn: short work finishes without one


class ReadProgress:
    """How far through its input a long read is (`ingest`), told on stderr.

    On a terminal, a tqdm bar: bytes done of the total, the rate, the time left,
    the lines. Elsewhere (a log, a pipe), one line every few seconds
    (`$CTILINK_PROGRESS_EVERY`, default 5): `ingest: 25% of 19.1 MiB, 151,000
    lines in 2 s (75,500 lines/s, 2.5 MiB/s), about 6 s left`. The total is the
    file's size; standard input has none, so neither a percentage nor a time left.
    """

    def __init__(self, label: str, total: int | None, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.stream = sys.stderr if stream is None else stream
        self.started = time.monotonic()
        self.every = every_seconds()
        self.next_line = self.started + self.every
        self.bar: Any = None
        if self.stream.isatty():
            from tqdm import tqdm  # only a read on a terminal loads it

            self.bar = tqdm(
                total=total,
                desc=label,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                file=self.stream,
                leave=False,
                delay=BAR_DELAY,
                dynamic_ncols=True,
            )

    def update(self, done: int, lines: int) -> None:
        """`done` bytes and `lines` lines of the input are through."""
        if self.bar is not None:
            self.bar.set_postfix_str(f"{lines:,} lines", refresh=False)
            self.bar.update(done - self.bar.n)
            return
        now = time.monotonic()
        if now >= self.next_line:
            self.next_line = now + self.every
            print(self.line(done, lines, now - self.started), file=self.stream, flush=True)

    def line(self, done: int, lines: int, seconds: float) -> str:
        """The progress line written off a terminal."""
        seconds = max(seconds, 1e-6)
        rates = f"{lines / seconds:,.0f} lines/s, {mebibytes(done / seconds)}/s"
        told = f"{lines:,} lines in {_seconds(seconds)} ({rates})"
        if not self.total:
            return f"{self.label}: {mebibytes(done)}, {told}"
        percent = 100 * min(done, self.total) // self.total
        left = (self.total - done) / (done / seconds) if done else None
        eta = f", about {_seconds(left)} left" if left is not None else ""
        return f"{self.label}: {percent}% of {mebibytes(self.total)}, {told}{eta}"

    def close(self) -> None:
        """Take the bar away (the summary follows)."""
        if self.bar is not None:
            self.bar.close()


def _seconds(count: float) -> str:
    """A duration in seconds: one decimal under ten."""
    return f"{count:.1f} s" if count < 10 else f"{count:,.0f} s"


def mebibytes(count: float) -> str:
    """A byte count in MiB, one decimal."""
    return f"{count / (1 << 20):,.1f} MiB"


def every_seconds() -> float:
    """The seconds between progress lines off a terminal: $CTILINK_PROGRESS_EVERY, else 5."""
    text = os.environ.get(EVERY_ENV)
    if text is None:
        return EVERY_DEFAULT
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 86_400:  # NaN too
        raise UserError(f"${EVERY_ENV}: {text!r} is not a number of seconds (0 to 86400)")
    return seconds
