"""The network index: one line per network, written with its events, read by the listings.

Every line must be what the network's log folds to (mode M3–M5, component rows
C1–C3), on every store, after any batch; the listings page and filter it.
"""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import uuid
from collections import Counter
from contextlib import closing
from typing import Any

import msgspec
import psycopg
import pytest

from ctilink.adapters.cli.main import main
from ctilink.adapters.store.maintenance.index_builds import (
    finish_networks_build,
    put_networks,
    start_networks_build,
)
from ctilink.adapters.store.maintenance.verification import strays, verify
from ctilink.adapters.store.queries.listing import folded_line, network_lines
from ctilink.adapters.store.queries.log import heads
from ctilink.adapters.store.queries.networks import (
    Filters,
    indexed_names,
    network_line,
    network_totals,
)
from ctilink.adapters.store.selection import open_service
from ctilink.domain.application import NetworkService
from ctilink.projections.status import status
from tests.scenarios import order_dependent_events
from tests.stores import SERVER
from tests.support import ROOT, Harness, decode, ev, installed, system


def ingest(service: NetworkService, events: list[dict[str, Any]], batch: int = 97) -> None:
    """Ingest in batches of `batch`, whatever the outcomes."""
    for start in range(0, len(events), batch):
        service.ingest([decode(e) for e in events[start : start + batch]])


def lines_agree_with_folds(service: NetworkService) -> None:
    """Every network's index line is its log folded (compared with a fresh fold)."""
    recorder: Any = service.recorder
    names = [name for name, _ in heads(recorder)]
    assert names, "nothing was accepted"
    for name in names:
        assert network_line(recorder, name) == folded_line(service, name), name
    assert sorted(indexed_names(recorder)) == names


def test_every_line_is_its_network_folded_after_any_batch_m3_m5_c1_c3(store_path):
    events = order_dependent_events(seed=11, count=2_500)
    with closing(open_service(store_path)) as service:
        for start in range(0, len(events), 500):
            ingest(service, events[start : start + 500])
            lines_agree_with_folds(service)
        # The counts are those of the status document's rows (C1-C3).
        for line in network_lines(service, Filters())[0]:
            state, position = service.state_at(line.network)
            counted = Counter(row.state for row in status(state, position).components)
            assert (line.available, line.unavailable, line.not_configured) == (
                counted["available"],
                counted["unavailable"],
                counted["not_configured"],
            )
            assert line.position == position


def test_the_line_shows_the_mode_and_a_restart_pending_m3_m4(store_path):
    with closing(open_service(store_path)) as service:
        Harness(service).given(
            installed(),
            system("se-primary", "primary"),
            ev("central_cti_link_set", enabled=False, at="2026-01-02T03:04:05+01:00"),
        )
        (line,), _ = network_lines(service, Filters())
        mode = status(*service.state_at("acme")).mode
        assert (line.setting, line.configured, line.effective) == (
            mode.setting,
            mode.configured,
            mode.effective,
        )
        assert line.restart_pending and line.restart_pending == mode.restart_pending
        assert line.recorded.isoformat() == "2026-01-02T02:04:05+00:00"  # the event's `at`

        Harness(service).given(ev("portal_restarted"))
        (line,), _ = network_lines(service, Filters())
        assert not line.restart_pending and line.position == 4


def many_networks(service: NetworkService, names: list[str]) -> None:
    """Install each network, with a restart pending on every third."""
    events = []
    for n, name in enumerate(names):
        events.append(installed(network=name))
        if n % 3 == 0:
            events.append(ev("central_cti_link_set", network=name, enabled=False))
    ingest(service, events, batch=200)


NAMES = ["B", "a", "a-1", "a_1", "a-10", "ab", "Z9", "_x", "-y", "0", "A", "b", "zz", "a1"]


