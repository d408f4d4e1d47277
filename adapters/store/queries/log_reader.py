"""Reading a network's stored rows fast: decoding only what replay and time lookups use.

`service.log` builds an eventsourcing domain event per position (about 65,000
a second here); replay and the time lookup (until the time index is built)
read the stored rows themselves and decode only what they use: twice to five
times as fast. The structs below read the first slots of codec.StoredRecord, [received, event, ...];
tests/integration/test_history.py checks them against `service.log`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import msgspec

from ctilink.adapters.store.persistence.codec import KNOWN_TOPICS, first_line
from ctilink.adapters.store.persistence.times import TIMES_COMPLETE
from ctilink.adapters.store.queries.log import records
from ctilink.domain import messages as m
from ctilink.domain.application import NetworkService
from ctilink.domain.errors import DamagedLog
from ctilink.domain.network import Installed, Recorded
from ctilink.projections.changes import position_at_time

PAGE = 5000
FIRST_PAGE = 100  # newest first
LAST = 2**63 - 1  # SQLite's largest integer


class _Logged(msgspec.Struct, array_like=True):
    received: msgspec.Raw  # skipped unparsed
    message: m.Message


class _At(msgspec.Struct):
    at: datetime | None = None  # the event's other fields are skipped


class _Times(msgspec.Struct, array_like=True):
    received: datetime
    message: _At


_decode_logged = msgspec.json.Decoder(_Logged).decode
_decode_times = msgspec.json.Decoder(_Times).decode


def recorded_time(record: bytes) -> datetime:
    """A stored record's recorded time: the event's `at`, else when it was received."""
    times = _decode_times(record)
    return times.message.at or times.received


def pages(
    service: NetworkService, network: str, upto: int | None, newest_first: bool
) -> Iterator[list[Any]]:
    """Rows (position, stored record) of positions 1..upto, one query per page."""
    recorder: Any = service.recorder  # both adapters' recorders speak RecorderParts
    low, high = 1, (upto if upto is not None else LAST)
    # From the end, the answer is often in the first rows: start small.
    size = min(PAGE, FIRST_PAGE) if newest_first else PAGE
    while low <= high:
        page = records(recorder, network, low, high, size, desc=newest_first)
        if page:
            yield page
        if len(page) < size:
            return
        size = min(PAGE, size * 4)
        if newest_first:
            high = page[-1][0] - 1
        else:
            low = page[-1][0] + 1


def logged_messages(
    service: NetworkService, network: str, upto: int | None = None
) -> Iterator[tuple[int, m.Message]]:
    """(position, event as accepted) from position 1 up to `upto` (default: the last)."""
    expected = 1
    for page in pages(service, network, upto, newest_first=False):
        for position, topic, record in page:
            logged = _read(network, position, expected, topic, _decode_logged, record)
            yield position, logged.message
            expected = position + 1


def recorded_times(service: NetworkService, network: str) -> Iterator[tuple[int, datetime]]:
    """(position, recorded time) from the last position down: `at`, else when received."""
    expected: int | None = None  # the last position, whatever it is
    for page in pages(service, network, None, newest_first=True):
        for position, topic, record in page:
            at = _read(network, position, expected or position, topic, recorded_time, record)
            yield position, at
            expected = position - 1


def position_recorded_by(
    service: NetworkService, network: str, moment: datetime, *, before: bool = False
) -> int | None:
    """The last position recorded at or before `moment` (strictly before, if `before`).

    One lookup in the time index (persistence/times.py); a store whose index is
    not built yet, or a network whose log went on without it, is read from its
    last position down, as `position_at_time` says.
    """
    recorder: Any = service.recorder
    if recorder.index_complete(TIMES_COMPLETE):
        found, current = recorder.position_by_time(network, moment, before=before)
        if current:
            return found  # type: ignore[no-any-return]
    if before:
        return next((p for p, at in recorded_times(service, network) if at < moment), None)
    return position_at_time(recorded_times(service, network), moment)


def _read(
    network: str, position: int, expected: int, topic: str, decode: Any, record: bytes
) -> Any:
    """One stored record decoded; DamagedLog when it is not the position expected or unreadable."""
    if position != expected:
        raise DamagedLog(network, expected, f"the position is missing; the next row is {position}")
    if KNOWN_TOPICS.get(topic) is not (Installed if position == 1 else Recorded):
        raise DamagedLog(network, position, f"its row names the class {topic[:80]!r}")
    try:
        return decode(record)
    except Exception as error:  # whatever a damaged row holds
        raise DamagedLog(
            network, position, f"its row cannot be decoded: {first_line(error)}"
        ) from None
