"""Roles one process at a time holds on a store (publishing, sweeping strays, a file's ingest).

On PostgreSQL a role is a session-level advisory lock on a connection of its own:
the server releases it when the process dies or its connection breaks, so a
crashed instance's roles pass to the others without any timeout. On a SQLite
file, every process on the machine shares the store, and `flock` on a file
beside it plays the same part (the kernel releases it with the process).
"""

from __future__ import annotations

import fcntl
import os
import threading
import zlib
from pathlib import Path
from typing import Protocol

from ctilink.adapters.store.selection import is_postgres, persistence_env

PUBLISHER = 0  # the role that publishes the log to CTILINK_OUT
SWEEPER = 2  # the role that rejects messages sent to a literal wildcard subject


def source_role(source: str) -> int:
    """The role of ingesting one file (a source): one run at a time."""
    return 1_000_000 + (zlib.crc32(source.encode()) >> 2)  # an int4, as the lock takes it


class Roles(Protocol):
    """Exclusive roles shared by the processes on one store."""

    def take(self, role: int) -> bool:
        """Take the role if nobody holds it; True if this process holds it now."""
        ...

    def holds(self, role: int) -> bool:
        """Whether this process still holds the role (a broken session holds nothing)."""
        ...

    def give_up(self, role: int) -> None:
        """Release the role, if held."""
        ...

    def close(self) -> None:
        """Release every role."""
        ...


class AdvisoryRoles:
    """Roles as PostgreSQL advisory locks of this process's own session."""

    def __init__(self, store: str) -> None:
        import psycopg  # only PostgreSQL stores load the driver

        env = persistence_env(store)
        self._psycopg = psycopg
        self._connect_args = {
            "dbname": env["POSTGRES_DBNAME"],
            "host": env["POSTGRES_HOST"],
            "port": env["POSTGRES_PORT"],
            "user": env["POSTGRES_USER"],
            "password": env["POSTGRES_PASSWORD"],
            "connect_timeout": int(env["POSTGRES_CONNECT_TIMEOUT"]),
            "autocommit": True,
            "application_name": "ctilink",
        }
        # Advisory locks are per database (the server tags each with the database
        # it was taken in): the schema keeps two stores in one database (or two
        # test runs) out of each other's way.
        self.space = zlib.crc32(f"ctilink:{env['POSTGRES_SCHEMA'] or 'public'}".encode()) >> 1
        self.held: set[int] = set()
        self.connection = None
        # Callers ask from worker threads (asyncio.to_thread), several at once: one
        # session must not run two queries together or be dropped under another.
        self.lock = threading.RLock()
        self._ensure_session()

    def _ensure_session(self) -> None:
        """A live session; a new one if it broke."""
        if self.connection is not None and not self.connection.closed:
            return
        self.held.clear()  # a new session holds nothing the old one did
        self.connection = self._psycopg.connect(**self._connect_args)

    def _query(self, sql: str, role: int) -> bool:
        """One query on the session (the caller holds the lock); False if it broke."""
        try:
            self._ensure_session()
            row = self.connection.execute(sql, (self.space, role)).fetchone()  # type: ignore[union-attr]
        except self._psycopg.Error:
            self._drop()
            return False
        return bool(row and row[0])

    def _drop(self) -> None:
        """Forget a broken session: the server has released its locks."""
        if self.connection is not None:
            self.connection.close()
        self.connection = None
        self.held.clear()

    def take(self, role: int) -> bool:
        """Take the role if nobody holds it."""
        with self.lock:
            if role in self.held:
                return self.holds(role)
            if self._query("SELECT pg_try_advisory_lock(%s, %s)", role):
                self.held.add(role)
                return True
            return False

    def holds(self, role: int) -> bool:
        """Whether this session still holds the role."""
        with self.lock:
            if role not in self.held:
                return False
            # A round trip proves the session (and so the lock) is still there.
            mine = self._query(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
                "AND pid = pg_backend_pid() AND granted AND classid = %s AND objid = %s "
                "AND objsubid = 2)",
                role,
            )
            if not mine:
                self.held.discard(role)
            return mine

    def give_up(self, role: int) -> None:
        """Release the role."""
        with self.lock:
            if role in self.held:
                self._query("SELECT pg_advisory_unlock(%s, %s)", role)
                self.held.discard(role)

    def close(self) -> None:
        """End the session: the server releases every lock."""
        with self.lock:
            self._drop()


class FileRoles:
    """Roles as `flock`s on files beside a SQLite store (one machine)."""

    def __init__(self, store: str) -> None:
        self.folder = Path(f"{store}.roles")
        self.folder.mkdir(exist_ok=True)
        self.held: dict[int, int] = {}

    def take(self, role: int) -> bool:
        """Take the role if no other process holds it."""
        if role in self.held:
            return True
        fd = os.open(self.folder / str(role), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.held[role] = fd
        return True

    def holds(self, role: int) -> bool:
        """A flock lasts as long as the process: held if taken."""
        return role in self.held

    def give_up(self, role: int) -> None:
        """Release the role."""
        fd = self.held.pop(role, None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        """Release every role."""
        for role in list(self.held):
            self.give_up(role)


def open_roles(store: str) -> Roles:
    """The role registry for a store: advisory locks on PostgreSQL, flocks on SQLite."""
    return AdvisoryRoles(store) if is_postgres(store) else FileRoles(store)
