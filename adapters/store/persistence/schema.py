"""The store's tables and their version: made by `ctilink migrate` (or the first writer).

On PostgreSQL the tables belong to whoever made them; every other command then
runs as a role that may only read and write rows (docs/postgresql.md lists its
grants). A store whose tables are all there at this version is opened without
any DDL at all; one that lacks a table, or is older, is made current by the
opening command if its role may (the owner), else refused with the command to
run.
"""

from __future__ import annotations

from typing import Any

import msgspec

SCHEMA_VERSION = 2  # what this ctilink writes; `migrate` brings older stores to it
VERSION_KEY = "schema"  # its key in ctilink_meta

# Every table, as PostgreSQL names them (SQLite: stored_events, stored_snapshots, tracking).
TABLES = (
    "ctilink_events",
    "ctilink_snapshots",
    "ctilink_tracking",
    "ctilink_ids",
    "ctilink_times",
    "ctilink_meta",
    "ctilink_networks",
    "ctilink_damaged",
    "ctilink_inbound",
    "ctilink_rejections",
    "ctilink_outcomes",
)


class Migrated(msgspec.Struct, frozen=True):
    """`ctilink migrate --json`: the store's schema before and after."""

    store: str
    before: int  # 0: no schema yet
    after: int
    created: list[str]  # tables made by this run


def version_of(recorder: Any) -> int:
    """The schema version the store records (0 before any)."""
    try:
        rows = recorder.query(
            f"SELECT value FROM {recorder.table('ctilink_meta')} WHERE key = {recorder.mark}",
            (VERSION_KEY,),
        )
    except Exception:  # no meta table yet
        return 0
    return int(rows[0][0]) if rows and str(rows[0][0]).isdigit() else 0


def mark_current(recorder: Any) -> None:
    """Record that every table is there at this version."""
    q, meta = recorder.mark, recorder.table("ctilink_meta")
    recorder.execute(
        f"INSERT INTO {meta} VALUES ({q}, {q}) ON CONFLICT (key) DO UPDATE SET value = {q}",
        (VERSION_KEY, str(SCHEMA_VERSION), str(SCHEMA_VERSION)),
    )


def is_current(tables: set[str], version: int) -> bool:
    """Whether a PostgreSQL store has every table at this version (nothing to create)."""
    return set(TABLES) <= tables and version >= SCHEMA_VERSION
