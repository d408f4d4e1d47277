"""One pass over a network's rows in position order, recomputing its hash chain as it goes.

`verify` (verification.py) runs it: it checks each row, the snapshots at their
positions and the indexes' entries for the network, and stops at the first
position that is not what an untouched log would hold (the kinds are listed in
verification.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

import msgspec

from ctilink.adapters.store.persistence.codec import first_line
from ctilink.adapters.store.persistence.times import TIMES_COMPLETE, chain_newest_first
from ctilink.adapters.store.queries.log import id_count
from ctilink.adapters.store.queries.log_reader import recorded_times
from ctilink.adapters.store.queries.networks import network_line
from ctilink.domain import messages as m
from ctilink.domain.application import NetworkService
from ctilink.domain.errors import DamagedLog
from ctilink.domain.network import GENESIS, Installed, Recorded, link, recorded_at
from ctilink.domain.state import NetworkState, step
from ctilink.projections.overview import overview

PAGE = 5000
SNAPSHOT_PAGE = 50  # snapshot states are the big rows: read a few at a time

Kind = Literal[
    "unreadable", "gap", "chain", "fingerprint", "replay", "snapshot", "truncated", "head", "index"
]


class Problem(msgspec.Struct, frozen=True):
    """The first position of a network's log that is not as it was written."""

    position: int
    kind: Kind
    message: str


