"""What each page of the console shows, read from the store, bounded in size.

Whatever the events hold, a page stays small: a value longer than SPEC v1.1's
256 characters is cut with a visible marker (`…[cut: 1,030,000 chars]`), a
log row shows the first LIST_SHOWN items of a list and says how many more
there are, and a log page ends early once its rows' fields reach PAGE_TEXT
characters (the next page goes on from there).
"""

from __future__ import annotations

from datetime import datetime
from itertools import islice
from typing import Any, get_args

import msgspec

from ctilink.adapters.store.queries.listing import each_line
from ctilink.adapters.store.queries.log_reader import position_recorded_by
from ctilink.adapters.store.queries.networks import SORTS, Filters
from ctilink.adapters.text import cut
from ctilink.adapters.web.search import any_holds, networks_holding
from ctilink.domain import messages as m
from ctilink.domain.application import NetworkService
from ctilink.domain.errors import PositionOutOfRange
from ctilink.domain.mode import Mode
from ctilink.projections.changes import (
    AuditEntry,
    Changes,
    Diff,
    audit,
    compare,
    diff,
)
from ctilink.projections.directory import PersonalEntry, SystemEntry, directory
from ctilink.projections.log import LogEntry, entry, fields
from ctilink.projections.overview import Overview
from ctilink.projections.status import Status, status

TYPES = tuple(sorted(cls.__struct_config__.tag for cls in get_args(m.Message)))
OVERVIEW_PAGE = 100  # networks a page of the overview
LOG_PAGE = 100  # positions a page of the log
SCAN = 20_000  # positions read for one page at most
LIST_SHOWN = 10  # items of a list a log row shows
PAGE_TEXT = 200_000  # characters of fields a log page shows (at least one row)
_encode = msgspec.json.Encoder().encode


class BadQuery(ValueError):
    """A query parameter with no answer: the page says which and why (400)."""


class OverviewPage(msgspec.Struct, frozen=True):
    """One page of the overview, and where the next starts."""

    lines: list[Overview]
    next_after: str | None  # None: the last page (sorted by name)
    page: int = 1  # sorted otherwise: pages by number
    more: bool = False


def overview_page(service: NetworkService, query: dict[str, str]) -> OverviewPage:
    """A page of networks from the network index, filtered as asked."""
    effective = query.get("effective") or None
    if effective is not None and effective not in {mode.value for mode in Mode}:
        raise BadQuery(f"effective: {effective!r} is not a mode")
    prefix = query.get("name") or None
    if prefix is not None and not m.is_name(prefix):
        raise BadQuery(f"name: {prefix!r} is not the start of a network name")
    text = query.get("q") or None
    if text is not None and not m.is_name(text):
        raise BadQuery(f"q: {text!r} cannot be part of a network name ([A-Za-z0-9_-])")
    after = query.get("after") or None
    if after is not None and not m.is_name(after):
        raise BadQuery(f"after: {after!r} is not a network name")
    sort = query.get("sort") or "name"
    if sort != "name" and sort not in SORTS:
        raise BadQuery(f"sort: {sort!r} is not one of name, {', '.join(SORTS)}")
    page = whole(query.get("page") or "1", "page")
    if not 1 <= page <= 10**9:
        raise BadQuery(f"page: {page} is not a page (they start at 1)")
    filters = Filters(
        after=after if sort == "name" else None,
        limit=OVERVIEW_PAGE + 1,  # one more tells whether a next page exists
        effective=effective,
        restart_pending=_flag(query.get("restart_pending") or "", "restart_pending"),
        name_prefix=prefix,
        sort=None if sort == "name" else sort,
        offset=0 if sort == "name" else (page - 1) * OVERVIEW_PAGE,
    )
    if text is None:
        lines = list(each_line(service, filters, []))
    else:
        lines = networks_holding(service, text, filters)
    more = len(lines) > OVERVIEW_PAGE
    lines = lines[:OVERVIEW_PAGE]
    following = lines[-1].network if more and sort == "name" else None
    return OverviewPage(lines, following, page, more)


class LogRow(msgspec.Struct, frozen=True):
    """One position of the log page."""

    position: int
    at: datetime
    actor: str
    type: str
    id: str
    fields: dict[str, Any]


