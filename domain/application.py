"""The application service: load a batch of networks, decide its events, save them at once.

Writing is eventsourcing's load → decide → save, for a batch of events rather
than one command: what the store holds between batches (networks, source
positions) and how it looks ids up is `writes`, a collaborator the composition
root gives (adapters/store/persistence/writes.py). Reading answers for any position.
"""

from __future__ import annotations

import copy
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError

from ctilink.domain import messages as m
from ctilink.domain.arrivals import Arrival
from ctilink.domain.decision import Outcome
from ctilink.domain.errors import DamagedLog, PositionOutOfRange, UnknownNetwork
from ctilink.domain.network import Installed, Network, Recorded, Snapshot, check_follows, project
from ctilink.domain.ports import Writes
from ctilink.domain.state import NetworkState

LogEvent = Installed | Recorded
LOG_PAGE = 1000  # events read at a time when a whole log is walked
MAX_ATTEMPTS = 10  # saves of one batch that another writer beat, before giving up


class NetworkService(Application[str]):
    """Keeps every network's log and answers for any position."""

    name = "ctilink"
    env: ClassVar[dict[str, str]] = {"ORIGINATOR_ID_TYPE": "text", "IS_SNAPSHOTTING_ENABLED": "y"}
    # About 16 KB each for a 10-system network: the most recently asked keep it.
    max_held_for_reads = 1_000
    writes: Writes  # given by the composition root

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self._latest_held: OrderedDict[str, Network] = OrderedDict()  # for reads

    # --- commands ----------------------------------------------------------

    def ingest(
        self,
        arrivals: Sequence[Arrival | m.Message],
        journal: Callable[[list[Outcome]], Any] | None = None,
    ) -> list[Outcome]:
        """Decide each event in arrival order (I4); save the batch in one transaction.

        `journal` turns the outcomes into what the caller keeps of the batch
        (a file's lines), saved in the same transaction.
        """
        for attempt in range(1, MAX_ATTEMPTS + 1):
            batch = self.writes.load(arrivals)
            outcomes = [batch.decide(arrival) for arrival in arrivals]
            batch.journal = None if journal is None else journal(outcomes)
            try:
                self.save(*batch.changed.values(), **self.writes.records(batch))
            except IntegrityError:
                # Another writer saved first (a position, an id, a source): load
                # afresh and decide again, after a pause that parts the racers.
                self.writes.forget(batch)
                if attempt == MAX_ATTEMPTS:
                    raise
                time.sleep(random.uniform(0, 0.001 * 2**attempt))
                continue
            except BaseException:
                self.writes.forget(batch)  # what it holds in memory is ahead of the store
                raise
            self.writes.saved(batch)
            return outcomes
        raise AssertionError("unreachable")

    def preview(
        self, events: Sequence[m.Message]
    ) -> tuple[list[Outcome], dict[str, tuple[NetworkState, int]]]:
        """What ingest would do, saving nothing: outcomes, and each touched network after."""
        batch = self.writes.load(events)
        try:
            outcomes = [batch.decide(event) for event in events]
            after = {
                name: (copy.deepcopy(network.state), network.version)
                for name, network in batch.changed.items()
            }
        finally:
            self.writes.forget(batch)  # it holds the unsaved events
        return outcomes, after

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
            network = self.load(name, position)
        return network.state, network.version

    def log(self, name: str, upto: int | None = None, after: int = 0) -> Iterator[LogEvent]:
        """The log events after position `after`, up to `upto`, in order; DamagedLog at a gap."""
        expected = after + 1
        while True:
            # A page at a time: a log of millions of events is never held whole.
            page = list(self.events.get(name, gt=expected - 1, lte=upto, limit=LOG_PAGE))
            for event in page:
                check_follows(name, expected, event.originator_version)
                kind = Installed if expected == 1 else Recorded
                if type(event) is not kind:
                    raise DamagedLog(name, expected, f"it holds a {type(event).__name__} row")
                yield event
                expected += 1
            if len(page) < LOG_PAGE:
                return

    def load(self, name: str, position: int | None = None) -> Network:
        """The network from its nearest snapshot, checked against the log, and the events after."""
        snapshot = None
        if self.snapshots is not None:
            found = list(self.snapshots.get(name, desc=True, limit=1, lte=position))
            snapshot = found[0] if found else None
        if snapshot is not None:
            self.check_snapshot(name, snapshot)
        after = None if snapshot is None else snapshot.originator_version
        start = None if snapshot is None else project(None, [snapshot])
        network = project(start, self.events.get(name, gt=after, lte=position))
        if network is None:
            raise UnknownNetwork(name)
        return network

    def check_snapshot(self, name: str, snapshot: Snapshot) -> None:
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
            raise DamagedLog(name, version, "its snapshot is not the log's state there")

    def latest(self, name: str, hold: bool = True) -> Network:
        """The network at its last position: a held copy, caught up from the log."""
        # Queries ask for the latest state far more often than it changes: reading
        # only what came after the held copy beats the snapshot and the events after.
        held = self._latest_held.get(name)
        if held is None:
            network = self.load(name)
        else:
            # A copy further behind than a page is read afresh from its latest snapshot.
            newer = list(self.events.get(name, gt=held.version, limit=LOG_PAGE))
            if len(newer) == LOG_PAGE:
                network = self.load(name)
            else:
                # A copy: whoever has the held state keeps the position they asked for.
                network = project(copy.deepcopy(held), newer) if newer else held  # type: ignore[assignment]
        if held is None and not hold:
            return network  # a sweep over every network must not push out the ones asked for
        self._latest_held[name] = network
        self._latest_held.move_to_end(name)
        if len(self._latest_held) > self.max_held_for_reads:
            self._latest_held.popitem(last=False)
        return network