class Walk:
    """One pass over a network's rows, recomputing the chain as it goes."""

    def __init__(self, service: NetworkService, name: str, watch: int | None) -> None:
        self.service = service
        self.name = name
        self.watch = watch  # a position whose recomputed hash is wanted afterwards
        self.watched: bytes | None = None
        self.chain = GENESIS
        self.position = 0  # the last position checked and found good
        self.state: NetworkState | None = None
        self.snapshots = self._snapshots()
        self.next_snapshot = next(self.snapshots, None)
        recorder: Any = service.recorder
        # A store from before the index, read-only, has none to check.
        self.index = recorder if recorder.index_complete() else None
        self.unchecked: list[tuple[str, int, bytes]] = []  # (id, position, fp) to look up
        self.lines = recorder if recorder.networks_complete() else None
        self.times = recorder if recorder.index_complete(TIMES_COMPLETE) else None
        self.recorded: datetime | None = None  # the last position's time

    def run(self) -> Problem | None:
        """Check every row in position order; the first problem, or None."""
        for row in self._rows():
            problem = self._check(row)
            if problem is None and len(self.unchecked) >= PAGE:
                problem = self._check_index()
            if problem is not None:
                # An index problem in the rows before comes first.
                return self._check_index() or problem
        problem = self._check_index()
        if problem is None and self.next_snapshot is not None:
            beyond = self.next_snapshot[0]
            problem = Problem(
                self.position + 1,
                "truncated",
                f"a snapshot exists at position {beyond} but the log ends at {self.position}",
            )
        return problem or self._count_index() or self._check_line() or self._check_times()

    def against(self, position: int, digest: bytes) -> Problem | None:
        """Compare the log, found intact, with a head kept elsewhere."""
        if position > self.position:
            return Problem(
                self.position + 1,
                "truncated",
                f"the log ends at position {self.position}; the head given is at {position}",
            )
        if self.watched != digest:
            return Problem(
                position,
                "head",
                f"the hash at position {position} is not the one given: the log up to "
                "there was rewritten",
            )
        return None

    # --- one row -------------------------------------------------------------------

    def _check(self, row: Any) -> Problem | None:
        """Check the row for the next position; on success, advance the walk."""
        expected = self.position + 1
        if row.originator_version != expected:
            return Problem(
                expected,
                "gap",
                f"position {expected} is missing (the next row is {row.originator_version})",
            )
        try:
            event = self._decode(row)
        except Exception as error:  # a tampered row can fail in many ways
            reason = error.reason if isinstance(error, DamagedLog) else str(error)
            return Problem(
                expected,
                "unreadable",
                f"the row cannot be decoded: {reason.removeprefix('its row cannot be decoded: ')}",
            )
        content = m.Content(event.message)
        chain = link(self.chain, content, event.timestamp)
        if chain != event.chain:
            return Problem(
                expected, "chain", "the stored hash differs from the one recomputed from the log"
            )
        if content.fingerprint != event.fingerprint:
            return Problem(expected, "fingerprint", "the stored digest (I3) is not the event's own")
        try:
            self.state = step(self.state, event.message)
        except Exception as error:
            return Problem(
                expected, "replay", f"the event cannot be applied to the log before it: {error!r}"
            )
        self.chain = chain
        self.position = expected
        self.recorded = recorded_at(event)
        if self.index is not None:
            self.unchecked.append((event.message.id, expected, event.fingerprint))
        if expected == self.watch:
            self.watched = chain
        return self._check_snapshot(expected)

    def _decode(self, row: Any) -> Installed | Recorded:
        """The row as a log event, of the class its position needs."""
        event = self.service.mapper.to_domain_event(row)
        if row.originator_version == 1:
            if type(event) is not Installed or not isinstance(event.message, m.PortalInstalled):
                raise ValueError("position 1 must hold the portal_installed record")
        elif type(event) is not Recorded:
            raise ValueError(f"expected a recorded event, found {type(event).__name__}")
        return event

    def _check_snapshot(self, position: int) -> Problem | None:
        """A snapshot at this position must be the folded state and carry this hash."""
        while self.next_snapshot is not None and self.next_snapshot[0] < position:
            self.next_snapshot = next(self.snapshots, None)  # not a log position: ignored
        if self.next_snapshot is None or self.next_snapshot[0] != position:
            return None
        stored = self.next_snapshot[1]
        self.next_snapshot = next(self.snapshots, None)
        if isinstance(stored, Exception):
            reason = stored.reason if isinstance(stored, DamagedLog) else str(stored)
            return Problem(position, "snapshot", reason.replace("its snapshot", "the snapshot"))
        if stored.get("chain") != self.chain:
            return Problem(
                position, "snapshot", "the snapshot's hash differs from the log's at its position"
            )
        if stored.get("state") != self.state:
            return Problem(
                position, "snapshot", "the snapshot's state differs from the log folded to there"
            )
        return None

    # --- reading ----------------------------------------------------------------------

    def _rows(self) -> Iterator[Any]:
        """Every stored row of the network, in position order, a page at a time."""
        recorder = self.service.recorder
        after: int | None = None
        while True:
            page = recorder.select_events(self.name, gt=after, limit=PAGE)
            yield from page
            if len(page) < PAGE:
                return
            after = page[-1].originator_version

    def _snapshots(self) -> Iterator[tuple[int, dict[str, Any] | Exception]]:
        """Stored snapshots in position order: their state, or why it cannot be read."""
        store = self.service.snapshots
        if store is None:
            return
        after: int | None = None
        while True:
            page = store.recorder.select_events(self.name, gt=after, limit=SNAPSHOT_PAGE)
            for row in page:
                try:
                    yield row.originator_version, self.service.mapper.to_domain_event(row).state
                except Exception as error:  # a tampered row can fail in many ways
                    yield row.originator_version, error
            if len(page) < SNAPSHOT_PAGE:
                return
            after = page[-1].originator_version

    # --- the id index ---------------------------------------------------------------------

    def _check_index(self) -> Problem | None:
        """Look the positions' ids up in the index: each where its position is."""
        if self.index is None or not self.unchecked:
            return None
        unchecked, self.unchecked = self.unchecked, []
        found = self.index.lookup_ids((self.name, event_id) for event_id, _, _ in unchecked)
        for event_id, position, _ in unchecked:
            entry = found.get((self.name, event_id))
            if entry is None:
                reason = f"the id index lacks the id {event_id!r} of this position"
            elif entry[0] != position:
                reason = f"the id index places the id {event_id!r} at position {entry[0]}"
            else:
                continue
            return Problem(position, "index", f"{reason} (ctilink reindex rebuilds it)")
        return None

    def _check_line(self) -> Problem | None:
        """The network index's line is the one the log folds to."""
        if self.lines is None or self.state is None or self.recorded is None:
            return None
        try:
            held = network_line(self.lines, self.name)
        except (ValueError, TypeError) as error:  # a row edited by hand
            held = error
        folded = overview(self.state, self.position, self.recorded)
        if held == folded:
            return None
        if held is None:
            reason = "the network index has no line for the network"
        elif isinstance(held, Exception):
            reason = f"the network index's line cannot be read ({first_line(held)})"
        else:
            differ = [
                f"{field} {getattr(held, field)!r}, the log {getattr(folded, field)!r}"
                for field in held.__struct_fields__
                if getattr(held, field) != getattr(folded, field)
            ]
            reason = "the network index's line differs: " + "; ".join(differ)
        return Problem(self.position, "index", f"{reason} (ctilink reindex rebuilds it)")

    def _check_times(self) -> Problem | None:
        """The time index holds exactly the positions a time question can answer, at their
        recorded times: its entries against the log read again from the end, side by side."""
        if self.times is None:
            return None
        expected = chain_newest_first(recorded_times(self.service, self.name))
        held = self.times.time_entries(self.name)
        for want, have in itertools.zip_longest(expected, held):
            if want == have:
                continue
            # Both run from the latest time down: the later of the two is the odd one.
            if want is not None and (have is None or (have[1] != want[1] and want[0] > have[0])):
                position, reason = want[1], f"the time index lacks position {want[1]}"
            elif have is not None and (want is None or have[1] != want[1]):
                position = have[1]
                reason = f"the time index holds position {position}, which cannot answer"
            else:
                position = have[1]
                reason = f"the time index holds position {position} at another time"
            return Problem(position, "index", f"{reason} (ctilink reindex rebuilds it)")
        return None

    def _count_index(self) -> Problem | None:
        """The index holds no more ids for the network than it has positions."""
        if self.index is None:
            return None
        count = id_count(self.index, self.name)
        if count == self.position:
            return None
        return Problem(
            self.position,
            "index",
            f"the id index holds {count} ids for {self.position} positions "
            "(ctilink reindex rebuilds it)",
        )
