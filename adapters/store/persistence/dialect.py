"""What the table families and the queries ask of a recorder: names, placeholders, transactions.

The SQLite and PostgreSQL recorders (sqlite.py, postgres.py) supply it; the
table families (inbound.py, ids.py, network_index.py) are mixed into them, and
the queries (adapters/store/queries/) take a recorder and speak its dialect
through these alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class RecorderParts:
    """How a recorder names a table and marks a parameter, and how it reads and writes."""

    mark = "?"  # the driver's parameter marker
    events_sql = "stored_events"  # the events table, as SQL
    notification_sql = "rowid"  # the events' column of notification ids (commit order)

    def table(self, name: str) -> str:
        """The table's name as SQL (schema-qualified where the store has schemas)."""
        return name

    def query(self, sql: str, params: tuple[Any, ...]) -> list[Sequence[Any]]:  # pragma: no cover
        """Rows of a read, as sequences."""
        raise NotImplementedError

    def execute(self, sql: str, params: tuple[Any, ...]) -> None:  # pragma: no cover
        """One write in a transaction of its own."""
        raise NotImplementedError

    def execute_many(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:  # pragma: no cover
        """One statement for many rows, in a transaction of its own."""
        raise NotImplementedError

    def exclusive(self) -> Any:  # pragma: no cover - supplied by the recorder
        """A write transaction that keeps other writers of events out until it ends."""
        raise NotImplementedError

    def fetch(self, cursor: Any) -> list[Sequence[Any]]:  # pragma: no cover - by the recorder
        """The cursor's rows, as sequences."""
        raise NotImplementedError
