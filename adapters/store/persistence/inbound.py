"""What a store keeps of the inbound side, in the events' own transaction.

- `ctilink_inbound`: per source (a NATS partition), the last position decided;
  written compare-and-set, so a writer that decided from a stale position fails
  its whole transaction and decides again from the recorded one.
- `ctilink_rejections`: every rejection, with its payload, in commit order (the
  publisher sends those from NATS to `ctilink.rejected.<network>`; they are
  read by adapters/store/queries/rejections.py).
- `ctilink_outcomes`: a file's lines and their first outcomes, one row per
  committed share of lines, so a re-run reports them and decides only the rest.

`InboundTables` is mixed into the SQLite and PostgreSQL recorders; each says
how it names a table and marks a parameter.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import msgspec
from eventsourcing.persistence import IntegrityError

from ctilink.adapters.store.persistence.dialect import RecorderParts
from ctilink.domain.arrivals import Rejection


class OutcomeChunk(msgspec.Struct, frozen=True):
    """One committed share of a file's lines: their digests and first outcomes, compressed."""

    source: str
    first_line: int
    last_line: int
    lines: bytes


REJECTION_COLUMNS = "network, source, position, event_id, code, message, payload, received"


class InboundTables(RecorderParts):
    """Create and write the inbound tables, and read back what writing needs; the recorder
    supplies names and placeholders."""

    def inbound_statements(self, serial: str, blob: str, timestamp: str) -> list[str]:
        """CREATE statements for the three tables, in the store's column types."""
        inbound, rejections = self.table("ctilink_inbound"), self.table("ctilink_rejections")
        outcomes = self.table("ctilink_outcomes")
        return [
            f"CREATE TABLE IF NOT EXISTS {inbound} "
            "(source TEXT PRIMARY KEY, position BIGINT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {rejections} (id {serial}, network TEXT, "
            "source TEXT, position BIGINT, event_id TEXT, code TEXT NOT NULL, "
            f"message TEXT NOT NULL, payload {blob} NOT NULL, received {timestamp} NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS ctilink_rejections_by_network "
            f"ON {rejections} (network, id)",
            f"CREATE TABLE IF NOT EXISTS {outcomes} (source TEXT NOT NULL, "
            f"first_line BIGINT NOT NULL, last_line BIGINT NOT NULL, lines {blob} NOT NULL, "
            "PRIMARY KEY (source, first_line))",
        ]

    # --- writing, inside the events' transaction ------------------------------------

    def write_inbound(
        self,
        cursor: Any,
        sources: dict[str, tuple[int, int]],
        rejections: Sequence[Rejection],
        journal: OutcomeChunk | None,
    ) -> None:
        """Advance the sources (compare-and-set), add the rejections and a file's outcomes."""
        q = self.mark
        for source, (before, after) in sources.items():
            if before == 0:  # a second writer's insert conflicts on the key
                cursor.execute(
                    f"INSERT INTO {self.table('ctilink_inbound')} VALUES ({q}, {q})",
                    (source, after),
                )
                continue
            cursor.execute(
                f"UPDATE {self.table('ctilink_inbound')} SET position = {q} "
                f"WHERE source = {q} AND position = {q}",
                (after, source, before),
            )
            if cursor.rowcount != 1:
                raise IntegrityError(f"source {source!r} moved past {before} meanwhile")
        if rejections:
            marks = ", ".join([q] * 8)
            cursor.executemany(
                f"INSERT INTO {self.table('ctilink_rejections')} ({REJECTION_COLUMNS}) "
                f"VALUES ({marks})",
                [self.rejection_row(r) for r in rejections],
            )
        if journal is not None:
            cursor.execute(
                f"INSERT INTO {self.table('ctilink_outcomes')} VALUES ({q}, {q}, {q}, {q})",
                (journal.source, journal.first_line, journal.last_line, journal.lines),
            )

    def rejection_row(self, r: Rejection) -> tuple[Any, ...]:
        """A rejection as the table's columns."""
        return (
            r.network,
            r.source,
            r.position,
            r.event_id,
            r.code,
            r.message,
            r.payload,
            r.received,
        )

    # --- reading back, for writing -----------------------------------------------------

    def inbound_position(self, source: str) -> int:
        """The last position of `source` decided and committed (0 before the first)."""
        rows = self.query(
            f"SELECT position FROM {self.table('ctilink_inbound')} WHERE source = {self.mark}",
            (source,),
        )
        return int(rows[0][0]) if rows else 0

    def outcome_chunks(self, source: str) -> Iterator[OutcomeChunk]:
        """A file's committed shares of lines, by first line."""
        q = self.mark
        after = -1
        while True:
            rows = self.query(
                f"SELECT source, first_line, last_line, lines FROM "
                f"{self.table('ctilink_outcomes')} WHERE source = {q} AND first_line > {q} "
                "ORDER BY first_line LIMIT 50",
                (source, after),
            )
            for row in rows:
                lines = row[3] if isinstance(row[3], bytes | bytearray | memoryview) else b""
                yield OutcomeChunk(row[0], int(row[1]), int(row[2]), bytes(lines))
            if len(rows) < 50:
                return
            after = int(rows[-1][1])

    def forget_outcomes(self, source: str) -> None:
        """Drop what is kept of a file's lines (to decide them all again)."""
        self.execute(
            f"DELETE FROM {self.table('ctilink_outcomes')} WHERE source = {self.mark}", (source,)
        )
