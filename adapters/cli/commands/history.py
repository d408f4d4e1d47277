"""`ctilink replay`, `audit` and `diff`: a network's history, and the `--at-time` lookup."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any, TextIO

import msgspec

from ctilink.adapters.cli.output import emit_json, encode_json
from ctilink.adapters.cli.render import table
from ctilink.domain import messages as m
from ctilink.domain.errors import PositionOutOfRange
from ctilink.domain.service import NetworkService
from ctilink.projections.changes import (
    AUDITED,
    ModeChanges,
    ProviderChanges,
    RowChange,
    audit,
    diff,
    position_at_time,
    replay,
)
from ctilink.projections.log import entry, fields
from ctilink.projections.status import ComponentRow, status


class HistoryError(Exception):
    """A history question with no answer (exit 2, one line)."""


# --- time ---------------------------------------------------------------------


def rfc3339(text: str) -> datetime:
    """An argparse type: an RFC 3339 time with its UTC offset, as `at` is (SPEC §2)."""
    try:
        return msgspec.convert(text, m.Timestamp)
    except msgspec.ValidationError:
        raise argparse.ArgumentTypeError(
            f"not an RFC 3339 time with a UTC offset: {text!r} (e.g. 2024-03-04T08:00:00Z)"
        ) from None


# --- reading the log fast ------------------------------------------------------
#
# `service.log` builds an eventsourcing domain event per position (about 65,000
# a second here); replay and the time lookup read the stored rows themselves
# and decode only what they use: twice to five times as fast. The two structs
# below read the first slots of ctilink.adapters.store.codec.StoredRecord, [received, event, ...];
# tests/test_history.py checks them against `service.log`.

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


def _pages(
    service: NetworkService, network: str, upto: int | None, newest_first: bool
) -> Iterator[list[Any]]:
    """Rows (position, stored record) of positions 1..upto, one query per page."""
    recorder: Any = service.recorder  # adapters' recorders answer `records`
    low, high = 1, (upto if upto is not None else LAST)
    # From the end, the answer is often in the first rows: start small.
    size = min(PAGE, FIRST_PAGE) if newest_first else PAGE
    while low <= high:
        page = recorder.records(network, low, high, size, desc=newest_first)
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
    for page in _pages(service, network, upto, newest_first=False):
        for position, record in page:
            yield position, _decode_logged(record).message


def recorded_times(service: NetworkService, network: str) -> Iterator[tuple[int, datetime]]:
    """(position, recorded time) from the last position down: `at`, else when received."""
    for page in _pages(service, network, None, newest_first=True):
        for position, record in page:
            times = _decode_times(record)
            yield position, times.message.at or times.received


def position_at(service: NetworkService, network: str, moment: datetime) -> int:
    """The highest position recorded at or before `moment` (HistoryError: none is)."""
    service.head(network)  # unknown network -> exit 2
    found = position_at_time(recorded_times(service, network), moment)
    if found is None:
        raise HistoryError(
            f"network {network!r} has no event recorded at or before {moment.isoformat()}"
        )
    return found


def as_of(service: NetworkService, args: argparse.Namespace) -> int | None:
    """The position `--at` or `--at-time` asks for; None for the last one."""
    moment = getattr(args, "at_time", None)
    if moment is None:
        return args.at
    return position_at(service, args.network, moment)


def add_as_of(parser: argparse.ArgumentParser) -> None:
    """`--at POSITION` or `--at-time RFC3339`, not both."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--at", type=int, metavar="POSITION", help="as of this log position")
    group.add_argument(
        "--at-time",
        type=rfc3339,
        metavar="RFC3339",
        help="as of the last position recorded at or before this time "
        "(its `at`, else when it was received)",
    )


# --- rendering changes ----------------------------------------------------------

ARROW = "→"


def describe_row(row: ComponentRow | None) -> str:
    """A component row's state and via, in a few words."""
    if row is None:
        return "absent"
    return f"{row.state} via {row.via}" if row.via is not None else f"{row.state}, no via"


def change_lines(
    mode: ModeChanges, provider_set: ProviderChanges, components: list[RowChange]
) -> list[str]:
    """One line per changed mode key, provider and component row."""
    lines = []
    for key, (old, new) in mode.items():
        old_text = "-" if old is None else _word(old)
        lines.append(f"mode {key}: {old_text} {ARROW} {_word(new)}")
    lines += [f"provider added: {p.kind} {p.target} ({p.origin})" for p in provider_set.added]
    lines += [f"provider removed: {p.kind} {p.target} ({p.origin})" for p in provider_set.removed]
    lines += [
        f"component {c.system} {c.component}: "
        f"{describe_row(c.before)} {ARROW} {describe_row(c.after)}"
        for c in components
    ]
    return lines


