"""The application service over a real store: caches, conflicts and one transaction a batch.

eventsourcing's own aggregate cache (AGGREGATE_CACHE_MAXSIZE) is not used: ingest
writes in one thread while queries read in another, and its one cache either
deep-copies the network at every get (FASTFORWARD: and asks the store each time)
or hands both threads the aggregate the writer is changing. So writes hold their
networks here, and learn of another writer from the conflict when saving; reads
hold copies of their own, caught up from the log.
"""

from __future__ import annotations

import copy
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from eventsourcing.persistence import IntegrityError, JSONTranscoder, Mapper

from ctilink.adapters.store.codec import NetworkMapper
from ctilink.domain import messages as m
from ctilink.domain.arrivals import Arrival
from ctilink.domain.errors import DamagedLog, UnknownNetwork
from ctilink.domain.network import Network, recorded_at
from ctilink.domain.service import (
    Batch,
    NetworkService,
    Outcome,
    StaleNetwork,
    Writable,
    project,
)
from ctilink.domain.state import NetworkState
from ctilink.projections.overview import overview

Seen = tuple[int, bytes]  # where an id was accepted: position, fingerprint


class StoredNetworks(NetworkService):
    """NetworkService with the caching and retries a store shared by writers needs."""

    # eventsourcing names an application after its class unless told: the name
    # picks the PostgreSQL tables (ctilink_events, …) and the environment prefix.
    name = NetworkService.name
    max_cached_networks = 10_000
    # About 16 KB each for a 10-system network: the most recently asked keep it.
    max_held_for_reads = 1_000
    max_attempts = 10
    # About 200 bytes each: ids accepted lately, to know a resend without the store.
    max_recent_ids = 100_000

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self._writable: OrderedDict[str, Writable] = OrderedDict()
        self._latest_held: OrderedDict[str, Network] = OrderedDict()  # for reads
        self._sources: dict[str, int] = {}  # source -> last position saved
        # (network, event id) -> (position, fingerprint): the latest accepted, bounded.
        self._recent_ids: OrderedDict[tuple[str, str], Seen] = OrderedDict()
        self._looked_up: dict[tuple[str, str], Seen] | None = None  # deciding carefully

    def construct_mapper(self) -> Mapper[Any]:
        """Encode with msgspec rather than the generic JSON transcoder."""
        return NetworkMapper(transcoder=JSONTranscoder())

    def ingest(
        self,
        arrivals: Sequence[m.Message | Arrival],
        journal: Callable[[list[Outcome]], Any] | None = None,
    ) -> list[Outcome]:
        """Ingest, deciding again from the store when another writer got there first."""
        conflicts = refreshed = 0
        careful = False
        while True:
            try:
                if careful:
                    self.look_up(_events(arrivals))
                return super().ingest(arrivals, journal)
            except IntegrityError:
                # Another writer saved the same position, or an id taken for new is in
                # the store: reload, redo with every id looked up, after a random
                # pause so that writers racing for one network part.
                conflicts += 1
                careful = True
                if conflicts == self.max_attempts:
                    raise
                time.sleep(random.uniform(0, 0.001 * 2**conflicts))
            except StaleNetwork:
                # One held network was behind and is reloaded: a batch may hold many
                # such networks, so these do not count as conflicts.
                refreshed += 1
                if refreshed > len(arrivals) + self.max_attempts:
                    raise
            finally:
                self._looked_up = None

    def preview(
        self, messages: Sequence[m.Message]
    ) -> tuple[list[Outcome], dict[str, tuple[NetworkState, int]]]:
        """Preview, deciding again when a held network turns out to be behind."""
        try:
            for _ in range(self.max_attempts - 1):
                # Nothing is saved, so no index would catch an id taken for new.
                self.look_up(messages)
                try:
                    return super().preview(messages)
                except StaleNetwork:
                    continue  # reloaded: decide again
            raise StaleNetwork("the store keeps changing under the preview")
        finally:
            self._looked_up = None

    def _get(self, name: str, position: int | None = None) -> Network:
        """The network from its nearest snapshot, checked against the log, and the events after."""
        snapshot = None
        if self.snapshots is not None:
            found = list(self.snapshots.get(name, desc=True, limit=1, lte=position))
            snapshot = found[0] if found else None
        if snapshot is not None:
            self._check_snapshot(name, snapshot)
        after = None if snapshot is None else snapshot.originator_version
        start = None if snapshot is None else project(None, [snapshot])
        network = project(start, self.events.get(name, gt=after, lte=position))
        if network is None:
            raise UnknownNetwork(name)
        return network

    def _check_snapshot(self, name: str, snapshot: Any) -> None:
        """DamagedLog unless the log holds the snapshot's position with the snapshot's hash."""
        # A snapshot answers for every position up to it: one copied from another
        # network, or placed beyond the log, must not give a wrong answer quietly.
        version = snapshot.originator_version
        rows = self.recorder.select_events(name, gt=version - 1, lte=version, limit=1)
        try:
            stored = self.mapper.to_domain_event(rows[0]).chain if rows else None
            taken = snapshot.state.get("chain")
        except Exception:  # a damaged row cannot vouch for the snapshot
            stored = taken = None
        if stored is None or stored != taken:
            raise DamagedLog(
                name,
                version,
                "its snapshot is not the log's state there",
            )

    def writable(self, name: str) -> Writable:
        """The held network, or the network from its latest snapshot (its ids stay in the store)."""
        network = self._writable.get(name)
        if network is not None:
            self._writable.move_to_end(name)
            return network
        try:
            aggregate: Network | None = self._get(name)
        except UnknownNetwork:
            aggregate = None
        network = self._writable[name] = Writable(aggregate, {})
        if len(self._writable) > self.max_cached_networks:
            self._writable.popitem(last=False)
        return network

    def accepted_id(self, name: str, network: Writable, event_id: str) -> Seen | None:
        """This batch's ids, recent ones, and (deciding carefully) the store's; else new."""
        key = (name, event_id)
        found = network.ids.get(event_id) or self._recent_ids.get(key)
        if found is None and self._looked_up is not None:
            found = self._looked_up.get(key)
        # Otherwise the id is taken for new: if the store has it after all, the
        # batch's save fails on the index's uniqueness and is decided again carefully.
        return found

    def stored_id(self, name: str, event_id: str) -> Seen | None:
        """The store's answer, before a rejection is decided."""
        if self._looked_up is not None:
            return self._looked_up.get((name, event_id))
        return self.recorder.lookup_ids([(name, event_id)]).get((name, event_id))

    def look_up(self, messages: Iterable[m.Message]) -> None:
        """Decide the next attempt carefully: every id of these events, from the store."""
        self._looked_up = self.recorder.lookup_ids((e.network, e.id) for e in messages)

    def confirm_current(self, name: str, network: Writable, batch: Batch) -> None:
        """Raise StaleNetwork when the store holds positions the held network lacks."""
        # A rejection writes nothing, so no conflict would reveal a held copy that
        # another instance has moved past: look once per batch before deciding.
        if name in batch.confirmed:
            return
        aggregate = network.aggregate
        held = 0 if aggregate is None else aggregate.version - len(aggregate.pending_events)
        if self.last_position(name) > held:
            self._writable.pop(name, None)
            raise StaleNetwork(name)
        batch.confirmed.add(name)

    def forget(self, names: Iterable[str]) -> None:
        """Drop held networks whose state may be ahead of the store."""
        for name in names:
            self._writable.pop(name, None)

    def save_batch(self, batch: Batch) -> None:
        """Save the batch's events, snapshots, sources and rejections in one transaction."""
        # Each changed network's line of the listings, in the same transaction.
        lines = [
            overview(
                n.aggregate.state, n.aggregate.version, recorded_at(n.aggregate.pending_events[-1])
            )
            for n in batch.networks.values()
            if n.aggregate is not None and n.aggregate.pending_events
        ]
        events = [e for n in batch.networks.values() for e in n.aggregate.collect_events()]
        if not (events or batch.sources or batch.rejections or batch.journal is not None):
            return
        ids = [
            (name, event_id, position)
            for name, network in batch.networks.items()
            for event_id, (position, _) in network.ids.items()
        ]
        inbound = {
            "sources": batch.sources,
            "rejections": batch.rejections,
            "journal": batch.journal,
            "ids": ids,
            "networks": lines,
        }
        # EventStore.put is one transaction (Application.save would add runtime
        # Protocol checks per aggregate that cost more than the insert).
        if getattr(self.recorder, "inserts_snapshots", False):
            self.events.put(events, snapshots=batch.snapshots, **inbound)
        else:  # the in-memory store keeps snapshots apart: nothing there outlives a crash
            self.events.put(events, **inbound)
            if batch.snapshots and self.snapshots is not None:
                self.snapshots.recorder.insert_events(batch.snapshots)
        for source, (_, after) in batch.sources.items():
            self._sources[source] = after
        recent = self._recent_ids
        for name, network in batch.networks.items():
            # The latest ids stay in memory, so a prompt resend costs no second attempt.
            for event_id, seen in network.ids.items():
                recent[(name, event_id)] = seen
            network.ids.clear()  # saved: the store's index has them now
        while len(recent) > self.max_recent_ids:
            recent.popitem(last=False)

    def inbound_position(self, source: str) -> int:
        """The last position of a source saved with its events (held until a conflict)."""
        position = self._sources.get(source)
        if position is None:
            position = self._sources[source] = self.recorder.inbound_position(source)
        return position

    def forget_sources(self) -> None:
        """A save failed: another writer may have moved a source; read them afresh."""
        self._sources.clear()

    def latest(self, name: str, hold: bool = True) -> Network:
        """The network at its last position: a held copy, caught up from the log."""
        # Queries ask for the latest state far more often than it changes: reading
        # only what came after the held copy beats the snapshot and up to 99 events.
        held = self._latest_held.get(name)
        if held is None:
            network = self._get(name)
        else:
            # Up to a snapshot's worth: a copy further behind is read afresh from
            # the latest snapshot rather than caught up event by event.
            limit = self.snapshot_interval + 1
            newer = list(self.events.get(name, gt=held.version, limit=limit))
            if len(newer) == limit:
                network = self._get(name)
            else:
                # A copy: whoever has the held state keeps the position they asked for.
                network = project(copy.deepcopy(held), newer) if newer else held
        if held is None and not hold:
            return network  # a sweep over every network must not push out the ones asked for
        self._latest_held[name] = network
        self._latest_held.move_to_end(name)
        if len(self._latest_held) > self.max_held_for_reads:
            self._latest_held.popitem(last=False)
        return network


def _events(arrivals: Sequence[m.Message | Arrival]) -> Iterator[m.Message]:
    """The events among the arrivals (not those that could not be read)."""
    for arrival in arrivals:
        event = arrival.event if isinstance(arrival, Arrival) else arrival
        if isinstance(event, m.Message):
            yield event
