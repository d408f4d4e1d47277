"""Unit tests run the rules on eventsourcing's in-memory store: no file, no server."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ctilink.adapters.store.selection import MEMORY


@pytest.fixture(scope="module")
def store_kind() -> str:
    """One kind of store here; the real ones are tested in tests/integration."""
    return "memory"


@pytest.fixture(scope="module")
def new_store() -> Callable[..., str]:
    """Every store is a new in-memory one (opened once: it lives in its service)."""
    return lambda name="": MEMORY
