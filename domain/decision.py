"""One inbound event decided against a network's state: pure and total, in I2's order.

`decide` answers for every state and event, never raises and touches nothing:
where the event's id was accepted before (I3) is looked up by the caller and
passed in, like the state itself.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from ctilink.domain import messages as m
from ctilink.domain import rules
from ctilink.domain.errors import Code, Rejected
from ctilink.domain.state import NetworkState

Seen = tuple[int, bytes]  # where an id was accepted: its position, the event's fingerprint


class Outcome(msgspec.Struct, frozen=True):
    """What became of one inbound event.

    `decided`: its source position was recorded before, so it was decided then
    (a redelivery after a crash); nothing is decided again.
    """

    outcome: Literal["accepted", "duplicate", "rejected", "decided"]
    position: int | None = None
    code: str | None = None
    message: str | None = None


ACCEPTED = Outcome("accepted")  # its position is known once it is recorded
DECIDED = Outcome("decided")


def decide(
    state: NetworkState | None, event: m.Message, fingerprint: bytes, seen: Seen | None
) -> Outcome:
    """Accept, recognise as a duplicate (I3) or reject (I2) one event.

    `state` is None before the network is installed; `seen` is where the event's
    id was accepted before, if it was.
    """
    if seen is not None:  # I3 comes first: whatever the rules would say of it now
        return repeated(event, seen, fingerprint)
    try:
        rules.check(state, event)
    except Rejected as rejection:
        return Outcome("rejected", code=rejection.code, message=rejection.message)
    return ACCEPTED


def repeated(event: m.Message, seen: Seen, fingerprint: bytes) -> Outcome:
    """I3: the same id again is a duplicate with the same content, else a conflict."""
    position, known = seen
    if known == fingerprint:
        return Outcome("duplicate", position=position)
    return Outcome(
        "rejected",
        code=Code.ID_CONFLICT,
        message=f"id {event.id!r} was accepted at position {position} with different content",
    )
