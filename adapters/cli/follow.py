"""Waiting between looks at the store, until SIGINT or SIGTERM says to stop (`log --follow`).

A signal only sets a flag, so the look in hand (a query, a page of output) ends
whole; the signal also writes to a socket that the wait watches (signal's wakeup
fd), so a wait ends at once, even for a signal that came just before it began.
A second signal, when the first is not heard (a store that hangs), interrupts.
"""

from __future__ import annotations

import contextlib
import select
import signal
import socket
from collections.abc import Iterator
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stop:
    """Whether a stop was asked for, and a wait that ends when one is."""

    def __init__(self, wakeup: socket.socket) -> None:
        self.asked = False
        self.wakeup = wakeup

    def heard(self, signum: int, frame: FrameType | None) -> None:
        """The signal handler: the first asks to stop, the second interrupts."""
        if self.asked:
            raise KeyboardInterrupt
        self.asked = True

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True when a stop was asked for (before or meanwhile)."""
        if not self.asked:
            select.select([self.wakeup], [], [], seconds)
        return self.asked


@contextlib.contextmanager
def until_signalled() -> Iterator[Stop]:
    """A Stop set by SIGINT or SIGTERM while the block runs; the handlers restored after."""
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    stop = Stop(reader)
    before = {signum: signal.signal(signum, stop.heard) for signum in SIGNALS}
    woke = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    try:
        yield stop
    finally:
        signal.set_wakeup_fd(woke)
        for signum, handler in before.items():
            signal.signal(signum, handler)
        reader.close()
        writer.close()