def test_pages_in_name_order_join_to_the_whole_listing(store_path):
    with closing(open_service(store_path)) as service:
        many_networks(service, NAMES * 1 + [f"n{i:03d}" for i in range(300)])
        whole, _ = network_lines(service, Filters())
        names = [line.network for line in whole]
        assert names == sorted(names)  # code point order, as Python sorts: on PostgreSQL too
        for limit in (1, 7, 1000):
            paged, after = [], None
            while page := network_lines(service, Filters(after=after, limit=limit))[0]:
                assert len(page) <= limit
                paged += page
                after = page[-1].network
            assert paged == whole


@pytest.mark.parametrize(
    "filters",
    [
        Filters(effective="central"),
        Filters(effective="manual"),
        Filters(restart_pending=True),
        Filters(restart_pending=False),
        Filters(name_prefix="a"),
        Filters(name_prefix="a-1"),
        Filters(name_prefix="A"),  # names differ in case: a prefix does too
        Filters(name_prefix="a", restart_pending=True, limit=2, after="a-1"),
    ],
    ids=repr,
)
def test_filters_pass_exactly_the_networks_they_name(store_path, filters):
    with closing(open_service(store_path)) as service:
        many_networks(service, NAMES)
        Harness(service).given(
            ev("central_cti_link_set", network="b", enabled=False),
            ev("portal_restarted", network="b"),
        )
        whole, _ = network_lines(service, Filters())
        expected = [
            line
            for line in whole
            if filters.admits(line) and (filters.after is None or line.network > filters.after)
        ][: filters.limit]
        assert network_lines(service, filters)[0] == expected
        assert expected or filters.limit, "each filter must pass something"


