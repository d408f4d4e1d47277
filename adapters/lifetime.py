"""Child processes that must not outlive the process that started them."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | None = None) -> None:
    """On Linux, have the kernel kill this process when its parent dies (SIGKILL).

    `parent` is the pid the child was started by: if it is gone already (it died
    before this ran), exit at once.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent is not None and os.getppid() != parent:
        os._exit(1)


# Added to the niceness of serve's helpers (the writer, the publisher): the
# serving process's queries, a few milliseconds each, never queue behind their
# bulk work for a core (docs/architecture.md, processes).
HELPER_NICENESS = 10


def yield_cores() -> None:
    """Run at a lower scheduling priority than the serving process that started this one."""
    with contextlib.suppress(OSError):
        os.nice(HELPER_NICENESS)
