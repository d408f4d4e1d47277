"""What the application asks of the store when it writes (store/persistence/writes.py answers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ctilink.domain import messages as m
from ctilink.domain.arrivals import Arrival
from ctilink.domain.batch import Batch


class Writes(Protocol):
    """Loading a batch, saving it in one transaction, and what is held between batches."""

    def load(self, arrivals: Sequence[Arrival | m.Message]) -> Batch:
        """A batch holding each network the arrivals name as the store has it now, where
        their ids were accepted before (I3), and each sequential source's position."""
        ...

    def records(self, batch: Batch) -> dict[str, Any]:
        """What the store saves with the batch's events, in their transaction."""
        ...

    def saved(self, batch: Batch) -> None:
        """The batch is durable: hold its networks and sources for the next one."""
        ...

    def forget(self, batch: Batch) -> None:
        """The batch was not saved: drop what is held of its networks and sources."""
        ...
