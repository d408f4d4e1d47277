"""The network aggregate: its event stream is the network's append-only log."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from eventsourcing.domain import (
    BaseAggregate,
    CanInitAggregate,
    CanMutateAggregate,
    CanSnapshotAggregate,
)

from ctilink.domain import messages as m
from ctilink.domain.errors import DamagedLog
from ctilink.domain.state import NetworkState, evolve, install


@dataclass(frozen=True)
class Recorded(CanMutateAggregate[str]):
    """One accepted inbound event at the next position of the network's log."""

    originator_id: str
    originator_version: int
    timestamp: datetime  # when it was received
    message: m.Message
    fingerprint: bytes  # of the message, for idempotency (I3)
    chain: bytes  # hash of the previous position's chain and this event (tamper evidence)
    # The message as decoding encoded it, when that is how the log keeps it: the
    # store writes these bytes rather than encoding the message again. Not stored.
    encoded: bytes | None = field(default=None, compare=False, repr=False)

    def apply(self, aggregate: Network) -> None:
        """Fold the event into the aggregate's state."""
        evolve(aggregate.state, self.message)
        aggregate.chain = self.chain


@dataclass(frozen=True)
class Installed(CanInitAggregate[str]):
    """Position 1: `portal_installed`, which creates the network."""

    originator_id: str
    originator_version: int
    timestamp: datetime
    originator_topic: str
    message: m.PortalInstalled
    fingerprint: bytes
    chain: bytes

    def apply(self, aggregate: Network) -> None:
        """Set up the initial state (M1)."""
        aggregate.state = install(self.message)
        aggregate.chain = self.chain


@dataclass(frozen=True)
class Snapshot(CanSnapshotAggregate[str]):
    """The network's state at one position, so loading stays fast."""

    originator_id: str
    originator_version: int
    timestamp: datetime
    topic: str
    state: dict[str, Any]


class Network(BaseAggregate[str]):
    """One portal's network, identified by its name."""

    Snapshot = Snapshot
    state: NetworkState
    chain: bytes  # the hash chain at the current position

    def __init__(self, message: m.PortalInstalled) -> None:
        """Created by the `Installed` event; its apply sets the state."""

    @classmethod
    def install(cls, message: m.Message, received: datetime, content: m.Content) -> Network:
        """Create a network from its `portal_installed` event (decided: decision.py)."""
        return cls._create(
            Installed,
            id=message.network,
            message=message,
            timestamp=received,
            fingerprint=content.fingerprint,
            chain=link(GENESIS, content, received),
        )

    def record(self, message: m.Message, received: datetime, content: m.Content) -> None:
        """Append an accepted event at the next position (decided: decision.py)."""
        event = build(
            Recorded,
            originator_id=self.id,
            originator_version=self.version + 1,
            timestamp=received,
            message=message,
            fingerprint=content.fingerprint,
            chain=link(self.chain, content, received),
            encoded=content.whole,
        )
        # What event.mutate(self) does, without re-checking the id and version
        # that were set just above: this is the ingest hot path.
        event.apply(self)
        self.version = event.originator_version
        self.modified_on = received
        self.pending_events.append(event)


def check_follows(network: str, expected: int, found: int) -> None:
    """DamagedLog unless a stored position is the one expected next (the log has no gaps)."""
    if found != expected:
        raise DamagedLog(network, expected, f"the position is missing; the next row is {found}")


def project(aggregate: Network | None, events: Iterable[Any]) -> Network | None:
    """Fold stored events into an aggregate (or a snapshot into one); DamagedLog if one misfits."""
    # eventsourcing's default projector asserts a runtime-checkable Protocol on
    # every event, which costs more than the fold itself.
    for event in events:
        if not isinstance(event, Snapshot):
            expected = 1 if aggregate is None else aggregate.version + 1
            check_follows(event.originator_id, expected, event.originator_version)
        try:
            aggregate = event.mutate(aggregate)
        except Exception as error:  # a row deleted, renumbered, or of the wrong kind
            reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise DamagedLog(
                event.originator_id,
                event.originator_version,
                reason or f"{type(event).__name__} does not follow the position before it",
            ) from None
    return aggregate


def build(cls: type[Any], **fields: Any) -> Any:
    """Make a frozen event without its dataclass __init__, as the mapper does (hot path)."""
    event = object.__new__(cls)
    object.__setattr__(event, "__dict__", fields)
    return event


def recorded_at(event: Recorded | Installed) -> datetime:
    """When the event happened: its `at`, else when it was received."""
    return event.message.at or event.timestamp


GENESIS = bytes(32)


def link(previous: bytes, content: m.Content, received: datetime) -> bytes:
    """The next hash of the chain: it covers the previous hash and the event as logged."""
    return hashlib.blake2b(previous + content.logged(received), digest_size=32).digest()
