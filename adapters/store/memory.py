"""eventsourcing's in-memory (POPO) persistence, answering what ctilink's readers ask."""

from __future__ import annotations

from typing import Any

from eventsourcing.popo import POPOApplicationRecorder, POPOFactory


class MemoryRecorder(POPOApplicationRecorder):
    """The in-memory recorder, with the listings the SQLite and PostgreSQL recorders give."""

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
    ) -> list[tuple[int, bytes]]:
        """(position, stored record) of the network's positions low..high, at most `limit`."""
        found = self.select_events(network, gt=low - 1, lte=high, desc=desc, limit=limit)
        return [(stored.originator_version, stored.state) for stored in found]


class Factory(POPOFactory):
    """POPOFactory with the recorder above."""

    application_recorder_class = MemoryRecorder

    def application_recorder(self) -> Any:
        """The events recorder."""
        return MemoryRecorder()
