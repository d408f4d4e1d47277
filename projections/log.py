"""Log entries as users read them, and folds of the log to any position."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import msgspec

from ctilink.domain import messages as m
from ctilink.domain.network import Installed, Recorded, recorded_at
from ctilink.domain.state import NetworkState, step


class LogEntry(msgspec.Struct, frozen=True):
    """One position of a network's log."""

    network: str
    position: int
    at: datetime
    actor: str
    type: str
    event: m.Message


def entry(event: Installed | Recorded) -> LogEntry:
    """The log entry for one stored event."""
    message = event.message
    return LogEntry(
        network=message.network,
        position=event.originator_version,
        at=recorded_at(event),
        actor=message.actor,
        type=m.type_of(message),
        event=message,
    )


def fields(message: m.Message) -> dict[str, Any]:
    """The event's own fields, without the envelope."""
    envelope = {"type", "id", "network", "at", "actor"}
    return {k: v for k, v in msgspec.to_builtins(message).items() if k not in envelope}


def fold(messages: Iterable[m.Message]) -> NetworkState | None:
    """The state after applying accepted events in order, from nothing."""
    state: NetworkState | None = None
    for message in messages:
        state = step(state, message)
    return state