class NetworkPage(msgspec.Struct, frozen=True):
    """A network's status document as of a position, where that position stands, the event
    that made it and what that changed in the status (from the position before)."""

    status: Status
    head: int  # the last position
    recorded: datetime  # when the position shown was recorded
    past: bool  # not the last position
    made_by: LogRow
    changed: Changes


def network_page(service: NetworkService, name: str, query: dict[str, str]) -> NetworkPage:
    """The status right after the position asked for (`at` or `at-time`), or now."""
    head = service.head(name)  # UnknownNetwork: 404
    position = _position(service, name, query, head)
    try:
        state, position = service.state_at(name, position)
    except PositionOutOfRange as error:
        raise BadQuery(f"at: {error}") from None
    (event,) = service.events.get(name, gt=position - 1, lte=position)
    made = entry(event)
    now = status(state, position)
    before = status(*service.state_at(name, position - 1)) if position > 1 else None
    return NetworkPage(now, head, made.at, position != head, log_row(made), compare(before, now))


def _position(service: NetworkService, name: str, query: dict[str, str], head: int) -> int:
    """The position `at` or `at-time` names (BadQuery: malformed or out of range)."""
    at, at_time = query.get("at"), query.get("at-time")
    if at and at_time:
        raise BadQuery("at and at-time: ask for one of them, not both")
    if at_time:
        when = moment(at_time, "at-time")
        found = position_recorded_by(service, name, when)
        if found is None:
            raise BadQuery(f"at-time: nothing was recorded at or before {when.isoformat()}")
        return found
    if not at:
        return head
    if not at.isascii() or not at.isdigit() or len(at) > 18:
        raise BadQuery(f"at: {at!r} is not a position (a whole number from 1)")
    position = int(at)
    if not 1 <= position <= head:
        raise BadQuery(f"at: position {position} is out of range (1..{head})")
    return position


class LogPage(msgspec.Struct, frozen=True):
    """A page of a network's log, from a position on, maybe of one type."""

    rows: list[LogRow]
    head: int
    next_after: int | None  # None: the last page


def log_page(service: NetworkService, name: str, query: dict[str, str]) -> LogPage:
    """Up to LOG_PAGE positions after `after`, of the type asked for (if any)."""
    head = service.head(name)
    after_text = query.get("after") or "0"
    if not after_text.isascii() or not after_text.isdigit() or len(after_text) > 18:
        raise BadQuery(f"after: {after_text!r} is not a position")
    kind = query.get("type") or None
    if kind is not None and kind not in TYPES:
        raise BadQuery(f"type: {kind!r} is not an event type")
    after = int(after_text)
    # At most SCAN positions a request, so that no one page can hold the reader up;
    # a page that found fewer rows in them goes on from where it stopped.
    upto = min(after + SCAN, head)
    events = (
        event
        for event in service.log(name, upto=upto, after=after)
        if kind is None or m.type_of(event.message) == kind
    )
    rows: list[LogRow] = []
    text = 0
    for e in (entry(event) for event in islice(events, LOG_PAGE + 1)):
        if len(rows) == LOG_PAGE or (rows and text >= PAGE_TEXT):
            return LogPage(rows, head, rows[-1].position)  # the rest on the next page
        row = log_row(e)
        text += len(_encode(row.fields))
        rows.append(row)
    return LogPage(rows, head, _next(rows, upto, head))


def log_row(e: LogEntry) -> LogRow:
    """One log entry as a page shows it, its fields bounded."""
    return LogRow(e.position, e.at, e.actor, e.type, e.event.id, bounded(fields(e.event)))


