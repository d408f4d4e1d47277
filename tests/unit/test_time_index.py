"""The time index's chain answers every moment as the scan of the log does (SPEC §8, I4).

`time_index` keeps only the positions a time question can answer; the store
looks up the entry with the latest time at or before a moment. These check that
lookup, on the pure chain, against `position_at_time` reading the log from its
end, for any recorded times (going backwards too, I4).
"""

from __future__ import annotations

import bisect
import itertools
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from ctilink.adapters.store.persistence.times import chain_newest_first, micros
from ctilink.projections.changes import position_at_time, time_index

START = datetime(2024, 3, 4, tzinfo=UTC)
minutes = st.lists(st.integers(0, 30), min_size=1, max_size=40)


def chain_lookup(chain: list[tuple[datetime, int]], moment: datetime, before: bool) -> int | None:
    """The store's query on the chain: the entry with the latest time (< or <=) the moment."""
    times = [at for at, _ in chain]
    index = (bisect.bisect_left if before else bisect.bisect_right)(times, moment) - 1
    return chain[index][1] if index >= 0 else None


def logged(offsets: list[int]) -> list[tuple[int, datetime]]:
    """(position, recorded time) from position 1, oldest first."""
    return [(p, START + timedelta(minutes=o)) for p, o in enumerate(offsets, start=1)]


@given(minutes, st.integers(-1, 31))
def test_the_chain_answers_at_time_as_the_scan_does_even_when_at_goes_back_i4(
    offsets: list[int], minute: int
) -> None:
    log = logged(offsets)
    moment = START + timedelta(minutes=minute)
    assert chain_lookup(time_index(log), moment, False) == position_at_time(log[::-1], moment)


@given(minutes, st.integers(-1, 31))
def test_the_chain_answers_since_as_the_scan_does_the_last_position_strictly_before(
    offsets: list[int], minute: int
) -> None:
    log = logged(offsets)
    moment = START + timedelta(minutes=minute)
    scan = next((p for p, at in reversed(log) if at < moment), None)
    assert chain_lookup(time_index(log), moment, True) == scan


@given(minutes, minutes)
def test_appending_drops_the_entries_at_or_after_the_batch_and_adds_its_chain(
    first: list[int], then: list[int]
) -> None:
    """What a batch's transaction does to the table equals the chain of the whole log."""
    log = logged(first + then)
    before, batch = log[: len(first)], log[len(first) :]
    own = time_index(batch)
    kept = [entry for entry in time_index(before) if entry[0] < own[0][0]]
    assert kept + own == time_index(log)


@given(minutes)
def test_the_chain_times_grow_strictly_with_the_positions(offsets: list[int]) -> None:
    chain = time_index(logged(offsets))
    assert all(a[0] < b[0] and a[1] < b[1] for a, b in itertools.pairwise(chain))
    assert chain[-1][1] == len(offsets)  # the last position always answers


def test_micros_keeps_the_order_of_instants_across_offsets_and_years() -> None:
    plus_two = datetime(2024, 3, 4, 14, 25, tzinfo=timezone(timedelta(hours=2)))
    assert micros(plus_two) == micros(datetime(2024, 3, 4, 12, 25, tzinfo=UTC))
    first, last = datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, tzinfo=UTC)
    assert micros(first) < micros(START) < micros(last) < 2**63


@given(minutes)
def test_the_chain_read_from_the_end_is_the_chain_verify_expects(offsets: list[int]) -> None:
    """`verify` derives the entries newest first in O(1) memory: the same entries."""
    log = logged(offsets)
    ascending = [(micros(at), p) for at, p in time_index(log)]
    assert list(chain_newest_first(reversed(log))) == ascending[::-1]
