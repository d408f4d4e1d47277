"""`--at-time` and `--since TIME` through the time index, on both stores (SPEC §8, I4).

The index is written in each batch's transaction; its answers must be the
scan's for any times, in any batches (`at` going backwards too, I4, and events
without `at`, which count by when they were received). A store without it
(written before it, or its mark gone) is answered by the scan and gets it on
its next open for writing, or from `ctilink reindex`.
"""

from __future__ import annotations

import itertools
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctilink.adapters.cli.main import main
from ctilink.adapters.store.maintenance.verification import verify
from ctilink.adapters.store.persistence.times import TIMES_COMPLETE, micros
from ctilink.adapters.store.queries import log_reader
from ctilink.adapters.store.selection import open_service
from ctilink.domain.application import NetworkService
from ctilink.domain.errors import DamagedLog
from ctilink.projections.changes import position_at_time
from tests.support import Harness, ev, installed

START = datetime(2024, 3, 4, tzinfo=UTC)
_networks = itertools.count()

# Per event: minutes after START, or None for no `at` (it counts by when it was received).
offsets = st.lists(st.one_of(st.none(), st.integers(0, 20)), min_size=1, max_size=25)


def at(minute: int | None) -> dict[str, Any]:
    """The event's `at` field for that minute, or none."""
    return {} if minute is None else {"at": (START + timedelta(minutes=minute)).isoformat()}


def scan_at(service: NetworkService, network: str, moment: datetime) -> int | None:
    """The answer of reading the log from its end, as before the index."""
    return position_at_time(log_reader.recorded_times(service, network), moment)


def scan_before(service: NetworkService, network: str, moment: datetime) -> int | None:
    """The last position recorded strictly before the moment, read from the end."""
    times = log_reader.recorded_times(service, network)
    return next((p for p, t in times if t < moment), None)


def moments(service: NetworkService, network: str) -> list[datetime]:
    """Every recorded time, a microsecond either side, and far before and after."""
    times = [t for _, t in log_reader.recorded_times(service, network)]
    tick = timedelta(microseconds=1)
    return [
        START - timedelta(days=1),
        *times,
        *(t - tick for t in times),
        *(t + tick for t in times),
        datetime(9999, 1, 1, tzinfo=UTC),
    ]


@pytest.fixture(scope="module")
def shared(new_store) -> Any:  # type: ignore[no-untyped-def]
    """One store for all examples (each uses a network of its own)."""
    with closing(open_service(new_store())) as service:
        yield service


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(log=offsets, cuts=st.lists(st.integers(1, 24), max_size=4))
def test_the_index_answers_every_moment_as_the_scan_for_any_times_and_batches_i4(
    shared: NetworkService, log: list[int | None], cuts: list[int]
) -> None:
    network = f"t{next(_networks)}"
    events = [installed(network=network, **at(log[0]))]
    events += [ev("portal_restarted", network=network, **at(m)) for m in log[1:]]
    harness = Harness(shared)
    bounds = sorted({0, len(events), *(c for c in cuts if c < len(events))})
    for low, high in itertools.pairwise(bounds):  # the log in batches
        harness.given(*events[low:high])

    assert shared.recorder.index_complete(TIMES_COMPLETE)  # type: ignore[attr-defined]
    for moment in moments(shared, network):
        assert log_reader.position_recorded_by(shared, network, moment) == scan_at(
            shared, network, moment
        ), moment
        assert log_reader.position_recorded_by(shared, network, moment, before=True) == scan_before(
            shared, network, moment
        ), moment