def bounded(value: Any) -> Any:
    """Data as a page shows it: long strings cut, long lists' first items and a count."""
    if isinstance(value, str):
        return cut(value)
    if isinstance(value, dict):
        return {cut(str(k)): bounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        shown = [bounded(item) for item in value[:LIST_SHOWN]]
        if len(value) > LIST_SHOWN:
            shown.append(f"…[and {len(value) - LIST_SHOWN:,} more]")
        return shown
    return value


def _next(rows: list[Any], upto: int, head: int) -> int | None:
    """Where the next page starts: after a full page's last row, or after the scan's end."""
    if len(rows) > LOG_PAGE:
        return int(rows[LOG_PAGE - 1].position)
    return upto if upto < head else None


DIRECTORY_PAGE = 200  # entries a page of each directory
SEARCHED = 256  # characters of a directory search (SPEC v1.1's longest name or number)


class DirectoryPage(msgspec.Struct, frozen=True):
    """A page of the system directory and of the personal directories, as of a position."""

    position: int
    head: int
    system: list[SystemEntry]
    personal: list[tuple[str, PersonalEntry | None]]  # (user, entry); None: none reported yet
    page: int
    more: bool


def directory_page(service: NetworkService, name: str, query: dict[str, str]) -> DirectoryPage:
    """Both directories (SPEC §7) right after the position asked for, a page at a time."""
    head = service.head(name)
    state, position = service.state_at(name, _position(service, name, query, head))
    document = directory(state, position)
    number = whole(query.get("page") or "1", "page")
    if number < 1:
        raise BadQuery(f"page: {number} is not a page (they start at 1)")
    personal = [
        (user, entry)
        for user, entries in document.personal.items()
        for entry in (entries or [None])
    ]
    found = document.system
    text = query.get("q") or None
    if text is not None:
        if len(text) > SEARCHED:
            raise BadQuery(f"q: {len(text):,} characters; a search holds at most {SEARCHED}")
        found = [e for e in found if any_holds(text, e.name, e.number, e.system, e.via)]
        personal = [
            (user, e) for user, e in personal if any_holds(text, user, e and e.name, e and e.number)
        ]
    start, end = (number - 1) * DIRECTORY_PAGE, number * DIRECTORY_PAGE
    more = len(found) > end or len(personal) > end
    system = [
        msgspec.structs.replace(e, name=cut(e.name), number=cut(e.number)) for e in found[start:end]
    ]
    shown = [
        (user, entry and PersonalEntry(cut(entry.name), cut(entry.number)))
        for user, entry in personal[start:end]
    ]
    return DirectoryPage(position, head, system, shown, number, more)


class AuditPage(msgspec.Struct, frozen=True):
    """A page of the audit trail: configuration changes with the modes before and after."""

    rows: list[AuditEntry]
    next_after: int | None


def audit_page(service: NetworkService, name: str, query: dict[str, str]) -> AuditPage:
    """Up to LOG_PAGE audited positions after `after` (as `ctilink audit`)."""
    head = service.head(name)
    after = whole(query.get("after") or "0", "after")
    if after > head:
        raise BadQuery(f"after: position {after} is beyond the log's end ({head})")
    start = service.state_at(name, after)[0] if after else None  # from a snapshot
    upto = min(after + SCAN, head)
    found = audit((entry(e) for e in service.log(name, upto=upto, after=after)), start=start)
    rows = list(islice(found, LOG_PAGE + 1))
    return AuditPage(rows[:LOG_PAGE], _next(rows, upto, head))


def diff_page(service: NetworkService, name: str, query: dict[str, str]) -> Diff:
    """What changed in the status from position `from` to position `to` (as `ctilink diff`)."""
    head = service.head(name)
    if not query.get("from") and not query.get("to"):  # the last position's own change
        query = {"from": str(max(head - 1, 1)), "to": str(head)}
    positions = []
    for key in ("from", "to"):
        if not query.get(key):
            raise BadQuery(f"{key}: a position is needed (diff?from=A&to=B)")
        position = whole(query[key], key)
        if not 1 <= position <= head:
            raise BadQuery(f"{key}: position {position} is out of range (1..{head})")
        positions.append(position)
    before, after = (status(*service.state_at(name, p)) for p in positions)
    return diff(before, after)


def _flag(text: str, key: str) -> bool | None:
    """A yes-only filter: `1` or `true` turns it on, nothing leaves it off."""
    if text in ("", "0", "false"):
        return None
    if text in ("1", "true", "on"):
        return True
    raise BadQuery(f"{key}: {text!r} is not 1 or true")


def moment(text: str, key: str) -> datetime:
    """An RFC 3339 time with a UTC offset (BadQuery names `key` otherwise)."""
    # A "+05:00" typed into a URL arrives as " 05:00": a space is never meant.
    text = text.replace(" ", "+")
    try:
        return msgspec.convert(text, m.Timestamp)
    except msgspec.ValidationError:
        raise BadQuery(f"{key}: {text!r} is not an RFC 3339 time with a UTC offset") from None


def whole(text: str, key: str) -> int:
    """A parameter that must be a whole number (BadQuery names it otherwise)."""
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise BadQuery(f"{key}: {text!r} is not a whole number")
    return int(text)
