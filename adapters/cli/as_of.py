"""`--at POSITION` and `--at-time RFC3339`: which position a question is asked of."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import msgspec

from ctilink.adapters.errors import UserError
from ctilink.adapters.store.queries.log_reader import position_recorded_by
from ctilink.domain import messages as m
from ctilink.domain.application import NetworkService


class HistoryError(UserError):
    """A history question with no answer (exit 2, one line)."""


def rfc3339(text: str) -> datetime:
    """An argparse type: an RFC 3339 time with its UTC offset, as `at` is (SPEC §2)."""
    try:
        moment = msgspec.convert(text, m.Timestamp)
        moment.astimezone(UTC)  # an instant of years 1 to 9999 in UTC, as `at` (I1)
    except (msgspec.ValidationError, OverflowError):
        raise argparse.ArgumentTypeError(
            f"not an RFC 3339 time with a UTC offset: {text!r} (e.g. 2024-03-04T08:00:00Z)"
        ) from None
    return moment


def position_at(service: NetworkService, network: str, moment: datetime) -> int:
    """The highest position recorded at or before `moment` (HistoryError: none is)."""
    service.head(network)  # unknown network -> exit 2
    found = position_recorded_by(service, network, moment)
    if found is None:
        raise HistoryError(
            f"network {network!r} has no event recorded at or before {moment.isoformat()}"
        )
    return found


def first_of_range(service: NetworkService, network: str, since: int | datetime | None) -> int:
    """The first position `--since` keeps: the position itself, or for a time the one after
    the last position recorded before it (so later positions with earlier times count too)."""
    if since is None:
        return 1
    if isinstance(since, int):
        return since
    return (position_recorded_by(service, network, since, before=True) or 0) + 1


def last_of_range(
    service: NetworkService, network: str, until: int | datetime | None
) -> int | None:
    """The last position `--until` keeps (None: the last there is): the position itself, or
    for a time the one `--at-time` would show (0 when no event was recorded by then)."""
    if until is None or isinstance(until, int):
        return until
    return position_recorded_by(service, network, until) or 0


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
