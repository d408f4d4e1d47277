"""A snapshot that is not the log's own never answers a query: the damage is told instead."""

from __future__ import annotations

import sqlite3
from contextlib import closing

from ctilink.adapters.store.selection import open_service
from tests.support import Harness, cli, ev, installed


def two_networks(store: str) -> None:
    """net0 and net1 of 150 events each: each has a snapshot at position 100."""
    with closing(open_service(store)) as service:
        service.writes.snapshot_interval = 100
        for name in ("net0", "net1"):
            restarts = (ev("portal_restarted", network=name) for _ in range(149))
            Harness(service).given(installed(network=name), *restarts)


def test_a_snapshot_copied_from_another_network_is_reported_not_answered(tmp_path, capsys):
    store = str(tmp_path / "ctilink.db")
    two_networks(store)
    with closing(sqlite3.connect(store)) as db, db:
        at_100 = "originator_version = 100 AND originator_id = ?"
        (state,) = db.execute(
            f"SELECT state FROM stored_snapshots WHERE {at_100}", ("net1",)
        ).fetchone()
        db.execute(f"UPDATE stored_snapshots SET state = ? WHERE {at_100}", (state, "net0"))

    code, out, err = cli(capsys, "status", "net0", "--at", "150", "--json", "--store", store)

    assert (code, out) == (2, "")
    assert "'net0' cannot be read at position 100" in err and "ctilink verify" in err
    assert cli(capsys, "status", "net1", "--store", store)[0] == 0  # the other one answers


def test_a_snapshot_beyond_the_end_of_the_log_is_reported_not_answered(tmp_path, capsys):
    store = str(tmp_path / "ctilink.db")
    two_networks(store)
    with closing(sqlite3.connect(store)) as db, db:
        db.execute(
            "INSERT INTO stored_snapshots SELECT originator_id, 99999, topic, state "
            "FROM stored_snapshots WHERE originator_id='net0' AND originator_version=100"
        )

    code, out, err = cli(capsys, "status", "net0", "--json", "--store", store)

    assert (code, out) == (2, "")
    assert "position 99999" in err
