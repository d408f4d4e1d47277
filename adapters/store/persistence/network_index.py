"""The network index: each network's line of the listings, written in its events' transaction.

- `ctilink_networks`: one row per network, its line (projections/overview.py)
  at its last position, so that listing 100,000 networks reads rows rather than
  folding 100,000 logs. A line only ever moves to a later position.
- `ctilink_damaged`: the networks whose log could not be folded when the index
  was last built, so that listings still name them (`verify` says what is wrong).

Builds (adapters/store/maintenance/index_builds.py) run beside writers, a page
at a time: a build takes a token in `ctilink_meta` when it starts and marks the index
complete only if it still holds the token when it ends, so of two builds at
once only the later completes it, and a build that dies completes nothing.

`NetworkTables` is mixed into the SQLite and PostgreSQL recorders beside
`InboundTables` and `IndexTables`; the listings read the rows through
adapters/store/queries/networks.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import Any

from ctilink.adapters.store.persistence.dialect import RecorderParts
from ctilink.projections.overview import Overview

NETWORKS_COMPLETE = "networks"
NETWORKS_BUILD = "networks-build"  # the token of the build in progress
COLUMNS = (
    "network, position, setting, configured, effective, restart_pending, converted, "
    "available, unavailable, not_configured, recorded"
)


class NetworkTables(RecorderParts):
    """Create and write the network index; the recorder supplies names and placeholders."""

    def network_statements(self, clustered: str = "", binary: str = "") -> list[str]:
        """CREATE statements for the network index, in the store's column types.

        `binary`: the collation that orders names by code point, as Python does
        (PostgreSQL's default follows the locale, so pages would not be in name order).
        """
        return [
            f"CREATE TABLE IF NOT EXISTS {self.table('ctilink_networks')} ("
            f"network TEXT{binary} PRIMARY KEY, position BIGINT NOT NULL, setting TEXT NOT NULL, "
            "configured TEXT NOT NULL, effective TEXT NOT NULL, "
            "restart_pending INTEGER NOT NULL, converted INTEGER NOT NULL, "
            "available INTEGER NOT NULL, unavailable INTEGER NOT NULL, "
            f"not_configured INTEGER NOT NULL, recorded TEXT NOT NULL){clustered}",
            f"CREATE TABLE IF NOT EXISTS {self.table('ctilink_damaged')} ("
            f"network TEXT{binary} PRIMARY KEY, position BIGINT NOT NULL, reason TEXT NOT NULL)",
        ]

    # --- writing --------------------------------------------------------------------------

    def write_networks(self, cursor: Any, rows: Sequence[Overview]) -> None:
        """Set the networks' lines inside the events' transaction."""
        if rows:
            # In name order, as builds write theirs: two transactions that take
            # the same rows' locks in one order cannot deadlock (PostgreSQL).
            values = sorted(network_values(row) for row in rows)
            cursor.executemany(self.network_upsert, values)

    @property
    def network_upsert(self) -> str:
        """Insert a network's line, or replace it by a later one (never by an earlier one)."""
        q, table = self.mark, self.table("ctilink_networks")
        columns = COLUMNS.split(", ")
        changes = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
        # Monotonic, so that a build racing a writer cannot put back an older line.
        return (
            f"INSERT INTO {table} ({COLUMNS}) VALUES ({', '.join([q] * len(columns))}) "
            f"ON CONFLICT (network) DO UPDATE SET {changes} "
            "WHERE excluded.position > ctilink_networks.position"
        )

    # --- whether it is complete (building, and the listings, ask) -------------------------

    def networks_complete(self) -> bool:
        """Whether the index was built over the whole log, and its tables are there."""
        try:
            rows = self.query(
                f"SELECT value FROM {self.table('ctilink_meta')} WHERE key = {self.mark}",
                (NETWORKS_COMPLETE,),
            )
            if rows:  # a table dropped by hand leaves the mark behind
                self.query(f"SELECT 1 FROM {self.table('ctilink_networks')} LIMIT 1", ())
                self.query(f"SELECT 1 FROM {self.table('ctilink_damaged')} LIMIT 1", ())
        except Exception:  # a store from before the index, opened read-only: no tables
            return False
        return bool(rows)


def network_values(row: Overview) -> tuple[Any, ...]:
    """A network's line as the table's columns (flags as 0/1, the time as UTC ISO text)."""
    return (
        row.network,
        row.position,
        row.setting,
        row.configured,
        row.effective,
        int(row.restart_pending),
        int(row.converted),
        row.available,
        row.unavailable,
        row.not_configured,
        row.recorded.astimezone(UTC).isoformat(),
    )
