"""Build the store's indexes: once, when a store written before them is first opened to write.

A store from an earlier ctilink lacks `ctilink_ids` (I3 would have nothing to
look up), `ctilink_times` (a time question would scan the log) or
`ctilink_networks` (the listings would fold every log). Opening it
for writing builds what is missing, showing progress on a terminal and one
line before and after otherwise; `ctilink reindex` builds them all again on purpose.

- The id and time indexes are each built in one transaction (writers wait; a crash leaves the
  store as it was).
- The network index is built a page of networks at a time, beside the writers:
  a line only ever moves to a later position, so a writer's line is never put
  back by an older one. It is marked complete at the end; until then the
  listings fold the logs as before.
"""

from __future__ import annotations

import sys
import time
import uuid
from typing import Any, TextIO

import msgspec

from ctilink.adapters.progress import Progress
from ctilink.adapters.store.maintenance import index_builds
from ctilink.adapters.store.persistence.codec import first_line
from ctilink.adapters.store.persistence.times import TIMES_COMPLETE
from ctilink.adapters.store.queries.listing import folded_line
from ctilink.adapters.store.queries.log import network_heads
from ctilink.domain.application import NetworkService
from ctilink.domain.errors import DamagedLog
from ctilink.projections.overview import Overview

LINES_PAGE = 500  # networks' lines written per transaction


class Reindexed(msgspec.Struct, frozen=True):
    """`ctilink reindex --json`: what the build did."""

    indexed: int  # ids written
    unreadable: int  # rows that cannot be decoded (`ctilink verify` says where)
    seconds: float
    networks: int = 0  # networks' lines written
    damaged: int = 0  # networks whose log cannot be folded (`ctilink verify` says why)


def ensure_indexes(service: NetworkService, stream: TextIO | None = None) -> None:
    """Build whichever index the store lacks."""
    recorder: Any = service.recorder
    if not recorder.index_complete():
        build_ids(service, stream, again=False)
    if not recorder.index_complete(TIMES_COMPLETE):
        build_times(service, stream, again=False)
    if not recorder.networks_complete():
        build_networks(service, stream)


def reindex(service: NetworkService, stream: TextIO | None = None) -> Reindexed:
    """Build every index again from the whole log."""
    started = time.perf_counter()
    ids = build_ids(service, stream, again=True)
    build_times(service, stream, again=True)
    lines = build_networks(service, stream)
    assert ids is not None  # `again` always builds
    return Reindexed(
        ids.indexed,
        ids.unreadable,
        round(time.perf_counter() - started, 3),
        lines.networks,
        lines.damaged,
    )


def build_ids(
    service: NetworkService, stream: TextIO | None = None, *, again: bool = True
) -> Reindexed | None:
    """(Re)build the id index over the whole log, with progress on `stream` (stderr)."""
    return _build_over_log(service, stream, ("id", "ids"), index_builds.build_ids, again)


def build_times(
    service: NetworkService, stream: TextIO | None = None, *, again: bool = True
) -> Reindexed | None:
    """(Re)build the time index over the whole log, with progress on `stream` (stderr)."""
    return _build_over_log(service, stream, ("time", "times"), index_builds.build_times, again)


def _build_over_log(
    service: NetworkService,
    stream: TextIO | None,
    names: tuple[str, str],
    build_with: Any,
    again: bool,
) -> Reindexed | None:
    """Run one index's build over every row of the log, showing progress (None: done already)."""
    kind, noun = names
    stream = sys.stderr if stream is None else stream
    recorder: Any = service.recorder
    total = recorder.max_notification_id() or 0
    bar = Progress.maybe(f"indexing {kind}s", total, stream)
    if bar is None and total:
        print(f"ctilink: building the {kind} index over {total:,} events", file=stream, flush=True)
    started = time.perf_counter()
    try:
        build = build_with(recorder, bar.update if bar else _quiet, again=again)
    finally:
        if bar is not None:
            bar.close()
    if build is None:
        return None  # another process built it meanwhile
    done = Reindexed(build.indexed, build.unreadable, round(time.perf_counter() - started, 3))
    if total:
        damaged = f"; {done.unreadable} rows unreadable (see ctilink verify)"
        print(
            f"ctilink: {kind} index built: {done.indexed:,} {noun} in {done.seconds:.1f} s"
            + (damaged if done.unreadable else ""),
            file=stream,
            flush=True,
        )
    return done


def build_networks(service: NetworkService, stream: TextIO | None = None) -> Reindexed:
    """(Re)build the network index: every network's line at its last position."""
    stream = sys.stderr if stream is None else stream
    recorder: Any = service.recorder
    token = uuid.uuid4().hex
    # Incomplete from here: the listings fold the logs until the build is done.
    index_builds.start_networks_build(recorder, token)
    heads = network_heads(service)
    bar = Progress.maybe("indexing networks", len(heads), stream)
    if bar is None and heads:
        print(f"ctilink: building the network index over {len(heads):,} networks", file=stream)
    started = time.perf_counter()
    written = 0
    page: list[Overview] = []
    damaged: list[tuple[str, int, str]] = []
    try:
        for done, (name, position) in enumerate(heads, start=1):
            try:
                page.append(folded_line(service, name))
            except Exception as error:  # a damaged log fails in many ways
                reason = error.reason if isinstance(error, DamagedLog) else first_line(error)
                damaged.append((name, getattr(error, "position", position), reason))
            if len(page) == LINES_PAGE or done == len(heads):
                index_builds.put_networks(recorder, page)
                written += len(page)
                page = []
                if bar is not None:
                    bar.update(done)
        index_builds.put_damaged(recorder, damaged)
        completed = index_builds.finish_networks_build(recorder, token)
    finally:
        if bar is not None:
            bar.close()
    seconds = round(time.perf_counter() - started, 3)
    if heads:
        note = f"; {len(damaged)} networks damaged (see ctilink verify)" if damaged else ""
        if not completed:
            note += "; another build started meanwhile and completes the index"
        print(
            f"ctilink: network index built: {written:,} networks in {seconds:.1f} s{note}",
            file=stream,
            flush=True,
        )
    return Reindexed(0, 0, seconds, written, len(damaged))


def _quiet(done: int) -> None:
    """No progress to show."""
