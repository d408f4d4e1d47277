"""The store's indexes over the log, written in the events' own transaction.

- `ctilink_ids`: (network, event id) → position, unique, so that I3 is a
  lookup rather than a scan of a network's whole log (the fingerprint is read
  from the event's own row, only when an id is found: most never are);
- `ctilink_meta`: which indexes are complete (a store written before an index
  existed gets it built on first open for writing, or by `ctilink reindex`).

`IndexTables` is mixed into the SQLite and PostgreSQL recorders, which supply
`table`, `mark`, `query` and `execute` (dialect.py). The network index is in
network_index.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from ctilink.adapters.store.persistence.codec import stored_fingerprint
from ctilink.adapters.store.persistence.dialect import RecorderParts

IdRow = tuple[str, str, int]  # network, event id, position
Seen = dict[tuple[str, str], tuple[int, bytes]]  # (network, event id) -> (position, fp)
IDS_COMPLETE = "ids"
STORE_IDENTITY = "store"  # the meta key of the store's own name


class IndexTables(RecorderParts):
    """Create and write the index tables, and read what writing needs; the recorder supplies
    names and placeholders."""

    def index_statements(self, clustered: str = "") -> list[str]:
        """CREATE statements for the index tables, in the store's column types."""
        return [
            f"CREATE TABLE IF NOT EXISTS {self.table('ctilink_ids')} (network TEXT NOT NULL, "
            "event_id TEXT NOT NULL, position BIGINT NOT NULL, "
            f"PRIMARY KEY (network, event_id)){clustered}",
            f"CREATE TABLE IF NOT EXISTS {self.table('ctilink_meta')} "
            "(key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ]

    # --- writing, inside the events' transaction --------------------------------------

    def write_ids(self, cursor: Any, rows: Sequence[IdRow]) -> None:
        """Add the accepted events' ids; one already there fails the transaction (I3)."""
        if rows:
            q = self.mark
            # In key order: each insert lands beside the last, not all over the tree.
            cursor.executemany(
                f"INSERT INTO {self.table('ctilink_ids')} VALUES ({q}, {q}, {q})", sorted(rows)
            )

    # --- reading ------------------------------------------------------------------------

    def lookup_ids(self, pairs: Iterable[tuple[str, str]]) -> Seen:
        """I3 for a whole batch, in one query: which (network, event id) pairs were accepted,
        where, and the digest of what was accepted (read from the event's own row)."""
        wanted = list(dict.fromkeys(pairs))
        if not wanted:
            return {}
        found: Seen = {}
        for network, event_id, position, state in self.query(*self.lookup_query(wanted)):
            try:
                digest = stored_fingerprint(bytes(state))[1]
            except Exception:  # a damaged row: no digest matches it (`verify` names it)
                digest = b""
            found[(network, event_id)] = (int(position), digest)
        return found

    def lookup_query(self, pairs: list[tuple[str, str]]) -> tuple[str, tuple[Any, ...]]:
        """The one query of `lookup_ids`, in the store's dialect (the recorder's)."""
        raise NotImplementedError

    def heads_of(self, networks: Sequence[str]) -> dict[str, int]:
        """The last position of each of these networks that has any, in one query."""
        if not networks:
            return {}
        return {str(row[0]): int(row[1]) for row in self.query(*self.heads_query(networks))}

    def heads_query(self, networks: Sequence[str]) -> tuple[str, tuple[Any, ...]]:
        """The one query of `heads_of`, in the store's dialect (the recorder's)."""
        raise NotImplementedError

    def store_identity(self) -> str:
        """The store's own name for itself: random, made on first asking, kept in the store."""
        q, meta = self.mark, self.table("ctilink_meta")
        select = f"SELECT value FROM {meta} WHERE key = {q}"
        rows = self.query(select, (STORE_IDENTITY,))
        if not rows:
            self.execute(
                f"INSERT INTO {meta} VALUES ({q}, {q}) ON CONFLICT (key) DO NOTHING",
                (STORE_IDENTITY, uuid.uuid4().hex[:16]),
            )
            rows = self.query(select, (STORE_IDENTITY,))
        return str(rows[0][0])

    def index_complete(self, name: str = IDS_COMPLETE) -> bool:
        """Whether an index was built over the whole log (and kept since)."""
        try:
            rows = self.query(
                f"SELECT value FROM {self.table('ctilink_meta')} WHERE key = {self.mark}", (name,)
            )
        except Exception:  # a store from before the index, opened read-only: no table
            return False
        return bool(rows)