def test_a_complete_index_answers_without_reading_the_log(
    service: NetworkService, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = Harness(service).given(installed(at="2024-03-04T10:00:00Z"))
    net.given(*(ev("portal_restarted", at=f"2024-03-04T11:{m:02d}:00Z") for m in range(50)))

    def scanned(*_: Any) -> Any:
        raise AssertionError("the log was scanned")

    monkeypatch.setattr(log_reader, "recorded_times", scanned)
    early = datetime(2024, 3, 4, 9, tzinfo=UTC)
    assert log_reader.position_recorded_by(service, "acme", early) is None  # no scan either
    assert log_reader.position_recorded_by(service, "acme", early.replace(hour=11)) == 2


def test_a_store_without_the_index_is_answered_by_the_scan_and_rebuilt_on_write_open(
    store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with closing(open_service(store_path)) as service:
        Harness(service).given(
            installed(at="2024-03-04T10:00:00Z"),
            ev("portal_restarted", at="2024-03-04T10:30:00Z"),
            ev("portal_restarted", at="2024-03-04T10:10:00Z"),  # at goes back (I4)
        )
        recorder: Any = service.recorder
        # As a store of an earlier ctilink: no mark, and an index that is wrong.
        recorder.execute(f"DELETE FROM {recorder.table('ctilink_meta')} WHERE key = 'times'", ())
        recorder.execute(f"DELETE FROM {recorder.table('ctilink_times')}", ())
        moment = datetime(2024, 3, 4, 10, 20, tzinfo=UTC)
        assert log_reader.position_recorded_by(service, "acme", moment) == 3  # by the scan
    capsys.readouterr()
    with closing(open_service(store_path)) as service:  # a write open builds it
        assert service.recorder.index_complete(TIMES_COMPLETE)  # type: ignore[attr-defined]
        assert log_reader.position_recorded_by(service, "acme", moment) == 3
        assert log_reader.position_recorded_by(service, "acme", moment, before=True) == 3
    assert "time index built: 3 times" in capsys.readouterr().err


def test_reindex_builds_the_time_index_again(
    store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with closing(open_service(store_path)) as service:
        Harness(service).given(installed(at="2024-03-04T10:00:00Z"))
        recorder: Any = service.recorder
        recorder.execute(f"DELETE FROM {recorder.table('ctilink_times')}", ())
    assert main(["reindex", "--store", store_path]) == 0
    with closing(open_service(store_path, create=False)) as service:
        moment = datetime(2024, 3, 4, 10, tzinfo=UTC)
        assert log_reader.position_recorded_by(service, "acme", moment) == 1
    assert "time index built: 1 times" in capsys.readouterr().err


TEN_THIRTY = micros(datetime(2024, 3, 4, 10, 30, tzinfo=UTC))


@pytest.mark.parametrize(
    ("tamper", "position", "says"),
    [
        ("DELETE FROM {t} WHERE position = 4", 4, "lacks position 4"),
        ("UPDATE {t} SET time = time + 1 WHERE position = 4", 4, "holds position 4 at another"),
        (f"INSERT INTO {{t}} VALUES ('acme', {TEN_THIRTY}, 3)", 3, "position 3, which cannot"),
    ],
)
def test_verify_finds_a_time_index_that_differs_from_the_log_and_reindex_mends_it(
    store_path: str, tamper: str, position: int, says: str
) -> None:
    with closing(open_service(store_path)) as service:
        Harness(service).given(
            installed(at="2024-03-04T10:00:00Z"),
            ev("portal_restarted", at="2024-03-04T10:20:00Z"),
            ev("portal_restarted", at="2024-03-04T10:30:00Z"),
            ev("portal_restarted", at="2024-03-04T10:10:00Z"),  # back in time: 2 and 3 go (I4)
            ev("portal_restarted", at="2024-03-04T10:40:00Z"),
        )
        assert verify(service, "acme").ok
        recorder: Any = service.recorder
        assert [p for _, p in recorder.time_entries("acme")] == [5, 4, 1]
        recorder.execute(tamper.format(t=recorder.table("ctilink_times")), ())
        verdict = verify(service, "acme")
    assert verdict.problem is not None
    assert (verdict.problem.kind, verdict.problem.position) == ("index", position), verdict
    assert says in verdict.problem.message, verdict.problem.message
    assert "ctilink reindex" in verdict.problem.message
    assert main(["reindex", "--store", store_path]) == 0
    with closing(open_service(store_path, create=False)) as service:
        assert verify(service, "acme").ok


def test_a_log_that_went_on_without_the_index_is_answered_by_the_scan(store_path: str) -> None:
    """As when an earlier ctilink (no time index) wrote after this one: never a stale answer."""
    with closing(open_service(store_path)) as service:
        Harness(service).given(
            installed(at="2024-03-04T10:00:00Z"), ev("portal_restarted", at="2024-03-04T10:30:00Z")
        )
        recorder: Any = service.recorder
        before_it = datetime(2024, 3, 4, 10, 15, tzinfo=UTC)
        assert recorder.position_by_time("acme", before_it, before=False) == (1, True)
        # Position 3 at 10:10, written with no index row (and position 2's entry kept).
        Harness(service).given(ev("portal_restarted", at="2024-03-04T10:10:00Z"))
        recorder.execute(f"DELETE FROM {recorder.table('ctilink_times')} WHERE position = 3", ())
        recorder.execute(
            f"INSERT INTO {recorder.table('ctilink_times')} VALUES ('acme', {TEN_THIRTY}, 2)", ()
        )
        assert recorder.position_by_time("acme", before_it, before=False) == (1, False)
        assert log_reader.position_recorded_by(service, "acme", before_it) == 3  # the scan's


def test_a_time_table_dropped_by_hand_is_built_again_on_write_open(
    store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with closing(open_service(store_path)) as service:
        Harness(service).given(installed(at="2024-03-04T10:00:00Z"))
        recorder: Any = service.recorder
        recorder.execute(f"DROP TABLE {recorder.table('ctilink_times')}", ())
    capsys.readouterr()
    with closing(open_service(store_path)) as service:  # the mark alone is no proof
        moment = datetime(2024, 3, 4, 10, 5, tzinfo=UTC)
        assert service.recorder.position_by_time("acme", moment, before=False) == (1, True)  # type: ignore[attr-defined]
    assert "time index built: 1 times" in capsys.readouterr().err


def test_a_network_with_an_unreadable_row_gets_no_entries_so_its_damage_is_met(
    store_path: str,
) -> None:
    with closing(open_service(store_path)) as service:
        Harness(service).given(
            installed(at="2024-03-04T10:00:00Z"),
            ev("portal_restarted", at="2024-03-04T10:10:00Z"),
            ev("portal_restarted", at="2024-03-04T10:20:00Z"),
        )
        recorder: Any = service.recorder
        q = recorder.mark
        recorder.execute(
            f"UPDATE {recorder.events_sql} SET state = {q} "
            f"WHERE originator_id = 'acme' AND originator_version = 3",
            (b"not a record",),
        )
    assert main(["reindex", "--store", store_path]) == 0
    with closing(open_service(store_path, create=False)) as service:
        with pytest.raises(DamagedLog) as damage:
            log_reader.position_recorded_by(service, "acme", datetime(2024, 3, 4, 11, tzinfo=UTC))
        assert damage.value.position == 3
