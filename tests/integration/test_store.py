"""The store: durable commits, snapshots, loading, and selection."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ctilink.adapters.store.persistence.codec import stored_fingerprint
from ctilink.adapters.store.queries.log import network_heads
from ctilink.adapters.store.selection import (
    StoreError,
    open_service,
    persistence_env,
    resolve,
)
from ctilink.domain.messages import Content
from ctilink.domain.network import GENESIS, link
from ctilink.projections.log import fold
from tests.support import Harness, decode, ev, installed, system


def test_every_commit_is_synced_to_disk(service, store_kind):
    if store_kind == "postgresql":
        with service.recorder.datastore.transaction() as cursor:
            settings = {
                name: cursor.execute(f"SHOW {name}").fetchone()[name]
                for name in ("fsync", "synchronous_commit")
            }
        # A commit returns once its WAL record is flushed: it survives a crash.
        assert settings == {"fsync": "on", "synchronous_commit": "on"}
        return
    connection = service.recorder.datastore.pool.get_connection(is_writer=True)
    try:
        raw = connection._sqlite_conn
        journal = raw.execute("PRAGMA journal_mode").fetchone()[0]
        synchronous = raw.execute("PRAGMA synchronous").fetchone()[0]
    finally:
        service.recorder.datastore.pool.put_connection(connection)

    # WAL with synchronous=FULL (2): a commit survives a crash of the machine.
    assert (journal, synchronous) == ("wal", 2)


def test_snapshots_are_written_every_interval_in_the_same_commit(service):
    service.writes.snapshot_interval = 10
    events = [installed(), system("se-primary", role="primary")]
    events += [
        ev("link_changed", system="se-primary", component="csta", up=i % 2 == 0) for i in range(33)
    ]

    Harness(service).given(*events)

    def snapshot_positions() -> list[int]:
        return [s.originator_version for s in service.snapshots.recorder.select_events("acme")]

    assert snapshot_positions() == [10, 20, 30]  # every interval, even within one batch
    service.ingest([decode(ev("portal_restarted")) for _ in range(10)])
    assert snapshot_positions() == [10, 20, 30, 40]


def test_status_from_a_snapshot_equals_status_from_the_whole_log(store_path):
    events = [installed(), system("se-primary", role="primary"), system("exp-1")]
    events += [
        ev("link_changed", system="exp-1", component="dsml", up=i % 3 == 0) for i in range(120)
    ]
    with_snapshots = open_service(store_path)
    Harness(with_snapshots).given(*events)
    with_snapshots.close()

    reader = open_service(store_path)
    snapshot_state, position = reader.state_at("acme")
    log_state = fold(e.message for e in reader.log("acme"))
    reader.close()

    assert position == 123
    assert snapshot_state == log_state


def test_a_new_process_keeps_idempotency_i3(store_path):
    first = open_service(store_path)
    event = installed(id="install-1")
    assert first.ingest([decode(event)])[0].outcome == "accepted"
    first.close()

    second = open_service(store_path)
    again = second.ingest([decode(event)])[0]
    conflict = second.ingest([decode({**event, "platform": "windows"})])[0]
    second.close()

    assert (again.outcome, again.position) == ("duplicate", 1)
    assert (conflict.outcome, conflict.code) == ("rejected", "id_conflict")


def test_stored_events_carry_the_fingerprint_of_the_event_as_sent(service):
    Harness(service).given(installed(id="first"))

    stored = service.recorder.select_events("acme")[0]

    assert stored_fingerprint(stored.state)[0] == "first"


def test_two_services_on_one_store_never_double_an_event_i3_i4(store_path):
    one, two = open_service(store_path), open_service(store_path)
    Harness(one).given(installed())
    # Both have loaded the network; `two` is then behind what `one` writes.
    two.ingest([decode(ev("portal_restarted", id="r0"))])
    one.ingest([decode(ev("portal_restarted", id="r1"))])

    outcomes = two.ingest(
        [decode(ev("portal_restarted", id="r1")), decode(ev("portal_restarted", id="r2"))]
    )

    assert [(o.outcome, o.position) for o in outcomes] == [("duplicate", 3), ("accepted", 4)]
    assert [e.message.id for e in one.log("acme")][1:] == ["r0", "r1", "r2"]
    one.close()
    two.close()


def test_network_heads_lists_every_network_sorted(service):
    Harness(service).given(
        installed(network="zeta"),
        installed(network="alpha"),
        ev("portal_restarted", network="alpha"),
    )

    assert network_heads(service) == [("alpha", 2), ("zeta", 1)]


def test_store_selection_prefers_the_flag_then_the_environment(monkeypatch):
    monkeypatch.delenv("CTILINK_STORE", raising=False)
    assert resolve(None) == "ctilink.db"
    monkeypatch.setenv("CTILINK_STORE", "/tmp/env.db")
    assert resolve(None) == "/tmp/env.db"
    assert resolve("/tmp/flag.db") == "/tmp/flag.db"


@pytest.mark.parametrize(
    "store, reason",
    [
        ("/nonexistent-dir/x.db", "does not exist"),
        ("/tmp", "is a directory"),
    ],
)
def test_an_unusable_store_is_named_with_the_reason(store, reason):
    with pytest.raises(StoreError, match=reason):
        persistence_env(store)


def test_hash_chain_continues_across_snapshots_and_processes(store_path):
    first = open_service(store_path)
    first.writes.snapshot_interval = 5
    events = [installed(), system("se-primary", role="primary")]
    events += [
        ev("link_changed", system="se-primary", component="csta", up=True) for _ in range(12)
    ]
    Harness(first).given(*events)
    first.close()
    # A new process loads the writer from the snapshot and must continue the chain.
    second = open_service(store_path)
    Harness(second).given(*[ev("portal_restarted") for _ in range(3)])

    previous = GENESIS
    for event in second.log("acme"):
        expected = link(previous, Content(event.message), event.timestamp)
        assert event.chain == expected, event.originator_version
        previous = expected
    second.close()
    assert previous != GENESIS


def test_a_file_that_is_no_database_is_a_one_line_error_not_a_traceback(tmp_path):
    store = tmp_path / "garbage.db"
    store.write_bytes(b"this is not a SQLite database, just some bytes" * 100)

    done = subprocess.run(
        [sys.executable, "-m", "ctilink.adapters.cli", "status", "acme", "--store", str(store)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"ctilink: store {str(store)!r} cannot be opened: file is not a database"
    ]
    with pytest.raises(StoreError, match="file is not a database"):
        open_service(str(store))


def test_preview_commits_nothing_and_reports_what_ingest_would(service):
    Harness(service).given(installed(), system("se-primary", role="primary"))
    events = [ev("resilience_set", enabled=True), ev("failover", system="ghost")]

    outcomes, after = service.preview([decode(e) for e in events])

    assert [(o.outcome, o.position, o.code) for o in outcomes] == [
        ("accepted", 3, None),
        ("rejected", None, "unknown_system"),
    ]
    assert after["acme"][1] == 3 and after["acme"][0].resilience is True
    assert service.head("acme") == 2
    # Nothing of the preview lingers: the same event is accepted at 3 for real.
    assert service.ingest([decode(events[0])])[0].position == 3


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql://postgres@127.0.0.1:5432/", "names no database"),
        ("postgresql://postgres@127.0.0.1:port/db", "port is not a number"),
        ("postgresql://postgres@127.0.0.1/db?schema=Not-A-Name", "not a lower-case SQL name"),
        ("postgresql://postgres@127.0.0.1/db?sslmode=x", "sslmode must be one of"),
        ("postgresql://postgres@127.0.0.1/db?pool=9", "unknown option"),
    ],
)
def test_a_malformed_postgresql_url_is_named_with_the_reason(url, reason):
    with pytest.raises(StoreError, match=reason):
        persistence_env(url)


def test_an_unreachable_postgresql_is_a_one_line_error_without_the_password():
    store = "postgresql://someone:s3cret@127.0.0.1:1/ctilink"
    run = subprocess.run(
        [sys.executable, "-m", "ctilink.adapters.cli", "networks", "--store", store],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2
    assert run.stderr.startswith("ctilink: store 'postgresql://someone:***@127.0.0.1:1/ctilink'")
    assert "s3cret" not in run.stderr
    assert len(run.stderr.splitlines()) == 1, run.stderr


def test_duplicates_and_conflicts_are_recognised_after_reopening_the_store_i3(net, store_path):
    net.given(
        installed(id="inst"),
        ev("portal_restarted", id="r", at="2024-05-01T12:00:00+02:00"),
    )
    reopened = open_service(store_path)

    try:
        outcomes = reopened.ingest(
            [
                decode(ev("portal_restarted", id="r", at="2024-05-01T10:00:00Z")),
                decode(ev("portal_restarted", id="r")),
                decode(installed(id="inst")),
            ]
        )
    finally:
        reopened.close()

    assert [(o.outcome, o.code) for o in outcomes] == [
        ("duplicate", None),
        ("rejected", "id_conflict"),
        ("duplicate", None),
    ]


def test_the_store_keeps_its_table_names_whatever_the_service_class_is_called(service, store_kind):
    # eventsourcing names tables after the application: renaming a class must not
    # leave an existing PostgreSQL store's tables behind.
    service.ingest([decode(installed())])

    if store_kind == "postgresql":
        with service.recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (service.recorder.datastore.schema,),
            )
            tables = {row["table_name"] for row in cursor.fetchall()}
        assert {"ctilink_events", "ctilink_snapshots"} <= tables
    else:
        assert service.recorder.events_table_name == "stored_events"
    assert service.name == "ctilink"
