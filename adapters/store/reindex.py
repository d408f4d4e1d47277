"""Build the store's id index: once, when a store written before it is first opened to write.

A store from an earlier ctilink has no `ctilink_ids`: I3 would have nothing to
look up. Opening it for writing builds the index over the whole log in one
transaction (writers wait; a crash leaves the store as it was), showing
progress on a terminal and one line before and after otherwise.
`ctilink reindex` builds it again on purpose.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

import msgspec

from ctilink.adapters.progress import Progress
from ctilink.adapters.store.service import StoredNetworks


class Reindexed(msgspec.Struct, frozen=True):
    """`ctilink reindex --json`: what the build did."""

    indexed: int  # ids written
    unreadable: int  # rows that cannot be decoded (`ctilink verify` says where)
    seconds: float


def ensure_ids(service: StoredNetworks, stream: TextIO | None = None) -> Reindexed | None:
    """Build the id index if the store lacks it (None: it was there)."""
    recorder: Any = service.recorder
    if recorder.index_complete():
        return None
    return build_ids(service, stream, again=False)


def build_ids(
    service: StoredNetworks, stream: TextIO | None = None, *, again: bool = True
) -> Reindexed | None:
    """(Re)build the id index over the whole log, with progress on `stream` (stderr)."""
    stream = sys.stderr if stream is None else stream
    recorder: Any = service.recorder
    total = recorder.max_notification_id() or 0
    bar = Progress.maybe("indexing ids", total, stream)
    if bar is None and total:
        print(f"ctilink: building the id index over {total:,} events", file=stream, flush=True)
    started = time.perf_counter()
    try:
        build = recorder.build_ids(bar.update if bar else _quiet, again=again)
    finally:
        if bar is not None:
            bar.close()
    if build is None:
        return None  # another process built it meanwhile
    done = Reindexed(build.indexed, build.unreadable, round(time.perf_counter() - started, 3))
    if total:
        damaged = f"; {done.unreadable} rows unreadable (see ctilink verify)"
        print(
            f"ctilink: id index built: {done.indexed:,} ids in {done.seconds:.1f} s"
            + (damaged if done.unreadable else ""),
            file=stream,
            flush=True,
        )
    return done


def _quiet(done: int) -> None:
    """No progress to show."""
