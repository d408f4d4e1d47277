"""The application service: ingest with idempotency, and reads as of any position."""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar, Literal

import msgspec
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Mapper, StoredEvent

from ctilink.adapters.store.codec import NetworkMapper, stored_fingerprint
from ctilink.domain import messages as m
from ctilink.domain.errors import PositionOutOfRange, Rejected, UnknownNetwork
from ctilink.domain.network import Installed, Network, Recorded
from ctilink.domain.state import NetworkState

LogEvent = Installed | Recorded


class Outcome(msgspec.Struct, frozen=True):
    """What became of one inbound event."""

    outcome: Literal["accepted", "duplicate", "rejected"]
    position: int | None = None
    code: str | None = None
    message: str | None = None


def project(aggregate: Any, events: Iterable[Any]) -> Any:
    """Fold stored events into an aggregate (or a snapshot into one)."""
    # eventsourcing's default projector asserts a runtime-checkable Protocol on
    # every event, which costs more than the fold itself.
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


class Loaded:
    """A network held in memory for writing: its aggregate and its accepted ids."""

    __slots__ = ("aggregate", "ids")

    def __init__(self, aggregate: Network | None, ids: dict[str, tuple[int, bytes]]) -> None:
        self.aggregate = aggregate
        self.ids = ids  # event id -> (position, fingerprint)


class StaleNetwork(Exception):
    """A network held in memory is behind the store (another writer's events): decide again."""


class Batch:
    """What one ingest call has decided but not yet committed."""

    __slots__ = ("networks", "received", "snapshots", "verified")

    def __init__(self) -> None:
        # One receive time per batch: reading the clock per event is not free.
        self.received = Recorded.create_timestamp()
        self.networks: dict[str, Loaded] = {}
        self.snapshots: list[StoredEvent] = []  # encoded when taken: the state moves on
        self.verified: set[str] = set()  # networks found up to date with the store