def _word(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


# --- progress -----------------------------------------------------------------

PROGRESS_FROM = 10_000  # positions; shorter replays finish before a bar is worth drawing


class Progress:
    """A progress bar on a terminal: `replay [#####.....]  52% 52,000/100,000`."""

    width = 30

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.stream = stream
        self.every = max(1, total // 200)
        self.next = 0

    @classmethod
    def maybe(cls, total: int, stream: TextIO | None = None) -> Progress | None:
        """A bar when `stream` (stderr) is a terminal and the log is long, else None."""
        stream = sys.stderr if stream is None else stream
        return cls(total, stream) if total >= PROGRESS_FROM and stream.isatty() else None

    def update(self, done: int) -> None:
        """Redraw, at most every 0.5 % of the way."""
        if done < self.next and done < self.total:
            return
        self.next = done + self.every
        filled = self.width * done // self.total
        bar = "#" * filled + "." * (self.width - filled)
        percent = 100 * done // self.total
        self.stream.write(f"\rreplay [{bar}] {percent:3d}% {done:,}/{self.total:,}")
        self.stream.flush()

    def close(self) -> None:
        """Clear the bar's line."""
        self.stream.write("\r\x1b[K")
        self.stream.flush()


# --- replay -----------------------------------------------------------------------


def cmd_replay(service: NetworkService, args: argparse.Namespace) -> int:
    """Fold the log position by position and print what each one changed."""
    head = service.head(args.network)
    upto = head if args.to is None else args.to
    if not 1 <= upto <= head:
        raise PositionOutOfRange(args.network, upto, head)
    log = logged_messages(service, args.network, upto)
    progress = Progress.maybe(upto)
    out = sys.stdout.buffer
    width = len(str(upto))
    try:
        for step in replay(log):
            if args.json:
                out.write(encode_json(step) + b"\n")
            else:
                lines = change_lines(step.mode, step.providers, step.components)
                header = f"{step.position:>{width}} {step.type}"
                text = "\n".join([header] + [f"{'':>{width}}   {line}" for line in lines])
                out.write((text if lines else f"{header} (no change)").encode() + b"\n")
            if progress is not None:
                progress.update(step.position)
    finally:
        if progress is not None:
            progress.close()
    return 0


# --- audit --------------------------------------------------------------------------


def cmd_audit(service: NetworkService, args: argparse.Namespace) -> int:
    """Settings, conversions, restarts, provider records and topology, with the modes."""
    service.head(args.network)  # unknown network -> exit 2
    entries = (entry(event) for event in service.log(args.network))
    found = audit(entries, since=args.since, types=args.type)
    if args.json:
        for item in found:
            emit_json(item)
        return 0
    rows = []
    for item in found:
        detail = " ".join(f"{k}={encode_json(v).decode()}" for k, v in fields(item.event).items())
        rows.append(
            (
                item.position,
                item.at.isoformat(timespec="seconds"),
                item.actor,
                item.type,
                detail,
                _before_after(item.configured),
                _before_after(item.effective),
            )
        )
    print(table(("position", "at", "actor", "type", "fields", "configured", "effective"), rows))
    return 0


def _before_after(pair: tuple[str | None, str]) -> str:
    """`old → new` when the mode moved, else the one mode."""
    old, new = pair
    return new if old in (None, new) else f"{old} {ARROW} {new}"


# --- diff -----------------------------------------------------------------------------


def cmd_diff(service: NetworkService, args: argparse.Namespace) -> int:
    """What differs in the status document between two positions."""
    before = status(*service.state_at(args.network, args.a))
    after = status(*service.state_at(args.network, args.b))
    found = diff(before, after)
    if args.json:
        emit_json(found)
        return 0
    print(f"{found.network}: position {found.from_} {ARROW} {found.to}")
    lines = change_lines(found.mode, found.providers, found.components)
    print("\n".join(f"  {line}" for line in lines) if lines else "  no differences")
    return 0


def register(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the commands to the parser."""
    p = verbs.add_parser(
        "replay", parents=[common], help="what each log position changed in the status"
    )
    p.add_argument("network")
    p.add_argument("--to", type=int, metavar="POSITION", help="stop after this position")
    p.set_defaults(run=cmd_replay)

    p = verbs.add_parser(
        "audit", parents=[common], help="settings, restarts, providers and topology changes"
    )
    p.add_argument("network")
    p.add_argument(
        "--since", type=rfc3339, metavar="RFC3339", help="only events recorded at or after this"
    )
    p.add_argument(
        "--type",
        action="extend",
        nargs="+",
        choices=AUDITED,
        metavar="TYPE",
        help=f"only these event types (any of: {', '.join(AUDITED)})",
    )
    p.set_defaults(run=cmd_audit)

    p = verbs.add_parser("diff", parents=[common], help="status differences between positions")
    p.add_argument("network")
    p.add_argument("a", type=int, metavar="A", help="from this position")
    p.add_argument("b", type=int, metavar="B", help="to this position")
    p.set_defaults(run=cmd_diff)
