"""One ingest call's work: what it read, what it decided, and what it will save.

The store fills a Batch before anything is decided (each network the batch
names as it stands, where the batch's ids were accepted before, each partition's
last decided position) and saves it after, in one transaction. Deciding in
between touches nothing but the batch: the rules are decision.py's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ctilink.domain import messages as m
from ctilink.domain.arrivals import MAX_KEPT_PAYLOAD, Arrival, Rejection
from ctilink.domain.decision import ACCEPTED, DECIDED, Outcome, Seen, decide
from ctilink.domain.decoding import Invalid
from ctilink.domain.errors import Code, DamagedLog
from ctilink.domain.network import Network

# What the store says of each network a batch names: its aggregate, None before
# `portal_installed`, or why its stored log cannot be read.
Loaded = Network | None | DamagedLog
# Given a network that just recorded an event (and that event's size), the
# store's snapshot of it if one is due now, encoded at once: the state moves on.
SnapshotPolicy = Callable[[Network, int], Any]


class Batch:
    """The networks, ids and sources one ingest call decides against, and its decisions."""

    __slots__ = (
        "changed",
        "decided",
        "ids",
        "journal",
        "networks",
        "received",
        "rejections",
        "seen",
        "snapshot",
        "snapshots",
        "sources",
    )

    def __init__(
        self,
        received: datetime,
        networks: dict[str, Loaded],
        seen: dict[tuple[str, str], Seen],
        sources: dict[str, int],
        snapshot: SnapshotPolicy | None = None,
    ) -> None:
        self.received = received  # one receive time for the batch: the clock is not free
        self.networks = networks
        self.seen = seen  # (network, id) -> where it was accepted before this batch
        self.decided = dict(sources)  # sequential source -> last position decided before
        self.sources: dict[str, tuple[int, int]] = {}  # source -> (before, after this batch)
        self.ids: dict[tuple[str, str], Seen] = {}  # accepted in this batch
        self.changed: dict[str, Network] = {}  # the networks with events to save
        self.rejections: list[Rejection] = []
        self.snapshot = snapshot
        self.snapshots: list[Any] = []  # as the store keeps them
        self.journal: Any = None  # what the caller keeps of the batch (a file's outcomes)

    def decide(self, arrival: Arrival | m.Message) -> Outcome:
        """Decide one arrival, once per source position; keep a rejection with its payload."""
        if not isinstance(arrival, Arrival):
            return self._decide(arrival, None)
        source, position = arrival.source, arrival.position
        if arrival.sequential and source is not None and position is not None:
            last = self.decided.get(source, 0)
            if position <= last:
                return DECIDED  # decided by an earlier commit: delivered again
            before = self.sources.get(source, (last, last))[0]
            self.sources[source] = (before, position)
            self.decided[source] = position
        event = arrival.event
        if isinstance(event, Invalid):
            outcome = Outcome("rejected", code=Code.INVALID, message=event.message)
        else:
            outcome = self._decide(event, arrival.encoded)
        if outcome.outcome == "rejected":
            self.rejections.append(
                Rejection(
                    network=arrival.named_network,
                    source=source,
                    position=position,
                    event_id=event.id,
                    code=outcome.code or "",
                    message=outcome.message or "",
                    payload=arrival.payload[:MAX_KEPT_PAYLOAD],
                    received=self.received,
                )
            )
        return outcome

    def _decide(self, event: m.Message, encoded: bytes | None) -> Outcome:
        """Decide one event against its network as this batch holds it; record it if accepted."""
        name = event.network
        network = self.networks.get(name)
        if isinstance(network, DamagedLog):  # the others are decided all the same
            return Outcome("rejected", code=Code.LOG_DAMAGED, message=str(network))
        content = m.Content(event, encoded)
        key = (name, event.id)
        seen = self.ids.get(key) or self.seen.get(key)
        state = None if network is None else network.state
        outcome = decide(state, event, content.fingerprint, seen)
        if outcome is not ACCEPTED:
            return outcome
        if network is None:
            network = self.networks[name] = Network.install(event, self.received, content)
        else:
            network.record(event, self.received, content)
        self.changed[name] = network
        self.ids[key] = (network.version, content.fingerprint)
        if self.snapshot is not None:
            taken = self.snapshot(network, len(content.body))
            if taken is not None:
                self.snapshots.append(taken)
        return Outcome("accepted", position=network.version)