class NetworkService(Application[str]):
    """Keeps every network's log and answers for any position."""

    name = "ctilink"
    env: ClassVar[dict[str, str]] = {"ORIGINATOR_ID_TYPE": "text", "IS_SNAPSHOTTING_ENABLED": "y"}
    snapshot_interval = 100
    max_cached_networks = 10_000
    # About 16 KB each for a 10-system network: the most recently asked keep it.
    max_held_for_reads = 1_000
    max_attempts = 10

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self._cache: OrderedDict[str, Loaded] = OrderedDict()
        self._latest_held: OrderedDict[str, Network] = OrderedDict()  # for reads

    def construct_mapper(self) -> Mapper[Any]:
        """Encode with msgspec rather than the generic JSON transcoder."""
        return NetworkMapper(transcoder=JSONTranscoder())

    # --- writing ---------------------------------------------------------

    def ingest(self, messages: Sequence[m.Message]) -> list[Outcome]:
        """Apply events in order and commit the accepted ones in one transaction."""
        conflicts = refreshed = 0
        while True:
            batch = Batch()
            try:
                outcomes = [self._submit(message, batch) for message in messages]
                self._commit(batch)
                return outcomes
            except IntegrityError:
                # Another writer got there first: reload from the store and redo.
                self._forget(batch)
                conflicts += 1
                if conflicts == self.max_attempts:
                    raise
            except StaleNetwork:
                # One held network was behind and is reloaded: a batch may hold many
                # such networks, so these do not count as conflicts.
                self._forget(batch)
                refreshed += 1
                if refreshed > len(messages) + self.max_attempts:
                    raise
            except BaseException:
                self._forget(batch)
                raise

    def preview(
        self, messages: Sequence[m.Message]
    ) -> tuple[list[Outcome], dict[str, tuple[NetworkState, int]]]:
        """What ingest would do, committing nothing: outcomes, and each touched network after."""
        for _ in range(self.max_attempts - 1):
            batch = Batch()
            try:
                outcomes = [self._submit(message, batch) for message in messages]
                after = {
                    name: (copy.deepcopy(loaded.aggregate.state), loaded.aggregate.version)
                    for name, loaded in batch.networks.items()
                    if loaded.aggregate is not None
                }
                return outcomes, after
            except StaleNetwork:
                continue  # reloaded: decide again
            finally:
                self._forget(batch)  # the cached networks hold the uncommitted events
        raise StaleNetwork("the store keeps changing under the preview")

    def _submit(self, message: m.Message, batch: Batch) -> Outcome:
        """Decide one event against the in-memory state; nothing is durable yet."""
        loaded = self._load(message.network)
        seen = loaded.ids.get(message.id)
        content = m.Content(message)
        fingerprint = content.fingerprint
        if seen is not None:
            position, known = seen
            if known == fingerprint:
                return Outcome("duplicate", position=position)
            return Outcome(
                "rejected",
                code="id_conflict",
                message=f"id {message.id!r} was accepted at position {position} "
                "with different content",
            )
        try:
            if loaded.aggregate is None:
                if not isinstance(message, m.PortalInstalled):
                    raise Rejected(
                        "not_installed",
                        f"network {message.network!r} has no portal_installed event yet",
                    )
                loaded.aggregate = Network.install(message, batch.received, content)
            else:
                loaded.aggregate.record(message, batch.received, content)
        except Rejected as rejection:
            # Nothing is written for a rejection, so no conflict would reveal a
            # held copy that another instance has moved past: look before deciding.
            if message.network not in batch.verified:
                if self._behind(message.network, loaded):
                    self._cache.pop(message.network, None)
                    raise StaleNetwork(message.network) from None
                batch.verified.add(message.network)
            return Outcome("rejected", code=rejection.code, message=rejection.message)
        position = loaded.aggregate.version
        loaded.ids[message.id] = (position, fingerprint)
        batch.networks[message.network] = loaded
        if position % self.snapshot_interval == 0:
            snapshot = Network.Snapshot.take(loaded.aggregate)
            batch.snapshots.append(self.mapper.to_stored_event(snapshot))
        return Outcome("accepted", position=position)

    def _commit(self, batch: Batch) -> None:
        """Save every pending event, and the snapshots taken, in one transaction."""
        events = [e for n in batch.networks.values() for e in n.aggregate.collect_events()]
        if not events:
            return
        # EventStore.put is one transaction (Application.save would add runtime
        # Protocol isinstance checks per aggregate that cost more than the insert).
        if getattr(self.recorder, "inserts_snapshots", False):
            self.events.put(events, snapshots=batch.snapshots)
        else:
            self.events.put(events)
            if batch.snapshots and self.snapshots is not None:
                self.snapshots.recorder.insert_events(batch.snapshots)

    def _behind(self, name: str, loaded: Loaded) -> bool:
        """Whether the store holds positions of the network that the held copy lacks."""
        aggregate = loaded.aggregate
        held = 0 if aggregate is None else aggregate.version - len(aggregate.pending_events)
        return self._last_position(name) > held

    def _forget(self, batch: Batch) -> None:
        """Drop networks whose in-memory state may be ahead of the store."""
        for name in batch.networks:
            self._cache.pop(name, None)

    def _load(self, name: str) -> Loaded:
        """The network's writable state: from its latest snapshot, plus every id."""
        loaded = self._cache.get(name)
        if loaded is not None:
            self._cache.move_to_end(name)
            return loaded
        try:
            aggregate: Network | None = self.repository.get(name, projector_func=project)
        except AggregateNotFoundError:
            aggregate = None
        ids: dict[str, tuple[int, bytes]] = {}
        if aggregate is not None:
            # Only up to the aggregate's version: a later event written meanwhile by
            # someone else makes our save conflict, and we reload.
            for stored in self.recorder.select_events(name, lte=aggregate.version):
                event_id, fingerprint = stored_fingerprint(stored.state)
                ids[event_id] = (stored.originator_version, fingerprint)
        loaded = self._cache[name] = Loaded(aggregate, ids)
        if len(self._cache) > self.max_cached_networks:
            self._cache.popitem(last=False)
        return loaded

    # --- reading ---------------------------------------------------------

    def head(self, name: str) -> int:
        """The network's last position; raises UnknownNetwork."""
        last = self._last_position(name)
        if not last:
            raise UnknownNetwork(name)
        return last

    def _last_position(self, name: str) -> int:
        """The network's last position in the store, 0 when it has none."""
        last = self.recorder.select_events(name, desc=True, limit=1)
        return last[0].originator_version if last else 0

    def state_at(
        self, name: str, position: int | None = None, *, hold: bool = True
    ) -> tuple[NetworkState, int]:
        """The network's state right after `position` (default: the last one; `hold` keeps it)."""
        if position is not None:
            head = self.head(name)
            if not 1 <= position <= head:
                raise PositionOutOfRange(name, position, head)
            try:
                network: Network = self.repository.get(
                    name, version=position, projector_func=project
                )
            except AggregateNotFoundError:
                raise UnknownNetwork(name) from None
        else:
            network = self._latest(name, hold)
        return network.state, network.version

    def _latest(self, name: str, hold: bool = True) -> Network:
        """The network at its last position: a held copy, caught up from the log."""
        # Queries ask for the latest state far more often than it changes: reading
        # only what came after the held copy beats the snapshot and up to 99 events.
        held = self._latest_held.get(name)
        if held is None:
            try:
                network: Network = self.repository.get(name, projector_func=project)
            except AggregateNotFoundError:
                raise UnknownNetwork(name) from None
        else:
            newer = list(self.events.get(name, gt=held.version))
            # A copy: whoever has the held state keeps the position they asked for.
            network = project(copy.deepcopy(held), newer) if newer else held
        if held is None and not hold:
            return network  # a sweep over every network must not push out the ones asked for
        self._latest_held[name] = network
        self._latest_held.move_to_end(name)
        if len(self._latest_held) > self.max_held_for_reads:
            self._latest_held.popitem(last=False)
        return network

    def log(self, name: str, upto: int | None = None) -> Iterator[LogEvent]:
        """The network's log events in position order, up to `upto` inclusive."""
        yield from self.events.get(name, lte=upto)
