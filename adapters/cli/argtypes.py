"""argparse types shared by several commands: each refuses a bad value in one line."""

from __future__ import annotations

import argparse
import re
from datetime import datetime

from ctilink.adapters.cli.as_of import rfc3339
from ctilink.domain.messages import is_name

DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII digits only: int() takes others too
LAST_POSITION = 2**63 - 1  # the largest position a store can hold (a 64-bit integer)


def positive(text: str) -> int:
    """A whole number from 1 (a count: lines, workers, entries)."""
    if not DIGITS.fullmatch(text) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1")
    return int(text)


def position_or_time(text: str) -> int | datetime:
    """A log position (1 to 2^63-1) or an RFC 3339 time with a UTC offset."""
    if DIGITS.fullmatch(text) and 1 <= int(text) <= LAST_POSITION:
        return int(text)
    try:
        return rfc3339(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a position (a whole number from 1 to {LAST_POSITION}) "
            "nor an RFC 3339 time with a UTC offset (e.g. 2024-03-04T08:00:00Z)"
        ) from None


def network_name(text: str) -> str:
    """A network's name (SPEC §1)."""
    if not is_name(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a network name (1-64 of A-Z a-z 0-9 _ -)"
        )
    return text
