"""eventsourcing's in-memory (POPO) persistence, answering what ctilink's readers ask."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.popo import POPOApplicationRecorder, POPOFactory

from ctilink.adapters.store.codec import stored_fingerprint
from ctilink.adapters.store.inbound import OutcomeChunk
from ctilink.adapters.store.indexes import IdRow, Seen
from ctilink.adapters.store.network_index import SORTS, Filters
from ctilink.domain.arrivals import Rejection
from ctilink.projections.overview import Overview


class MemoryRecorder(POPOApplicationRecorder):
    """The in-memory recorder, with the listings and inbound records of the real stores."""

    def __init__(self) -> None:
        super().__init__()
        self._inbound: dict[str, int] = {}
        self._rejections: list[Rejection] = []
        self._outcomes: dict[str, dict[int, OutcomeChunk]] = {}
        self._ids: dict[tuple[str, str], int] = {}  # (network, event id) -> position
        self._lines: dict[str, Overview] = {}  # network -> its line
        self._damaged: dict[str, tuple[str, int, str]] = {}  # network -> (network, position, why)

    def insert_events(
        self,
        stored_events: Sequence[StoredEvent],
        *,
        sources: dict[str, tuple[int, int]] | None = None,
        rejections: Sequence[Rejection] = (),
        journal: OutcomeChunk | None = None,
        ids: Sequence[IdRow] = (),
        networks: Sequence[Overview] = (),
        **kwargs: Any,
    ) -> Sequence[int] | None:
        """Insert the events and the inbound records under one lock: all or nothing."""
        with self._database_lock:
            for source, (before, _) in (sources or {}).items():
                if self._inbound.get(source, 0) != before:
                    raise IntegrityError(f"source {source!r} moved past {before} meanwhile")
            if journal is not None and journal.first_line in self._outcomes.get(journal.source, {}):
                raise IntegrityError(f"lines from {journal.first_line} of {journal.source!r} kept")
            for network, event_id, _ in ids:
                if (network, event_id) in self._ids:
                    raise IntegrityError(f"id {event_id!r} of {network!r} accepted before")
            numbers = super().insert_events(stored_events, **kwargs)
            for source, (_, after) in (sources or {}).items():
                self._inbound[source] = after
            self._rejections += rejections
            self._ids.update({(row[0], row[1]): row[2] for row in ids})
            self.put_networks(networks)
            if journal is not None:
                self._outcomes.setdefault(journal.source, {})[journal.first_line] = journal
            return numbers

    def store_identity(self) -> str:
        """This store's own name (a store in memory lives as long as its process)."""
        return f"memory-{id(self):x}"

    def lookup_ids(self, pairs: Iterable[tuple[str, str]]) -> Seen:
        """Which of these (network, event id) pairs were accepted, and where."""
        with self._database_lock:
            found = {pair: self._ids[pair] for pair in pairs if pair in self._ids}
        return {
            pair: (position, self._digest(pair[0], position)) for pair, position in found.items()
        }

    def _digest(self, network: str, position: int) -> bytes:
        """The fingerprint stored in the event's own row."""
        (row,) = self.select_events(network, gt=position - 1, lte=position, limit=1)
        return stored_fingerprint(row.state)[1]

    def id_count(self, network: str) -> int:
        """How many ids the index holds for a network."""
        with self._database_lock:
            return sum(1 for name, _ in self._ids if name == network)

    def index_complete(self) -> bool:
        """The id index is written with every batch from the start."""
        return True

    def networks_complete(self) -> bool:
        """The network index is written with every batch from the start."""
        return True

    def list_networks(self, filters: Filters) -> list[Overview]:
        """The networks' lines that pass the filters, sorted by name."""
        with self._database_lock:
            lines = sorted(self._lines.values(), key=lambda line: line.network)
        after = filters.after
        found = [
            line
            for line in lines
            if (after is None or line.network > after) and filters.admits(line)
        ]
        if filters.sort is not None:
            key = SORTS[filters.sort]
            found.sort(key=lambda line: getattr(line, key), reverse=True)  # stable: by name
        found = found[filters.offset :]
        return found if filters.limit is None else found[: filters.limit]

    def put_networks(self, rows: Sequence[Overview]) -> None:
        """Set networks' lines; a line never goes back to an earlier position."""
        for line in rows:
            held = self._lines.get(line.network)
            if held is None or line.position > held.position:
                self._lines[line.network] = line

    def start_networks_build(self, token: str) -> None:
        """Empty the network index before it is built again."""
        self._lines.clear()
        self._damaged.clear()

    def finish_networks_build(self, token: str) -> bool:
        """Nothing to mark: one process, one build."""
        return True

    def put_damaged(self, rows: Sequence[tuple[str, int, str]]) -> None:
        """Name the networks whose logs could not be folded."""
        self._damaged.update({row[0]: row for row in rows})

    def damaged_networks(self) -> list[tuple[str, int, str]]:
        """The networks the last build could not fold, by name."""
        return [self._damaged[name] for name in sorted(self._damaged)]

    def network_totals(self) -> list[tuple[str, int, int, int, int, int]]:
        """Per effective mode: networks, component rows by state, restarts pending."""
        totals: dict[str, list[int]] = {}
        for line in list(self._lines.values()):
            row = totals.setdefault(line.effective, [0, 0, 0, 0, 0])
            for n, value in enumerate(
                (1, line.available, line.unavailable, line.not_configured, line.restart_pending)
            ):
                row[n] += int(value)
        return [(mode, *row) for mode, row in sorted(totals.items())]  # type: ignore[misc]

    def events_after(self, notification_id: int) -> int:
        """How many events were logged after that notification."""
        return max(0, (self.max_notification_id() or 0) - notification_id)

    def indexed_names(self) -> list[str]:
        """The names the network index holds a line for."""
        return list(self._lines)

    def network_line(self, network: str) -> Overview | None:
        """One network's line."""
        return self._lines.get(network)

    def networks_changed(self, after: int, upto: int) -> set[str]:
        """The networks with events logged after notification `after`, up to `upto`."""
        found = self.select_notifications(start=after + 1, limit=max(upto - after, 1), stop=upto)
        return {notification.originator_id for notification in found}

    def heads(self) -> list[tuple[str, int]]:
        """Every network with its last position, sorted by name."""
        with self._database_lock:
            return sorted(
                (name, max(versions))
                for name, versions in self._stored_events_index.items()
                if versions
            )

    def records(
        self, network: str, low: int, high: int, limit: int, *, desc: bool = False
    ) -> list[tuple[int, str, bytes]]:
        """(position, topic, stored record) of positions low..high, at most `limit`."""
        found = self.select_events(network, gt=low - 1, lte=high, desc=desc, limit=limit)
        return [(stored.originator_version, stored.topic, stored.state) for stored in found]

    def inbound_position(self, source: str) -> int:
        """The last position of `source` decided and committed (0 before the first)."""
        return self._inbound.get(source, 0)

    def rejections(
        self, network: str | None = None, after: int = 0, limit: int = 1000
    ) -> list[tuple[int, Rejection]]:
        """(id, rejection) in commit order after `after`: of one network, or of all."""
        found = [
            (number, r)
            for number, r in enumerate(self._rejections, start=1)
            if number > after and (network is None or r.network == network)
        ]
        return found[:limit]

    def outcome_chunks(self, source: str) -> Iterator[OutcomeChunk]:
        """A file's committed shares of lines, by first line."""
        chunks = self._outcomes.get(source, {})
        yield from (chunks[first] for first in sorted(chunks))

    def forget_outcomes(self, source: str) -> None:
        """Drop what is kept of a file's lines."""
        self._outcomes.pop(source, None)


class Factory(POPOFactory):
    """POPOFactory with the recorder above."""

    def application_recorder(self) -> Any:
        """The events recorder."""
        return MemoryRecorder()
