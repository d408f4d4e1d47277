"""The store's id index: I3 decided by a lookup, exactly as by a scan, on every store.

Each test opens the store afresh where it matters, so nothing held in memory
(the recent ids, a held network) can answer in the index's place.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import Any

from ctilink.adapters.cli.main import main
from ctilink.adapters.store.maintenance.verification import verify
from ctilink.adapters.store.selection import open_service
from ctilink.domain.application import NetworkService
from tests.support import Harness, decode, ev, installed, system


def fresh(store: str) -> NetworkService:
    """A new service on the store: nothing of it held in memory yet."""
    return open_service(store)


def outcomes(service: NetworkService, *events: dict[str, Any]) -> list[tuple[str, Any]]:
    """(outcome, position or code) of each event, ingested as one batch."""
    found = service.ingest([decode(e) for e in events])
    return [(o.outcome, o.position if o.code is None else o.code) for o in found]


def test_an_id_accepted_in_an_earlier_process_is_a_duplicate_or_a_conflict_i3(store_path):
    restart = ev("portal_restarted", id="r-1")
    with closing(open_service(store_path)) as first:
        Harness(first).given(installed(), restart)
    second = fresh(store_path)
    try:
        changed = {**restart, "actor": "someone else"}
        assert outcomes(second, restart) == [("duplicate", 2)]
        assert outcomes(second, changed) == [("rejected", "id_conflict")]
        assert second.head("acme") == 2  # nothing appended
    finally:
        second.close()


def test_ids_held_by_the_index_only_are_found_in_the_same_process_too_i3(store_path):
    # No recent ids kept: every resend must be found in the store.
    service = fresh(store_path)
    try:
        events = [installed(), *(ev("portal_restarted", id=f"r-{k}") for k in range(5))]
        Harness(service).given(*events)
        resend = [ev("portal_restarted", id="new-1"), events[3], ev("portal_restarted", id="r-1")]
        resend[2]["actor"] = "changed"

        assert outcomes(service, *resend) == [
            ("accepted", 7),
            ("duplicate", 4),
            ("rejected", "id_conflict"),
        ]
        assert service.head("acme") == 7  # the retried batch appended its event once
    finally:
        service.close()


def test_an_accepted_id_is_a_duplicate_even_where_the_rules_would_now_reject_it_i2_i3(
    store_path,
):
    added = system("se1", role="primary")
    with closing(open_service(store_path)) as first:
        Harness(first).given(installed(), added)
    second = fresh(store_path)
    try:
        # Adding se1 again breaks I6 (duplicate_system), but the id check comes first.
        assert outcomes(second, added) == [("duplicate", 2)]
        assert outcomes(second, {**added, "role": "secondary"}) == [("rejected", "id_conflict")]
    finally:
        second.close()


def test_a_rejected_events_id_stays_free_i3(store_path):
    service = fresh(store_path)
    try:
        Harness(service).given(installed())
        early = ev("link_changed", id="l-1", system="se1", component="csta", up=True)
        assert outcomes(service, early) == [("rejected", "unknown_system")]
        Harness(service).given(system("se1", role="primary"))
        assert outcomes(service, early) == [("accepted", 3)]
    finally:
        service.close()


def test_a_dry_run_knows_the_stored_ids_without_saving_anything_i3(store_path, capsys, tmp_path):
    restart = ev("portal_restarted", id="r-1")
    with closing(open_service(store_path)) as first:
        Harness(first).given(installed(), restart)
    lines = tmp_path / "again.jsonl"
    lines.write_text('{"type":"portal_restarted","id":"r-1","network":"acme"}\n')

    code = main(["ingest", str(lines), "--dry-run", "--json", "--store", store_path])

    assert code == 0
    assert '"outcome":"duplicate","position":2' in capsys.readouterr().out


def test_writing_to_a_long_network_reads_its_last_snapshot_not_its_whole_log(store_path):
    with closing(open_service(store_path)) as first:
        Harness(first).given(installed(), *(ev("portal_restarted") for _ in range(1_050)))
    second = fresh(store_path)
    read: list[int] = []
    real = second.recorder.select_events

    def counted(*args: Any, **kwargs: Any) -> Any:
        rows = real(*args, **kwargs)
        read.append(len(rows))
        return rows

    second.recorder.select_events = counted  # type: ignore[method-assign]
    try:
        assert outcomes(second, ev("portal_restarted")) == [("accepted", 1_052)]
        # A snapshot and what followed it (at most its own size in bytes), not 1,051 events.
        assert sum(read) < 400
    finally:
        second.close()


def test_verify_reports_an_index_entry_missing_misplaced_or_extra_and_reindex_repairs_it(
    tmp_path, capsys
):
    store = str(tmp_path / "ctilink.db")
    with closing(open_service(store)) as service:
        Harness(service).given(installed(), *(ev("portal_restarted") for _ in range(6_000)))
    damages = {
        "missing": "DELETE FROM ctilink_ids WHERE event_id = (SELECT event_id FROM ctilink_ids "
        "WHERE position = 5100)",
        "misplaced": "UPDATE ctilink_ids SET position = 7 WHERE position = 5100",
        "extra": "INSERT INTO ctilink_ids VALUES ('acme', 'ghost', 1)",
    }
    for kind, damage in damages.items():
        with sqlite3.connect(store) as db:
            db.execute(damage)
        with closing(open_service(store)) as service:
            verdict = verify(service, "acme")
        assert verdict.problem is not None, kind
        assert verdict.problem.kind == "index"
        assert verdict.problem.position == (6_001 if kind == "extra" else 5_100)
        assert "ctilink reindex" in verdict.problem.message

        assert main(["reindex", "--store", store]) == 0
        with closing(open_service(store)) as service:
            assert verify(service, "acme").ok, kind
    assert "ids indexed       6,001" in capsys.readouterr().out


def test_a_store_written_before_the_index_gets_it_on_its_first_write_open(tmp_path, capsys):
    store = str(tmp_path / "ctilink.db")
    with closing(open_service(store)) as service:
        Harness(service).given(installed(), ev("portal_restarted", id="r-1"))
    with sqlite3.connect(store) as db:  # as an earlier ctilink left it
        db.execute("DROP TABLE ctilink_ids")
        db.execute("DROP TABLE ctilink_meta")

    reader = open_service(store, create=False)
    try:  # reading builds nothing and needs nothing built
        assert reader.head("acme") == 2
        assert verify(reader, "acme").ok
    finally:
        reader.close()
    writer = fresh(store)
    try:
        assert outcomes(writer, ev("portal_restarted", id="r-1")) == [("duplicate", 2)]
        assert verify(writer, "acme").ok
    finally:
        writer.close()
    err = capsys.readouterr().err
    assert "building the id index over 2 events" in err
    assert "id index built: 2 ids" in err


def test_two_writers_never_accept_one_id_twice_i3(store_path):
    first, second = fresh(store_path), fresh(store_path)
    try:
        Harness(first).given(installed())
        Harness(second).given(system("se1", role="primary"))
        restart = ev("portal_restarted", id="same")
        assert outcomes(first, restart) == [("accepted", 3)]
        # second holds acme at 2 and never saw "same": the store decides.
        assert outcomes(second, restart) == [("duplicate", 3)]
        assert second.head("acme") == 3
    finally:
        first.close()
        second.close()


def test_what_a_writer_holds_is_bounded_by_its_settings_not_by_the_logs(store_path, monkeypatch):
    monkeypatch.setenv("CTILINK_CACHED_NETWORKS", "2")
    service = fresh(store_path)
    try:
        early = {}
        for name in ("n1", "n2", "n3"):
            restarts = [ev("portal_restarted", network=name) for _ in range(20)]
            early[name] = restarts[0]
            Harness(service).given(installed(network=name), *restarts)
        assert len(service.writes.held) == 2  # ids are never held: each batch looks them up
        # What fell out of memory is still decided exactly, from the store.
        assert outcomes(service, early["n1"], ev("portal_restarted", network="n1")) == [
            ("duplicate", 2),
            ("accepted", 22),
        ]
    finally:
        service.close()


def test_a_cache_setting_that_is_not_a_number_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CTILINK_SNAPSHOT_EVERY", "lots")

    code = main(["ingest", "-", "--store", str(tmp_path / "s.db")])

    assert code == 2
    assert capsys.readouterr().err == (
        "ctilink: $CTILINK_SNAPSHOT_EVERY must be a whole number from 0, not 'lots'\n"
    )
