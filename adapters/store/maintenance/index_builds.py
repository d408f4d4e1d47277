"""The indexes' builds, as transactions on the recorder: `reindex.py` runs them with progress.

- The id index is built in one transaction that keeps writers out: a crash
  leaves the store as it was.
- The time index likewise, in one transaction of its own.
- The network index is built beside the writers: a build takes a token in
  `ctilink_meta`, writes pages of lines, and marks the index complete only if
  it still holds the token (persistence/network_index.py says why).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ctilink.adapters.store.persistence.codec import stored_fingerprint
from ctilink.adapters.store.persistence.ids import IDS_COMPLETE, IdRow, IndexTables
from ctilink.adapters.store.persistence.network_index import (
    NETWORKS_BUILD,
    NETWORKS_COMPLETE,
    NetworkTables,
    network_values,
)
from ctilink.adapters.store.persistence.times import TIMES_COMPLETE, time_rows
from ctilink.adapters.store.queries.log_reader import recorded_time
from ctilink.projections.overview import Overview

BUILD_PAGE = 5000  # log rows read at a time by a build of the id or time index


def build_ids(
    recorder: IndexTables,
    progress: Callable[[int], None],
    *,
    again: bool = False,
) -> Build | None:
    """Build the id index from the whole log, a page at a time (None: it was complete).

    One transaction: writers wait, and a crash leaves the store as it was.
    """
    with _rebuilding(recorder, IDS_COMPLETE, "ctilink_ids", again) as cursor:
        if cursor is None:
            return None
        build = Build()
        for page in _log_pages(recorder, cursor):
            rows: list[IdRow] = []
            for network, position, state in page:
                try:
                    event_id = stored_fingerprint(bytes(state))[0]
                except Exception:  # a damaged row: `verify` says which; index the rest
                    build.unreadable += 1
                    continue
                rows.append((network, event_id, int(position)))
            insert_ids(recorder, cursor, rows)
            build.indexed += len(rows)
            progress(build.indexed + build.unreadable)
    return build


def build_times(
    recorder: Any,
    progress: Callable[[int], None],
    *,
    again: bool = False,
) -> Build | None:
    """Build the time index from the whole log (None: it was complete); one transaction."""
    with _rebuilding(recorder, TIMES_COMPLETE, "ctilink_times", again) as cursor:
        if cursor is None:
            return None
        build = Build()
        q = recorder.mark
        insert = f"INSERT INTO {recorder.table('ctilink_times')} VALUES ({q}, {q}, {q})"
        # The network being read and its (position, time) so far; None once a row of it
        # cannot be read: it gets no entries, so its time questions read the log and
        # meet the damage there, as `verify` does.
        network: str = ""
        recorded: list[tuple[int, Any]] | None = []
        for page in _log_pages(recorder, cursor):
            for name, position, state in page:
                if name != network:  # a network's rows are all read: its chain is known
                    cursor.executemany(insert, time_rows(network, recorded or []))
                    network, recorded = name, []
                try:
                    at = recorded_time(bytes(state))
                except Exception:  # a damaged row
                    build.unreadable += 1
                    recorded = None
                    continue
                if recorded is not None:
                    recorded.append((int(position), at))
                build.indexed += 1
            progress(build.indexed + build.unreadable)
        cursor.executemany(insert, time_rows(network, recorded or []))
    return build


@contextmanager
def _rebuilding(recorder: Any, mark: str, table: str, again: bool) -> Iterator[Any]:
    """A transaction that keeps writers out, with the index emptied and unmarked until it
    ends, then marked complete; None instead of a cursor: it is complete, and not `again`."""
    q, meta = recorder.mark, recorder.table("ctilink_meta")
    with recorder.exclusive() as cursor:
        cursor.execute(f"SELECT value FROM {meta} WHERE key = {q}", (mark,))
        if recorder.fetch(cursor) and not again:
            yield None  # another process built it meanwhile
            return
        cursor.execute(f"DELETE FROM {meta} WHERE key = {q}", (mark,))
        cursor.execute(f"DELETE FROM {recorder.table(table)}", ())
        yield cursor
        cursor.execute(f"INSERT INTO {meta} VALUES ({q}, '1')", (mark,))


def _log_pages(recorder: Any, cursor: Any) -> Iterator[list[Any]]:
    """The whole log as pages of rows (network, position, stored record), in key order."""
    q = recorder.mark
    after: tuple[str, int] = ("", 0)
    while True:
        cursor.execute(
            "SELECT originator_id, originator_version, state FROM "
            f"{recorder.events_sql} WHERE (originator_id, originator_version) > ({q}, {q}) "
            f"ORDER BY originator_id, originator_version LIMIT {BUILD_PAGE}",
            after,
        )
        page = recorder.fetch(cursor)
        if not page:
            return
        yield page
        after = (page[-1][0], int(page[-1][1]))


def insert_ids(recorder: IndexTables, cursor: Any, rows: Sequence[IdRow]) -> None:
    """Rows of a rebuild; an id twice in one network (damage) keeps its first position."""
    q = recorder.mark
    cursor.executemany(
        f"INSERT INTO {recorder.table('ctilink_ids')} VALUES ({q}, {q}, {q}) "
        "ON CONFLICT (network, event_id) DO NOTHING",
        rows,
    )


class Build:
    """What a build of the id index did."""

    __slots__ = ("indexed", "unreadable")

    def __init__(self) -> None:
        self.indexed = 0
        self.unreadable = 0  # rows that cannot be decoded (damage `verify` reports)


def put_networks(recorder: NetworkTables, rows: Sequence[Overview]) -> None:
    """Set networks' lines in a transaction of their own (building the index)."""
    if rows:
        recorder.execute_many(recorder.network_upsert, sorted(network_values(row) for row in rows))


