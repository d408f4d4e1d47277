"""The rejections a store kept, in commit order (`ctilink rejections`, the publisher)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ctilink.adapters.store.persistence.dialect import RecorderParts
from ctilink.adapters.store.persistence.inbound import REJECTION_COLUMNS
from ctilink.domain.arrivals import Rejection


def rejections(
    recorder: RecorderParts,
    network: str | None = None,
    after: int = 0,
    limit: int = 1000,
    *,
    code: str | None = None,
    since: datetime | None = None,
) -> list[tuple[int, Rejection]]:
    """(id, rejection) in commit order after `after`: of one network or of all, of one
    code or of all, received at or after `since` or whenever."""
    q = recorder.mark
    where, params = [f"id > {q}"], [after]
    if network is not None:  # (network, id) is indexed
        where.append(f"network = {q}")
        params.append(network)
    if code is not None:
        where.append(f"code = {q}")
        params.append(code)
    if since is not None:
        # As UTC ISO 8601 text: SQLite keeps `received` so (written in UTC, it sorts
        # as text); PostgreSQL reads it as a timestamptz.
        where.append(f"received >= {q}")
        params.append(since.astimezone(UTC).isoformat())
    rows = recorder.query(
        f"SELECT id, {REJECTION_COLUMNS} FROM {recorder.table('ctilink_rejections')} "
        f"WHERE {' AND '.join(where)} ORDER BY id LIMIT {int(limit)}",
        tuple(params),
    )
    return [(int(row[0]), to_rejection(row[1:])) for row in rows]


def to_rejection(row: Sequence[Any]) -> Rejection:
    """A rejection from the table's columns."""
    network, source, position, event_id, code, message, payload, received = row
    if isinstance(received, str):
        received = datetime.fromisoformat(received)
    return Rejection(network, source, position, event_id, code, message, bytes(payload), received)
