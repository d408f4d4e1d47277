"""The write side's collaborator: networks held between batches, one query per lookup, snapshots.

A batch is loaded with one query for the heads of the networks held here (so
that one another writer moved on is read afresh), one for where its ids were
accepted before (I3), and the held positions of its sources; it is saved by the
application in one transaction with what `records` gives.

Snapshots are taken by size rather than by count: when the events written
since a network's last snapshot weigh as much as that snapshot did, so that a
long run of small events after a large state (thousands of directory entries)
costs at most about twice their own size, and loading a network reads at most
about twice its state. `snapshot_interval` (positions) takes them every N
positions instead, for tests that need snapshots at known places.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent

from ctilink.adapters.store.persistence.times import time_rows
from ctilink.domain import messages as m
from ctilink.domain.application import NetworkService
from ctilink.domain.arrivals import Arrival
from ctilink.domain.batch import Batch, Loaded
from ctilink.domain.decoding import Invalid
from ctilink.domain.errors import DamagedLog
from ctilink.domain.network import Network, Recorded, project, recorded_at
from ctilink.projections.overview import overview

# A network's snapshot is due once its events since the last one weigh this much
# at least, and at least what that snapshot weighed.
MIN_SNAPSHOT_BYTES = 32 << 10
RECORD_OVERHEAD = 120  # a stored row's bytes beyond its event's: time, digest, chain


class Held:
    """A network held between batches, and what was written since its last snapshot."""

    __slots__ = ("network", "since", "snapshot")

    def __init__(self, network: Network | None, since: int = 0, snapshot: int = 0) -> None:
        self.network = network  # None: not installed (yet)
        self.since = since  # bytes of the events written after its last snapshot
        self.snapshot = snapshot  # bytes of that snapshot (0: it has none)


class StoreWrites:
    """Loads batches for the application and says what to save with them."""

    max_cached_networks = 10_000

    def __init__(self, service: NetworkService) -> None:
        self.service = service
        self.recorder: Any = service.recorder
        self.held: OrderedDict[str, Held] = OrderedDict()
        self.sources: dict[str, int] = {}  # sequential source -> last position saved
        self.snapshot_interval: int | None = None  # positions; None: by size

    # --- load ------------------------------------------------------------------

    def load(self, arrivals: Sequence[Arrival | m.Message]) -> Batch:
        """A batch holding what the arrivals need, read in a few queries."""
        events = [a.event if isinstance(a, Arrival) else a for a in arrivals]
        events = [e for e in events if not isinstance(e, Invalid)]
        networks = self._networks({event.network for event in events})
        seen = self.recorder.lookup_ids({(event.network, event.id) for event in events})
        sources = {
            a.source: self._source(a.source)
            for a in arrivals
            if isinstance(a, Arrival) and a.sequential and a.source and a.position is not None
        }
        received = Recorded.create_timestamp()
        return Batch(received, networks, seen, sources, self._snapshot)

    def _networks(self, names: set[str]) -> dict[str, Loaded]:
        """Each named network: held (if the store has nothing newer) or read afresh."""
        held = [name for name in names if name in self.held]
        heads = self.recorder.heads_of(held) if held else {}
        found: dict[str, Loaded] = {}
        for name in names:
            entry = self.held.get(name)
            version = 0 if entry is None or entry.network is None else entry.network.version
            if entry is not None and heads.get(name, 0) == version:
                self.held.move_to_end(name)
                found[name] = entry.network
                continue
            try:
                entry = self._read(name)
            except DamagedLog as damage:  # its events are rejected; the others go on
                self.held.pop(name, None)
                found[name] = damage
                continue
            self.held[name] = entry
            found[name] = entry.network
        while len(self.held) > self.max_cached_networks:
            self.held.popitem(last=False)
        return found

    def _read(self, name: str) -> Held:
        """A network from its latest snapshot (checked) and the events after, with their sizes."""
        snapshots: Any = self.service.snapshots
        rows = snapshots.recorder.select_events(name, desc=True, limit=1) if snapshots else []
        snapshot = self.service.mapper.to_domain_event(rows[0]) if rows else None
        if snapshot is not None:
            self.service.check_snapshot(name, snapshot)
        after = None if snapshot is None else snapshot.originator_version
        events = self.recorder.select_events(name, gt=after)
        start = None if snapshot is None else project(None, [snapshot])
        network = project(start, map(self.service.mapper.to_domain_event, events))
        since = sum(len(row.state) for row in events)
        return Held(network, since, len(rows[0].state) if rows else 0)

    def _source(self, source: str) -> int:
        """A sequential source's last position saved (held until a save fails)."""
        position = self.sources.get(source)
        if position is None:
            position = self.sources[source] = self.recorder.inbound_position(source)
        return position

    # --- snapshots -----------------------------------------------------------------

    def _snapshot(self, network: Network, event_bytes: int) -> StoredEvent | None:
        """The network's snapshot, encoded, if one is due now that it recorded an event."""
        entry = self.held.get(network.id)
        if entry is None:  # installed by this batch
            entry = self.held[network.id] = Held(network)
        entry.network = network
        entry.since += event_bytes + RECORD_OVERHEAD
        if self.snapshot_interval is not None:
            due = network.version % self.snapshot_interval == 0
        else:
            due = entry.since >= max(entry.snapshot, MIN_SNAPSHOT_BYTES)
        if not due:
            return None
        stored: StoredEvent = self.service.mapper.to_stored_event(Network.Snapshot.take(network))
        entry.since, entry.snapshot = 0, len(stored.state)
        return stored

    # --- save ------------------------------------------------------------------------

    def records(self, batch: Batch) -> dict[str, Any]:
        """What is saved with the batch's events, in their transaction."""
        return {
            "snapshots": batch.snapshots,
            "sources": batch.sources,
            "rejections": batch.rejections,
            "journal": batch.journal,
            "ids": [(net, event_id, pos) for (net, event_id), (pos, _) in batch.ids.items()],
            "times": [
                row
                for name, n in batch.changed.items()
                for row in time_rows(
                    name, ((e.originator_version, recorded_at(e)) for e in n.pending_events)
                )
            ],
            # Each changed network's line of the listings.
            "networks": [
                overview(n.state, n.version, recorded_at(n.pending_events[-1]))
                for n in batch.changed.values()
            ],
        }

    def saved(self, batch: Batch) -> None:
        """Hold the batch's networks and sources: they are what the store has now."""
        for name, network in batch.networks.items():
            if isinstance(network, DamagedLog):
                continue
            entry = self.held.get(name)
            if entry is None:
                self.held[name] = Held(network)
            else:
                entry.network = network
        for source, (_, after) in batch.sources.items():
            self.sources[source] = after

    def forget(self, batch: Batch) -> None:
        """Drop what is held of the batch's networks (ahead of the store) and the sources."""
        for name in batch.networks:
            self.held.pop(name, None)
        self.sources.clear()  # another writer may have moved one: read them afresh
