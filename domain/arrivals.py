"""An inbound event as it arrived, and a rejection kept as a durable outcome (I1, I2).

A source is where events come from in order: a NATS partition, a file. Its
position (a stream sequence, a line number) is recorded with the events it led
to, in one transaction, so that an event delivered again after a crash is
recognised as decided rather than decided again against a later state.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from ctilink.domain import messages as m
from ctilink.domain.decoding import Invalid

# A rejection keeps at most this much of the payload: enough to see what was
# sent, small enough that the rejection fits in any NATS message.
MAX_KEPT_PAYLOAD = 64 << 10


class Arrival(msgspec.Struct, frozen=True):
    """One inbound event, decoded or not, with where it came from."""

    event: m.Message | Invalid
    source: str | None = None  # e.g. "nats:CTILINK_IN:3", "file:/data/events.jsonl"
    position: int | None = None  # its place in the source: stream sequence, line number
    network: str | None = None  # the network it names (for an invalid one: if any)
    payload: bytes = b""  # as sent
    # A sequential source (a NATS partition) delivers in order: its last position
    # is recorded with each batch, compare-and-set. A file keeps a record per line
    # instead (its lines may be shared out among worker processes).
    sequential: bool = True
    encoded: bytes | None = None  # the event encoded by decoding, if it was (saves a pass)

    @property
    def named_network(self) -> str | None:
        """The network the arrival is about, decoded or named."""
        if isinstance(self.event, Invalid):
            return self.network
        return self.event.network


class Rejection(msgspec.Struct, frozen=True):
    """An inbound event that was not appended, and why: kept, and published once."""

    network: str | None
    source: str | None
    position: int | None
    event_id: str | None
    code: str
    message: str
    payload: bytes  # the first MAX_KEPT_PAYLOAD bytes as sent
    received: datetime

    @property
    def truncated(self) -> bool:
        """Whether only the start of the payload was kept."""
        return len(self.payload) >= MAX_KEPT_PAYLOAD
