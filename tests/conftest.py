"""Shared fixtures: a fresh store per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.store import open_service
from domain.service import NetworkService
from tests.support import Harness


@pytest.fixture
def store_path(tmp_path: Path) -> str:
    """A path for a fresh SQLite store."""
    return str(tmp_path / "ctilink.db")


@pytest.fixture
def service(store_path: str) -> Iterator[NetworkService]:
    """The application service on a fresh SQLite store."""
    svc = open_service(store_path)
    yield svc
    svc.close()


@pytest.fixture
def net(service: NetworkService) -> Harness:
    """A given-when-then harness on a fresh store."""
    return Harness(service)
