"""The rejections page: every rejection the store keeps, from every source (NATS, files,
the API), newest first, filtered by network, code and time, a page at a time.

It reads the store's `ctilink_rejections` table with a query of its own (the
recorder supplies the table's name and the parameter marker, as in
adapters/store/inbound.py), so that `ctilink web` and `serve --http` show the
same thing and nothing subscribes to NATS. Without a network to filter by, a page
reads at most SCAN ids below where it starts: a rare code in a long table may
take several pages, each saying where the next begins, and no one page holds the
console up. The live watcher (live.py) asks `rejection_top` and `rejected_in`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from ctilink.adapters.store.persistence.inbound import REJECTION_COLUMNS
from ctilink.adapters.store.queries.rejections import to_rejection
from ctilink.adapters.text import cut
from ctilink.adapters.web.reads import BadQuery, moment, whole
from ctilink.domain import messages as m
from ctilink.domain.arrivals import Rejection
from ctilink.domain.errors import Code

PAGE = 100  # rejections a page
SCAN = 20_000  # ids read for one page at most (without a network filter)
PAYLOAD = 2_000  # characters of what was sent that a row shows
TABLE = "ctilink_rejections"
CODES = tuple(code.value for code in Code)


class Shown(msgspec.Struct, frozen=True):
    """One rejection as the page shows it: long text cut, the payload as text."""

    id: int
    received: datetime
    network: str | None
    source: str | None
    position: int | None
    event_id: str | None
    code: str
    message: str
    payload: str  # the first PAYLOAD characters of what was sent
    size: int  # bytes kept of what was sent
    truncated: bool  # only the start of what was sent was kept

    @property
    def named(self) -> bool:
        """Whether the rejection names a network by a name one can link to."""
        return m.is_name(self.network)


class RejectionsPage(msgspec.Struct, frozen=True):
    """A page of rejections, newest first, and where the next page starts."""

    rows: list[Shown]
    next_before: int | None  # None: the last page
    newest: int  # the newest rejection's id in the store (0: none)


class Query(msgspec.Struct, frozen=True):
    """The filters of the page, checked."""

    network: str | None = None
    code: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None


def shown(identity: int, rejection: Rejection) -> Shown:
    """A stored rejection, bounded for a page."""
    return Shown(
        identity,
        rejection.received,
        rejection.network and cut(rejection.network),
        rejection.source and cut(rejection.source),
        rejection.position,
        rejection.event_id and cut(rejection.event_id),
        rejection.code,
        cut(rejection.message, 1_000),
        cut(rejection.payload.decode(errors="backslashreplace"), PAYLOAD),
        len(rejection.payload),
        rejection.truncated,
    )


def rejections_page(recorder: Any, query: Query) -> RejectionsPage:
    """Up to PAGE rejections below `before` (newest first) that pass the filters."""
    newest = rejection_top(recorder)
    below = newest + 1 if query.before is None else query.before
    q, where, params = recorder.mark, ["id < " + recorder.mark], [below]
    if query.network is not None:
        where.append(f"network = {q}")  # the (network, id) index: no scan bound needed
        params.append(query.network)
    else:
        where.append(f"id >= {q}")
        params.append(below - SCAN)
    if query.code is not None:
        where.append(f"code = {q}")
        params.append(query.code)
    for bound, when in ((">=", query.since), ("<=", query.until)):
        if when is not None:
            where.append(f"received {bound} {q}")
            params.append(stored_time(recorder, when))
    found = recorder.query(
        f"SELECT id, {REJECTION_COLUMNS} FROM {recorder.table(TABLE)} "
        f"WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT {PAGE + 1}",
        tuple(params),
    )
    rows = [shown(int(row[0]), to_rejection(row[1:])) for row in found]
    if len(rows) > PAGE:
        return RejectionsPage(rows[:PAGE], rows[PAGE - 1].id, newest)
    scanned_to = below - SCAN
    more = query.network is None and scanned_to > 1
    return RejectionsPage(rows, scanned_to if more else None, newest)


def stored_time(recorder: Any, when: datetime) -> Any:
    """A time in UTC as the store keeps `received` (SQLite: ISO text; PostgreSQL: a time)."""
    probe = Rejection(None, None, None, None, "", "", b"", when)
    return recorder.rejection_row(probe)[-1]


def rejection_top(recorder: Any) -> int:
    """The newest rejection's id (0: none kept)."""
    rows = recorder.query(f"SELECT MAX(id) FROM {recorder.table(TABLE)}", ())
    return int(rows[0][0] or 0) if rows else 0


def rejected_in(recorder: Any, after: int, upto: int) -> set[str | None]:
    """The networks (None: an event naming none) rejected from id `after` up to `upto`."""
    q = recorder.mark
    rows = recorder.query(
        f"SELECT DISTINCT network FROM {recorder.table(TABLE)} WHERE id > {q} AND id <= {q}",
        (after, upto),
    )
    return {row[0] for row in rows}


def query_of(given: dict[str, str]) -> Query:
    """The page's filters from its query parameters (BadQuery names a bad one)."""
    network = given.get("network") or None
    if network is not None and not m.is_name(network):
        raise BadQuery(f"network: {network!r} is not a network name")
    code = given.get("code") or None
    if code is not None and code not in CODES:
        raise BadQuery(f"code: {code!r} is not one of {', '.join(CODES)}")
    before = given.get("before") or None
    since, until = given.get("since") or None, given.get("until") or None
    return Query(
        network,
        code,
        None if since is None else _utc(since, "since"),
        None if until is None else _utc(until, "until"),
        None if before is None else whole(before, "before"),
    )


def _utc(text: str, key: str) -> datetime:
    """A time of the filter, in UTC as the store keeps `received`."""
    when = moment(text, key)
    try:
        return when.astimezone(UTC)
    except OverflowError:  # an offset that takes year 1 or 9999 past UTC's range
        raise BadQuery(f"{key}: {text!r} is outside the years 1 to 9999 in UTC") from None
