"""eventsourcing's private API is used on 9.5 only; the public fallbacks work on any version.

Both paths of `adapters/store/persistence/compat.py` run here, whichever
eventsourcing is installed: a durable connection pool or a check on every write,
and a stored row built without or through its constructor.
"""

from __future__ import annotations

import sqlite3
from importlib.metadata import version
from pathlib import Path

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteDatastore

from ctilink.adapters.store.persistence import compat
from ctilink.adapters.store.persistence import sqlite as sqlite_recorder
from ctilink.adapters.store.selection import open_service
from tests.support import decode, installed


def test_the_private_api_is_used_only_on_the_version_it_was_written_for() -> None:
    assert version("eventsourcing").startswith(compat.WRITTEN_FOR) == compat.ENABLED


@pytest.mark.parametrize("build", [compat._fast_stored_event, compat._public_stored_event])
def test_a_stored_row_is_the_same_built_either_way(build) -> None:
    row = build("network-1", 3, "ctilink:Recorded", b"[1,2]")
    expected = StoredEvent("network-1", 3, "ctilink:Recorded", b"[1,2]")
    assert row == expected
    assert (row.originator_id, row.originator_version, row.topic, row.state) == (
        "network-1",
        3,
        "ctilink:Recorded",
        b"[1,2]",
    )
    with pytest.raises(AttributeError):  # frozen, as its dataclass is
        row.topic = "other"  # type: ignore[misc]


@pytest.mark.skipif(not compat.ENABLED, reason="the private pool exists on eventsourcing 9.5 only")
def test_the_durable_pool_syncs_every_commit(tmp_path: Path) -> None:
    datastore = SQLiteDatastore(str(tmp_path / "store.db"))
    assert compat.durable(datastore) is True
    with datastore.transaction(commit=False) as cursor:
        cursor.execute("PRAGMA synchronous")
        assert int(cursor.fetchone()[0]) == compat.FULL


def test_without_the_private_api_each_write_checks_for_itself(tmp_path: Path) -> None:
    datastore = SQLiteDatastore(str(tmp_path / "store.db"))
    assert compat.durable(datastore, enabled=False) is False  # the fallback's answer


def test_the_fallback_refuses_a_connection_that_would_not_sync(tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "store.db")
    cursor = connection.cursor()
    cursor.execute("PRAGMA synchronous=FULL")
    compat.check_durable(cursor)  # FULL passes
    cursor.execute("PRAGMA synchronous=NORMAL")
    with pytest.raises(compat.NotDurable, match="level 1, not FULL"):
        compat.check_durable(cursor)


def test_a_store_opened_without_the_private_api_writes_and_checks_each_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[int] = []
    real_check = compat.check_durable

    def counting_check(cursor) -> None:
        checked.append(1)
        real_check(cursor)

    monkeypatch.setattr(compat, "durable", lambda datastore: False)
    monkeypatch.setattr(sqlite_recorder, "check_durable", counting_check)
    service = open_service(str(tmp_path / "store.db"))
    outcome = service.ingest([decode(installed())])[0]
    assert (outcome.outcome, outcome.position) == ("accepted", 1), outcome
    assert checked  # the write checked its connection, as the fallback must
    assert service.head("acme") == 1  # and it reads back