def test_a_store_from_before_the_index_gets_it_on_its_first_write_open(tmp_path, capsys):
    store = str(tmp_path / "ctilink.db")
    with closing(open_service(store)) as service:
        many_networks(service, NAMES)
        before, _ = network_lines(service, Filters())
    with sqlite3.connect(store) as db:  # as an earlier ctilink left it
        db.execute("DROP TABLE ctilink_networks")
        db.execute("DELETE FROM ctilink_meta WHERE key = 'networks'")

    # Read only: the listing folds the logs, the same answer.
    assert main(["networks", "--json", "--store", store]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [n["network"] for n in listed] == [line.network for line in before]

    with closing(open_service(store)) as service:
        assert "building the network index over 14 networks" in capsys.readouterr().err
        assert network_lines(service, Filters())[0] == before
        assert service.recorder.index_complete("networks")


def test_verify_finds_a_line_that_differs_or_names_no_network_and_reindex_repairs_it(
    tmp_path, capsys
):
    store = str(tmp_path / "ctilink.db")
    with closing(open_service(store)) as service:
        many_networks(service, ["acme", "globex"])
    with sqlite3.connect(store) as db:
        db.execute("UPDATE ctilink_networks SET effective = 'manual' WHERE network = 'acme'")
        db.execute(
            "INSERT INTO ctilink_networks SELECT 'ghost', position, setting, configured, "
            "effective, restart_pending, converted, available, unavailable, not_configured, "
            "recorded FROM ctilink_networks WHERE network = 'globex'"
        )
    with closing(open_service(store)) as service:
        verdict = verify(service, "acme")
        assert verdict.problem is not None and verdict.problem.kind == "index"
        assert "effective 'manual', the log 'central'" in verdict.problem.message
        (stray,) = strays(service, ["acme", "globex"])
        assert stray.network == "ghost" and not stray.ok

    assert main(["verify", "--store", store]) == 1
    assert main(["reindex", "--json", "--store", store]) == 0
    rebuilt = msgspec.json.decode(capsys.readouterr().out.splitlines()[-1])
    assert (rebuilt["networks"], rebuilt["damaged"]) == (2, 0)
    assert main(["verify", "--store", store]) == 0


def test_networks_filters_as_a_process_and_refuses_a_bad_filter(tmp_path):
    store = str(tmp_path / "ctilink.db")
    with closing(open_service(store)) as service:
        many_networks(service, NAMES)
    ctilink = [str(ROOT / ".venv" / "bin" / "ctilink"), "networks", "--store", store]

    done = subprocess.run(
        [*ctilink, "--json", "--restart-pending", "--name-prefix", "Z"],
        capture_output=True,
        check=True,
    )
    # NAMES[n] has a restart pending for n % 3 == 0: Z9 and not zz (a prefix has a case).
    assert [n["network"] for n in json.loads(done.stdout)] == ["Z9"]
    done = subprocess.run([*ctilink, "--effective", "central"], capture_output=True, check=True)
    shown = done.stdout.decode().splitlines()
    assert shown[0].split() == ["network", "position", "effective"]
    assert [row.split()[0] for row in shown[2:]] == sorted(NAMES)  # effective until restart
    done = subprocess.run([*ctilink, "--effective", "manual"], capture_output=True, check=True)
    assert done.stdout.decode().splitlines()[2:] == []

    for bad, said in [
        (["--effective", "centrall"], "invalid choice: 'centrall'"),
        (["--name-prefix", "a b"], "'a b' is not the start of a network name"),
        (["--name-prefix", "x" * 65], "is not the start of a network name"),
    ]:
        done = subprocess.run([*ctilink, *bad], capture_output=True, check=False)
        assert done.returncode == 2 and said in done.stderr.decode(), bad
        assert b"Traceback" not in done.stderr


def test_two_writers_leave_every_line_at_its_networks_last_position(store_path):
    events = order_dependent_events(seed=3, count=1_500, networks=6)
    rng = random.Random(3)
    first, second = open_service(store_path), open_service(store_path)
    try:
        for start in range(0, len(events), 50):
            rng.choice((first, second)).ingest([decode(e) for e in events[start : start + 50]])
        lines_agree_with_folds(first)
    finally:
        first.close()
        second.close()


def test_pages_follow_code_point_order_on_a_postgresql_database_of_a_natural_locale(postgres):
    # en-US sorts "_x -y a A B"; pages by name must not change with the database's locale.
    postgres.new_store()  # skips (or fails under CI) without PostgreSQL
    database = f"ctilink_icu_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(
            f'CREATE DATABASE "{database}" TEMPLATE template0 LOCALE_PROVIDER icu '
            "ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
        )
    try:
        with closing(open_service(f"{SERVER}/{database}")) as service:
            many_networks(service, NAMES)
            whole = [line.network for line in network_lines(service, Filters())[0]]
            assert whole == sorted(NAMES)
            paged, after = [], None
            while page := network_lines(service, Filters(after=after, limit=3))[0]:
                paged += [line.network for line in page]
                after = page[-1].network
            assert paged == whole
    finally:
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')


def test_of_two_builds_at_once_only_the_later_completes_the_index_and_a_dead_one_none(store_path):
    with closing(open_service(store_path)) as service:
        many_networks(service, NAMES)
        recorder: Any = service.recorder
        whole, _ = network_lines(service, Filters())

        start_networks_build(recorder, "first")
        put_networks(recorder, whole[:5])
        start_networks_build(recorder, "second")  # empties what the first wrote
        assert not finish_networks_build(recorder, "first")
        assert not recorder.networks_complete()  # listings fold meanwhile: still whole
        assert network_lines(service, Filters())[0] == whole
        # The second build died here: nothing marks the index complete, and the
        # next open for writing builds it again.
    with closing(open_service(store_path)) as service:
        assert service.recorder.networks_complete()
        assert network_lines(service, Filters())[0] == whole


