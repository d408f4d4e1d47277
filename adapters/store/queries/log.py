"""The log as stored, read row by row: each network's head, a network's positions, what changed.

Plain reads of eventsourcing's events table (and the id index's count for
`verify`) in the recorder's dialect: SQLite numbers the log by `rowid`,
PostgreSQL by `notification_id` (adapters/store/persistence/dialect.py).
"""

from __future__ import annotations

from typing import Any

from ctilink.adapters.store.persistence.dialect import RecorderParts
from ctilink.domain.application import NetworkService


def heads(recorder: RecorderParts) -> list[tuple[str, int]]:
    """Every network with its last position, sorted by name."""
    rows = recorder.query(
        f"SELECT originator_id, MAX(originator_version) FROM {recorder.events_sql} "
        "GROUP BY originator_id",
        (),
    )
    return sorted((row[0], row[1]) for row in rows)


def network_heads(service: NetworkService) -> list[tuple[str, int]]:
    """Every network of the service's store with its last position, sorted by name."""
    recorder: Any = service.recorder  # both adapters' recorders speak RecorderParts
    return heads(recorder)


def records(
    recorder: RecorderParts, network: str, low: int, high: int, limit: int, *, desc: bool = False
) -> list[tuple[int, str, bytes]]:
    """(position, topic, stored record) of positions low..high, at most `limit`."""
    q = recorder.mark
    rows = recorder.query(
        f"SELECT originator_version, topic, state FROM {recorder.events_sql} "
        f"WHERE originator_id = {q} AND originator_version BETWEEN {q} AND {q} "
        f"ORDER BY originator_version {'DESC' if desc else 'ASC'} LIMIT {q}",
        (network, low, high, limit),
    )
    return [(row[0], row[1], row[2]) for row in rows]


def events_after(recorder: RecorderParts, notification_id: int) -> int:
    """How many events were logged after that notification."""
    rows = recorder.query(
        f"SELECT COUNT(*) FROM {recorder.events_sql} "
        f"WHERE {recorder.notification_sql} > {recorder.mark}",
        (notification_id,),
    )
    return int(rows[0][0])


def networks_changed(recorder: RecorderParts, after: int, upto: int) -> set[str]:
    """The networks with events logged after notification `after`, up to `upto`."""
    q, column = recorder.mark, recorder.notification_sql
    rows = recorder.query(
        f"SELECT DISTINCT originator_id FROM {recorder.events_sql} "
        f"WHERE {column} > {q} AND {column} <= {q}",
        (after, upto),
    )
    return {row[0] for row in rows}


def id_count(recorder: RecorderParts, network: str) -> int:
    """How many ids the id index holds for a network."""
    rows = recorder.query(
        f"SELECT COUNT(*) FROM {recorder.table('ctilink_ids')} WHERE network = {recorder.mark}",
        (network,),
    )
    return int(rows[0][0])