def put_damaged(recorder: NetworkTables, rows: Sequence[tuple[str, int, str]]) -> None:
    """Name the networks whose logs could not be folded: (network, position, reason)."""
    if rows:
        q = recorder.mark
        recorder.execute_many(
            f"INSERT INTO {recorder.table('ctilink_damaged')} VALUES ({q}, {q}, {q}) "
            "ON CONFLICT (network) DO UPDATE SET position = excluded.position, "
            "reason = excluded.reason",
            sorted(rows),
        )


def start_networks_build(recorder: NetworkTables, token: str) -> None:
    """Take the build over: incomplete, emptied, the token this build's."""
    q, meta = recorder.mark, recorder.table("ctilink_meta")
    with recorder.exclusive() as cursor:
        cursor.execute(
            f"DELETE FROM {meta} WHERE key IN ({q}, {q})", (NETWORKS_COMPLETE, NETWORKS_BUILD)
        )
        cursor.execute(f"INSERT INTO {meta} VALUES ({q}, {q})", (NETWORKS_BUILD, token))
        cursor.execute(f"DELETE FROM {recorder.table('ctilink_networks')}", ())
        cursor.execute(f"DELETE FROM {recorder.table('ctilink_damaged')}", ())


def finish_networks_build(recorder: NetworkTables, token: str) -> bool:
    """Mark the index complete if this build still holds the token (False: superseded)."""
    q, meta = recorder.mark, recorder.table("ctilink_meta")
    with recorder.exclusive() as cursor:
        cursor.execute(f"SELECT value FROM {meta} WHERE key = {q}", (NETWORKS_BUILD,))
        held = recorder.fetch(cursor)
        if not held or held[0][0] != token:
            return False  # another build took over since, and completes it
        cursor.execute(f"DELETE FROM {meta} WHERE key = {q}", (NETWORKS_BUILD,))
        cursor.execute(f"INSERT INTO {meta} VALUES ({q}, '1')", (NETWORKS_COMPLETE,))
    return True


def forget_index(recorder: Any, mark: str = NETWORKS_COMPLETE) -> None:
    """Mark an index incomplete (a table found missing): this write-open builds it."""
    q, meta = recorder.mark, recorder.table("ctilink_meta")
    with recorder.exclusive() as cursor:
        cursor.execute(f"DELETE FROM {meta} WHERE key = {q}", (mark,))