def test_a_network_that_cannot_be_folded_at_a_build_is_still_named_by_networks(tmp_path):
    store = str(tmp_path / "ctilink.db")
    with closing(open_service(store)) as service:
        many_networks(service, ["acme", "globex", "initech"])
    with sqlite3.connect(store) as db:
        db.execute(
            "UPDATE stored_events SET state = X'00ff' "
            "WHERE originator_id = 'globex' AND originator_version = 1"
        )
    assert main(["reindex", "--store", store]) == 0

    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "ctilink"), "networks", "--json", "--store", store],
        capture_output=True,
        check=False,
    )

    assert done.returncode == 2
    assert [n["network"] for n in json.loads(done.stdout)] == ["acme", "initech"]
    (said,) = done.stderr.decode().splitlines()
    assert said.startswith("ctilink: network 'globex' cannot be read at position 1")


HOSTILE_ROWS = {
    "count-infinite": "UPDATE ctilink_networks SET available = 1e999 WHERE network = 'b'",
    "flag-two": "UPDATE ctilink_networks SET restart_pending = 2 WHERE network = 'b'",
    "position-fraction": "UPDATE ctilink_networks SET position = 1.5 WHERE network = 'b'",
    "count-negative": "UPDATE ctilink_networks SET unavailable = -1 WHERE network = 'b'",
    "time-junk": "UPDATE ctilink_networks SET recorded = 'junk' WHERE network = 'b'",
    "time-naive": "UPDATE ctilink_networks SET recorded = '2026-01-01T00:00' WHERE network = 'b'",
    "name-blob": "UPDATE ctilink_networks SET network = X'616263' WHERE network = 'b'",
    "name-invalid": "UPDATE ctilink_networks SET network = '~~ bad' WHERE network = 'b'",
}


@pytest.mark.parametrize("damage", sorted(HOSTILE_ROWS))
def test_a_hostile_index_row_is_one_line_found_by_verify_and_repaired_by_reindex(tmp_path, damage):
    store = str(tmp_path / "ctilink.db")
    with closing(open_service(store)) as service:
        many_networks(service, ["a", "b", "c"])
    with sqlite3.connect(store) as db:
        db.execute(HOSTILE_ROWS[damage])
    ctilink = str(ROOT / ".venv" / "bin" / "ctilink")

    listed = subprocess.run([ctilink, "networks", "--store", store], capture_output=True)
    (said,) = listed.stderr.decode().splitlines()
    assert listed.returncode == 2 and "ctilink reindex" in said, said
    checked = subprocess.run([ctilink, "verify", "--store", store], capture_output=True)
    assert checked.returncode == 1 and b"(index)" in checked.stdout, checked
    assert b"Traceback" not in listed.stderr + checked.stderr

    assert main(["reindex", "--store", store]) == 0
    assert main(["verify", "--store", store]) == 0


def test_an_index_table_dropped_by_hand_is_folded_when_reading_and_rebuilt_when_writing(
    tmp_path, capsys
):
    store = str(tmp_path / "ctilink.db")
    with closing(open_service(store)) as service:
        many_networks(service, NAMES)
        whole, _ = network_lines(service, Filters())
    with sqlite3.connect(store) as db:
        db.execute("DROP TABLE ctilink_networks")  # its mark in ctilink_meta stays

    assert main(["networks", "--json", "--store", store]) == 0
    assert [n["network"] for n in json.loads(capsys.readouterr().out)] == sorted(NAMES)
    with closing(open_service(store)) as service:
        assert network_lines(service, Filters())[0] == whole
    assert "building the network index" in capsys.readouterr().err


def test_the_totals_per_mode_count_every_network_and_row_on_both_stores(store_path):
    events = order_dependent_events(seed=5, count=800)
    with closing(open_service(store_path)) as service:
        ingest(service, events)
        lines = network_lines(service, Filters())[0]
        totals = network_totals(service.recorder)

    expected: dict[str, list[int]] = {}
    for line in lines:
        row = expected.setdefault(line.effective, [0, 0, 0, 0, 0])
        for n, value in enumerate(
            (1, line.available, line.unavailable, line.not_configured, line.restart_pending)
        ):
            row[n] += int(value)
    assert {mode: list(rest) for mode, *rest in totals} == expected
    assert sum(row[0] for row in expected.values()) == len(lines) > 1
