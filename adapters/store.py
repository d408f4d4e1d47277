"""Store selection: a SQLite file by default, PostgreSQL by URL."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from eventsourcing.persistence import PersistenceError

from domain.service import NetworkService

DEFAULT_STORE = "ctilink.db"
STORE_ENV = "CTILINK_STORE"


class StoreError(Exception):
    """The store cannot be opened as given."""


def resolve(store: str | None) -> str:
    """The store to use: --store, else $CTILINK_STORE, else ./ctilink.db."""
    return store or os.environ.get(STORE_ENV) or DEFAULT_STORE


def persistence_env(store: str) -> dict[str, str]:
    """The eventsourcing environment for a store path or URL."""
    if store.startswith(("postgresql://", "postgres://")):
        raise StoreError("PostgreSQL stores are not supported yet")
    path = Path(store)
    if path.is_dir():
        raise StoreError(f"store {store!r} is a directory, not a SQLite file")
    if not path.parent.exists():
        raise StoreError(f"store {store!r}: directory {str(path.parent)!r} does not exist")
    return {
        "PERSISTENCE_MODULE": "adapters.durable_sqlite:Factory",
        "SQLITE_DBNAME": str(path),
        "SQLITE_LOCK_TIMEOUT": "30",
    }


def open_service(store: str | None = None, *, create: bool = True) -> NetworkService:
    """Open the application service on the selected store; StoreError says why not."""
    location = resolve(store)
    if not create and location != ":memory:" and not Path(location).exists():
        # Reading must not leave an empty store file behind as a side effect.
        raise StoreError(f"store {location!r} does not exist (nothing was ingested there)")
    try:
        return NetworkService(env=persistence_env(location))
    except (sqlite3.Error, PersistenceError) as error:
        raise StoreError(f"store {location!r} cannot be opened: {error}") from None


def network_heads(service: NetworkService) -> list[tuple[str, int]]:
    """Every network with its last position, sorted by name."""
    recorder = service.recorder
    table = recorder.events_table_name  # type: ignore[attr-defined]
    with recorder.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
        cursor.execute(
            f"SELECT originator_id, MAX(originator_version) FROM {table} "
            "GROUP BY originator_id ORDER BY originator_id"
        )
        return [(row[0], row[1]) for row in cursor.fetchall()]
