"""The CLI's argument types on any text (hypothesis): a value in range, or argparse's
one-line refusal (exit 2), never another exception (a traceback)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from ctilink.adapters.cli.argtypes import LAST_POSITION, network_name, position_or_time, positive
from ctilink.adapters.cli.as_of import rfc3339
from ctilink.domain.messages import is_name

NEAR_A_TIME = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})?"
TEXT = st.one_of(
    st.text(),
    st.from_regex(r"-?[0-9]{1,25}", fullmatch=True),
    st.from_regex(NEAR_A_TIME, fullmatch=True),
)


def refused_or(convert, text: str):  # type: ignore[no-untyped-def]
    """The converted value, or None when the type refused it as argparse expects."""
    try:
        return convert(text)
    except argparse.ArgumentTypeError:
        return None


@given(TEXT)
def test_a_position_or_time_is_a_position_in_range_an_aware_instant_or_refused(text: str) -> None:
    value = refused_or(position_or_time, text)

    if isinstance(value, int):
        assert 1 <= value <= LAST_POSITION and text.isascii() and int(text) == value
    elif value is not None:
        assert value.tzinfo is not None
        assert datetime(1, 1, 1, tzinfo=UTC) <= value.astimezone(UTC)  # an instant of years 1-9999


@given(TEXT)
def test_a_count_is_a_whole_number_from_1_or_refused(text: str) -> None:
    value = refused_or(positive, text)

    assert value is None or (value >= 1 and str(value) == text.lstrip("0"))


@given(st.text())
def test_a_network_name_is_one_the_spec_allows_or_refused(text: str) -> None:
    assert refused_or(network_name, text) == (text if is_name(text) else None)


@given(st.integers(1, LAST_POSITION))
def test_every_position_a_store_can_hold_is_taken(position: int) -> None:
    assert position_or_time(str(position)) == position


@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(-23 * 60, 23 * 60),
)
def test_every_rfc3339_time_is_taken_as_the_same_instant(moment: datetime, minutes: int) -> None:
    aware = moment.replace(tzinfo=timezone(timedelta(minutes=minutes)))

    assert position_or_time(aware.isoformat()) == aware
    assert rfc3339(aware.isoformat()) == aware
