"""The time index: `--at-time` and `--since TIME` in one lookup, never a scan of the log.

`ctilink_times` holds, per network, the positions a time question can answer
(projections/changes.py `time_index` says which and why) keyed by their
recorded time in microseconds since 1970 (UTC): the answer for a moment is the
entry with the latest time at or before it. A batch keeps it in the events'
own transaction: per network, the entries at or after the batch's earliest
time go, and the batch's own chain comes in. A store written before the index
gets it built on first open for writing, or by `ctilink reindex`; until it is
complete (`ctilink_meta`), and for a network whose log is ahead of its entries
(written by an earlier ctilink), the lookups scan as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ctilink.adapters.store.persistence.dialect import RecorderParts
from ctilink.projections.changes import time_index

TIMES_COMPLETE = "times"  # its completeness mark in ctilink_meta
TimeRow = tuple[str, int, int]  # network, recorded time (µs since 1970, UTC), position
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def micros(moment: datetime) -> int:
    """A time with its offset as whole microseconds since 1970 in UTC (order kept)."""
    return (moment - EPOCH) // MICROSECOND


def time_rows(network: str, oldest_first: Iterable[tuple[int, datetime]]) -> list[TimeRow]:
    """A network's index entries for these positions (its chain), earliest time first."""
    return [(network, micros(at), position) for at, position in time_index(oldest_first)]


def earliest_times(rows: Sequence[TimeRow]) -> dict[str, int]:
    """Each network's earliest time among a batch's chains (the first of its chain)."""
    earliest: dict[str, int] = {}
    for network, time, _ in rows:
        earliest.setdefault(network, time)
    return earliest


class TimeTables(RecorderParts):
    """Create, write and read the time index; the recorder supplies names and placeholders."""

    def time_statements(self, clustered: str = "") -> list[str]:
        """The CREATE statement of the index, in the store's column types."""
        return [
            f"CREATE TABLE IF NOT EXISTS {self.table('ctilink_times')} (network TEXT NOT NULL, "
            "time BIGINT NOT NULL, position BIGINT NOT NULL, "
            f"PRIMARY KEY (network, time)){clustered}"
        ]

    def write_times(self, cursor: Any, rows: Sequence[TimeRow]) -> None:
        """Append a batch's chains (`time_rows` per network, earliest first) to the index."""
        if not rows:
            return
        q, times = self.mark, self.table("ctilink_times")
        earliest = earliest_times(rows)
        # The batch's positions come after every entry there: those recorded at its
        # earliest time or later can no longer answer anything.
        cursor.executemany(
            f"DELETE FROM {times} WHERE network = {q} AND time >= {q}", sorted(earliest.items())
        )
        cursor.executemany(f"INSERT INTO {times} VALUES ({q}, {q}, {q})", sorted(rows))

    def position_by_time(
        self, network: str, moment: datetime, *, before: bool
    ) -> tuple[int | None, bool]:
        """The last position recorded at or before `moment` (strictly before, if `before`),
        and whether the index has the network's last position (else it cannot answer)."""
        q, times = self.mark, self.table("ctilink_times")
        # One statement, one snapshot: the answer, the last entry, the log's head. The
        # last position is always an entry; a log ahead of it was written by something
        # that kept no index (an earlier ctilink, a restore): the caller reads the log.
        rows = self.query(
            f"SELECT (SELECT position FROM {times} WHERE network = {q} "
            f"AND time {'<' if before else '<='} {q} ORDER BY time DESC LIMIT 1), "
            f"(SELECT position FROM {times} WHERE network = {q} ORDER BY time DESC LIMIT 1), "
            f"(SELECT MAX(originator_version) FROM {self.events_sql} "
            f"WHERE originator_id = {q})",
            (network, micros(moment), network, network),
        )
        found, last, head = rows[0]
        return (None if found is None else int(found)), last == head

    def time_entries(self, network: str, page: int = 5000) -> Iterator[tuple[int, int]]:
        """The network's entries (time, position), latest time first, a page per query."""
        q, times = self.mark, self.table("ctilink_times")
        below = 2**63 - 1
        while True:
            rows = self.query(
                f"SELECT time, position FROM {times} WHERE network = {q} AND time < {q} "
                f"ORDER BY time DESC LIMIT {int(page)}",
                (network, below),
            )
            yield from ((int(time), int(position)) for time, position in rows)
            if len(rows) < page:
                return
            below = int(rows[-1][0])


def chain_newest_first(newest_first: Iterable[tuple[int, datetime]]) -> Iterator[tuple[int, int]]:
    """What a network's entries must be, latest time first, from its log read from the end:
    a position is kept when it was recorded before every later one (O(1) memory)."""
    earliest_later: int | None = None
    for position, at in newest_first:
        time = micros(at)
        if earliest_later is None or time < earliest_later:
            earliest_later = time
            yield time, position
