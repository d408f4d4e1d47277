"""The application service: load a network, decide one event, save what was accepted.

The hooks at the end (`writable`, `accepted_id`, `stored_id`, `confirm_current`,
`forget`, `save_batch`, `latest`) are what a real store refines: caching, an
index of ids, conflicts between writers, one transaction per batch
(adapters/store/service.py). As written here they are the plain eventsourcing
way, without caches or indexes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar, Literal

import msgspec
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import StoredEvent

from ctilink.domain import messages as m
from ctilink.domain.arrivals import MAX_KEPT_PAYLOAD, Arrival, Rejection
from ctilink.domain.decoding import Invalid
from ctilink.domain.errors import Code, DamagedLog, PositionOutOfRange, Rejected, UnknownNetwork
from ctilink.domain.network import Installed, Network, Recorded
from ctilink.domain.state import NetworkState

LogEvent = Installed | Recorded
LOG_PAGE = 1000  # events read at a time when a whole log is walked


class Outcome(msgspec.Struct, frozen=True):
    """What became of one inbound event.

    `decided`: its source position was recorded before, so it was decided then
    (a redelivery after a crash); nothing is decided again.
    """

    outcome: Literal["accepted", "duplicate", "rejected", "decided"]
    position: int | None = None
    code: str | None = None
    message: str | None = None


class Writable:
    """A network held for writing: its aggregate (None before installation), its accepted ids."""

    __slots__ = ("aggregate", "ids")

    def __init__(self, aggregate: Network | None, ids: dict[str, tuple[int, bytes]]) -> None:
        self.aggregate = aggregate
        self.ids = ids  # event id -> (position, fingerprint), for I3

    def record(self, message: m.Message, received: Any, content: m.Content) -> int:
        """Append the event if the rules allow it (raises Rejected); its position."""
        if self.aggregate is None:
            self.aggregate = Network.install(message, received, content)
        else:
            self.aggregate.record(message, received, content)
        return self.aggregate.version


class StaleNetwork(Exception):
    """A network held in memory is behind the store (another writer's events): decide again."""


class Batch:
    """What one ingest call has decided but not yet saved."""

    __slots__ = (
        "confirmed",
        "journal",
        "networks",
        "received",
        "rejections",
        "snapshots",
        "sources",
    )

    def __init__(self) -> None:
        # One receive time per batch: reading the clock per event is not free.
        self.received = Recorded.create_timestamp()
        self.networks: dict[str, Writable] = {}  # those with events to save
        self.snapshots: list[StoredEvent] = []  # encoded when taken: the state moves on
        self.confirmed: set[str] = set()  # networks found current with the store
        self.rejections: list[Rejection] = []
        # source -> (position recorded before, position after this batch)
        self.sources: dict[str, tuple[int, int]] = {}
        self.journal: Any = None  # what the caller keeps of the batch (a file's outcomes)


def project(aggregate: Any, events: Iterable[Any]) -> Any:
    """Fold stored events into an aggregate (or a snapshot into one); DamagedLog if one misfits."""
    # eventsourcing's default projector asserts a runtime-checkable Protocol on
    # every event, which costs more than the fold itself.
    for event in events:
        expected = 1 if aggregate is None else aggregate.version + 1
        if event.originator_version != expected and not isinstance(event, Network.Snapshot):
            raise DamagedLog(
                event.originator_id,
                expected,
                f"the position is missing; the next row is {event.originator_version}",
            )
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


class NetworkService(Application[str]):
    """Keeps every network's log and answers for any position."""

    name = "ctilink"
    env: ClassVar[dict[str, str]] = {"ORIGINATOR_ID_TYPE": "text", "IS_SNAPSHOTTING_ENABLED": "y"}
    # Snapshots are taken here, in the batch's own transaction, rather than by
    # `snapshotting_intervals`, which saves them after the events, one by one.
    snapshot_interval = 100

    # --- commands ----------------------------------------------------------

    def ingest(
        self,
        arrivals: Sequence[m.Message | Arrival],
        journal: Callable[[list[Outcome]], Any] | None = None,
    ) -> list[Outcome]:
        """Decide each event in arrival order (I4); save them and their sources together.

        `journal` turns the outcomes into what the caller keeps of the batch,
        saved in the same transaction.
        """
        batch = Batch()
        try:
            outcomes = [self.receive(arrival, batch) for arrival in arrivals]
            if journal is not None:
                batch.journal = journal(outcomes)
            self.save_batch(batch)
        except BaseException:
            self.forget(batch.networks)  # what they hold in memory is ahead of the store
            self.forget_sources()
            raise
        return outcomes

    def receive(self, arrival: m.Message | Arrival, batch: Batch) -> Outcome:
        """Decide one arrival, once per source position; keep a rejection with its payload."""
        if not isinstance(arrival, Arrival):
            return self.decide(arrival, batch)
        source, position = arrival.source, arrival.position
        if arrival.sequential and source is not None and position is not None:
            before, last = batch.sources.get(source) or (self._tracked(source),) * 2
            if position <= last:
                return DECIDED  # recorded with an earlier commit: delivered again
            batch.sources[source] = (before, position)
        event = arrival.event
        if isinstance(event, Invalid):
            outcome = Outcome("rejected", code=Code.INVALID, message=event.message)
        else:
            outcome = self.decide(event, batch, arrival.encoded)
        if outcome.outcome == "rejected":
            batch.rejections.append(
                Rejection(
                    network=arrival.named_network,
                    source=source,
                    position=position,
                    event_id=event.id,
                    code=outcome.code or "",
                    message=outcome.message or "",
                    payload=arrival.payload[:MAX_KEPT_PAYLOAD],
                    received=batch.received,
                )
            )
        return outcome

    def _tracked(self, source: str) -> int:
        """The last position of `source` decided and saved (0 before the first)."""
        return self.inbound_position(source)

    def preview(
        self, messages: Sequence[m.Message]
    ) -> tuple[list[Outcome], dict[str, tuple[NetworkState, int]]]:
        """What ingest would do, saving nothing: outcomes, and each touched network after."""
        batch = Batch()
        try:
            outcomes = [self.decide(message, batch) for message in messages]
            after = {
                name: (copy.deepcopy(network.aggregate.state), network.aggregate.version)
                for name, network in batch.networks.items()
                if network.aggregate is not None
            }
        finally:
            self.forget(batch.networks)  # they hold the unsaved events
        return outcomes, after

    def decide(self, message: m.Message, batch: Batch, encoded: bytes | None = None) -> Outcome:
        """Accept, recognise as a duplicate (I3) or reject (I2) one event, in memory."""
        try:
            # A network this batch wrote to is held here, whatever `writable` keeps.
            network = batch.networks.get(message.network) or self.writable(message.network)
        except DamagedLog as damage:  # the others are decided all the same
            return Outcome("rejected", code=Code.LOG_DAMAGED, message=str(damage))
        content = m.Content(message, encoded)
        seen = self.accepted_id(message.network, network, message.id)
        if seen is not None:
            return repeated(message, seen, content.fingerprint)
        try:
            position = network.record(message, batch.received, content)
        except Rejected as rejection:
            self.confirm_current(message.network, network, batch)
            # I3 comes before the rules: an id the store knows is a duplicate or a
            # conflict, whatever the rules would say of it now.
            seen = self.stored_id(message.network, message.id)
            if seen is not None:
                return repeated(message, seen, content.fingerprint)
            return Outcome("rejected", code=rejection.code, message=rejection.message)
        network.ids[message.id] = (position, content.fingerprint)
        batch.networks[message.network] = network
        if position % self.snapshot_interval == 0:
            snapshot = Network.Snapshot.take(network.aggregate)
            batch.snapshots.append(self.mapper.to_stored_event(snapshot))
        return Outcome("accepted", position=position)

    # --- queries -----------------------------------------------------------

    def head(self, name: str) -> int:
        """The network's last position; raises UnknownNetwork."""
        last = self.last_position(name)
        if not last:
            raise UnknownNetwork(name)
        return last

    def last_position(self, name: str) -> int:
        """The network's last position in the store, 0 when it has none."""
        last = self.recorder.select_events(name, desc=True, limit=1)
        return last[0].originator_version if last else 0

    def state_at(
        self, name: str, position: int | None = None, *, hold: bool = True
    ) -> tuple[NetworkState, int]:
        """The network's state right after `position` (default: the last; `hold` may cache it)."""
        if position is None:
            network = self.latest(name, hold)
        else:
            head = self.head(name)
            if not 1 <= position <= head:
                raise PositionOutOfRange(name, position, head)
            network = self._get(name, position)
        return network.state, network.version

    def log(self, name: str, upto: int | None = None, after: int = 0) -> Iterator[LogEvent]:
        """The log events after position `after`, up to `upto`, in order; DamagedLog at a gap."""
        expected = after + 1
        while True:
            # A page at a time: a log of millions of events is never held whole.
            page = list(self.events.get(name, gt=expected - 1, lte=upto, limit=LOG_PAGE))
            for event in page:
                if event.originator_version != expected:
                    reason = f"the position is missing; the next row is {event.originator_version}"
                    raise DamagedLog(name, expected, reason)
                kind = Installed if expected == 1 else Recorded
                if type(event) is not kind:
                    raise DamagedLog(name, expected, f"it holds a {type(event).__name__} row")
                yield event
                expected += 1
            if len(page) < LOG_PAGE:
                return

    def _get(self, name: str, position: int | None = None) -> Network:
        """The network from its nearest snapshot and the events after it."""
        try:
            return self.repository.get(name, version=position, projector_func=project)
        except AggregateNotFoundError:
            raise UnknownNetwork(name) from None

    # --- what a store refines ------------------------------------------------

    def writable(self, name: str) -> Writable:
        """The network as it stands in the store, with every id it accepted."""
        try:
            aggregate: Network | None = self._get(name)
        except UnknownNetwork:
            return Writable(None, {})
        ids = {
            event.message.id: (event.originator_version, event.fingerprint)
            for event in self.events.get(name, lte=aggregate.version)
        }
        return Writable(aggregate, ids)

    def accepted_id(self, name: str, network: Writable, event_id: str) -> tuple[int, bytes] | None:
        """Where the network accepted this id, as far as is known before deciding (I3)."""
        return network.ids.get(event_id)

    def stored_id(self, name: str, event_id: str) -> tuple[int, bytes] | None:
        """Where the store holds this id, when the rules would reject its event."""
        return None  # `writable` holds every id: `accepted_id` knew it

    def inbound_position(self, source: str) -> int:
        """The last position of a source saved with the events it led to (0: none)."""
        return 0

    def forget_sources(self) -> None:
        """Drop whatever is held in memory of the sources' positions."""

    def confirm_current(self, name: str, network: Writable, batch: Batch) -> None:
        """Before a rejection: make sure the held network is not behind the store."""

    def forget(self, names: Iterable[str]) -> None:
        """Drop whatever is held in memory of these networks."""

    def save_batch(self, batch: Batch) -> None:
        """Save every accepted event of the batch, then its snapshots."""
        events = [e for n in batch.networks.values() for e in n.aggregate.collect_events()]
        if events:
            self.events.put(events)
        if batch.snapshots and self.snapshots is not None:
            self.snapshots.recorder.insert_events(batch.snapshots)

    def latest(self, name: str, hold: bool = True) -> Network:
        """The network at its last position."""
        return self._get(name)


DECIDED = Outcome("decided")


def repeated(message: m.Message, seen: tuple[int, bytes], fingerprint: bytes) -> Outcome:
    """I3: the same id again is a duplicate with the same content, else a conflict."""
    position, known = seen
    if known == fingerprint:
        return Outcome("duplicate", position=position)
    return Outcome(
        "rejected",
        code=Code.ID_CONFLICT,
        message=f"id {message.id!r} was accepted at position {position} with different content",
    )
