"""The one place ctilink reaches into eventsourcing's private API, and only on 9.5.

Each use says why, and each has a public fallback that runs on any other version
(tests/integration/test_compat.py keeps both paths working):

- `durable`: every SQLite connection must sync each commit (`synchronous=FULL`).
  eventsourcing 9.5 opens connections in `SQLiteConnectionPool._create_connection`
  with no hook for pragmas. The pragma cannot be set inside a transaction, so the
  fallback reads it at the start of every write transaction and refuses to
  commit on a connection that would not sync (SQLite builds default to FULL).
- `stored_event`: building a `StoredEvent` through its dataclass constructor costs
  more per row than encoding it; on 9.5 the row is built without it, as the
  frozen dataclass would hold it. The fallback calls the constructor.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteConnection, SQLiteConnectionPool

WRITTEN_FOR = "9.5."
ENABLED = version("eventsourcing").startswith(WRITTEN_FOR) and hasattr(
    SQLiteConnectionPool, "_create_connection"
)

# WAL with synchronous=FULL syncs the log on every commit, so an accepted event
# survives a crash of the machine, not only of the process (NORMAL would not).
DURABLE_PRAGMAS = ("PRAGMA synchronous=FULL",)


class DurableConnectionPool(SQLiteConnectionPool):
    """Connections that sync every commit (eventsourcing 9.5's connection factory)."""

    def _create_connection(self) -> SQLiteConnection:
        connection = super()._create_connection()
        for pragma in DURABLE_PRAGMAS:
            connection._sqlite_conn.execute(pragma)
        return connection


def durable(datastore: Any, *, enabled: bool = ENABLED) -> bool:
    """Make the datastore's connections durable; False when each write must say so itself."""
    if not enabled:
        return False
    old = datastore.pool
    datastore.pool = DurableConnectionPool(db_name=old.db_name, lock_timeout=old.lock_timeout)
    old.close()
    return True


class NotDurable(RuntimeError):
    """A SQLite connection that would not sync its commits."""


def check_durable(cursor: Any) -> None:
    """The fallback: refuse a write transaction on a connection that would not sync."""
    cursor.execute("PRAGMA synchronous")
    level = int(cursor.fetchone()[0])
    if level < FULL:
        raise NotDurable(
            f"this SQLite connection syncs at level {level}, not FULL: commits would not "
            f"survive a power cut (eventsourcing {version('eventsourcing')}; ctilink sets it "
            f"on {WRITTEN_FOR}x)"
        )


FULL = 2  # PRAGMA synchronous's level


def _fast_stored_event(originator_id: str, version: int, topic: str, state: bytes) -> StoredEvent:
    """A StoredEvent as its frozen dataclass would hold it, without running its __init__."""
    event = object.__new__(StoredEvent)
    object.__setattr__(
        event,
        "__dict__",
        {
            "originator_id": originator_id,
            "originator_version": version,
            "topic": topic,
            "state": state,
        },
    )
    return event


def _public_stored_event(originator_id: str, version: int, topic: str, state: bytes) -> StoredEvent:
    """A StoredEvent through its constructor."""
    return StoredEvent(originator_id, version, topic, state)


stored_event = _fast_stored_event if ENABLED else _public_stored_event
