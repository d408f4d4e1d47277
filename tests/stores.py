"""The stores the suite runs on: a SQLite file, and PostgreSQL in a throwaway database."""

from __future__ import annotations

import itertools
import os
import uuid

import psycopg
import pytest

# The machine's PostgreSQL (trust auth); CTILINK_TEST_PG overrides it.
SERVER = os.environ.get("CTILINK_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
KINDS = ("sqlite", "postgresql")
_schemas = itertools.count(1)


class Postgres:
    """One database for the test session; a fresh schema per store."""

    def __init__(self) -> None:
        self.database = f"ctilink_test_{uuid.uuid4().hex[:12]}"
        self.problem: str | None = None
        try:
            with psycopg.connect(f"{SERVER}/postgres", autocommit=True, connect_timeout=3) as c:
                c.execute(f'CREATE DATABASE "{self.database}"')
        except psycopg.Error as error:
            self.problem = f"no PostgreSQL at {SERVER}: {str(error).strip()}"

    def new_store(self) -> str:
        """The URL of an empty store (its schema is created on first use)."""
        if self.problem is not None:
            if os.environ.get("CI") == "true":
                pytest.fail(f"CI needs PostgreSQL: {self.problem}")
            pytest.skip(self.problem)
        return f"{SERVER}/{self.database}?schema=s{next(_schemas)}_{os.getpid()}"

    def drop(self) -> None:
        """Drop the session's database, whoever is still connected."""
        if self.problem is None:
            with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
