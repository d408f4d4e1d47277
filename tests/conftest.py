"""Shared fixtures: a fresh store per test, on each kind of store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ctilink.adapters.store.selection import open_service
from ctilink.domain.application import NetworkService
from tests.stores import KINDS, Postgres
from tests.support import Harness


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """The session's PostgreSQL database, dropped at the end."""
    server = Postgres()
    yield server
    server.drop()


@pytest.fixture(scope="module", params=KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    """Each store-dependent test runs once per kind of store."""
    return request.param


@pytest.fixture(scope="module")
def new_store(
    store_kind: str, postgres: Postgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[object]:
    """A maker of fresh, empty stores of this test's kind (path or URL)."""

    def make(name: str = "ctilink.db") -> str:
        if store_kind == "postgresql":
            return postgres.new_store()
        return str(tmp_path_factory.mktemp("store") / name)

    yield make


@pytest.fixture
def store_path(new_store) -> str:  # type: ignore[no-untyped-def]
    """A fresh store: a SQLite path or a PostgreSQL URL."""
    return new_store()


@pytest.fixture
def service(store_path: str) -> Iterator[NetworkService]:
    """The application service on a fresh store."""
    svc = open_service(store_path)
    yield svc
    svc.close()


@pytest.fixture
def net(service: NetworkService) -> Harness:
    """A given-when-then harness on a fresh store."""
    return Harness(service)
