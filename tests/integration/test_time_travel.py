"""`status` and `directory` with `--at-time`: the answer as of a moment (SPEC §8, I4).

The position asked for is the highest one whose recorded time (its `at`, else
when it was received) is at or before the moment; `at` may go backwards in a
log (I4), so a later position with an earlier time wins. The commands run in
process (ctilink.adapters.cli.main.main) on a store the harness fills.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ctilink.adapters.cli.main import main
from ctilink.adapters.store.queries import log_reader
from ctilink.projections.changes import position_at_time
from tests.support import Harness, cli, ev, installed, system


def doc(capsys: pytest.CaptureFixture[str], store: str, *args: str) -> dict[str, Any]:
    """A `--json` answer that must succeed quietly."""
    rc, out, err = cli(capsys, *args, "--json", "--store", store)
    assert (rc, err) == (0, ""), err
    return json.loads(out)


def t(minute: int, offset: str = "Z") -> str:
    """10:MM on 2024-03-04, in RFC 3339."""
    return f"2024-03-04T10:{minute:02d}:00{offset}"


@pytest.fixture
def timeline(net: Harness) -> Harness:
    """acme: positions 1-4 at 10:00, 10:10, 10:20, 10:30."""
    return net.given(
        installed(at=t(0)),
        system("se-primary", role="primary", at=t(10)),
        ev("link_changed", system="se-primary", component="csta", up=True, at=t(20)),
        ev("link_changed", system="se-primary", component="csta", up=False, at=t(30)),
    )


@pytest.mark.parametrize(
    ("moment", "position"),
    [
        (t(0), 1),  # at the first event itself: included
        (t(15), 2),  # between two events: the earlier one
        (t(20), 3),  # exactly at an event: included
        (t(59), 4),  # after every event: the last position
        ("2024-03-04T12:25:00+02:00", 3),  # an offset names the same instant as 10:25Z
    ],
)
def test_status_at_time_is_the_status_right_after_the_last_event_recorded_by_then_s8(
    timeline: Harness,
    store_path: str,
    capsys: pytest.CaptureFixture[str],
    moment: str,
    position: int,
) -> None:
    got = doc(capsys, store_path, "status", "acme", "--at-time", moment)

    assert got["position"] == position
    assert got == doc(capsys, store_path, "status", "acme", "--at", str(position))


def test_directory_at_time_is_the_directory_as_of_that_position_s8(
    net: Harness, store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    net.given(
        installed(at=t(0)),
        system("se-primary", role="primary", at=t(1)),
        ev(
            "directory_changed",
            system="se-primary",
            entries=[{"name": "Reception", "number": "200"}],
            at=t(2),
        ),
        ev("directory_changed", system="se-primary", entries=[], at=t(3)),
    )

    got = doc(capsys, store_path, "directory", "acme", "--at-time", t(2))

    assert got["position"] == 3
    assert got["system"] == [
        {"name": "Reception", "number": "200", "system": "se-primary", "via": "se-primary"}
    ]
    assert doc(capsys, store_path, "directory", "acme", "--at-time", t(3))["system"] == []


@pytest.mark.parametrize(
    ("moment", "position"),
    [
        (t(5), 1),  # only position 1 is recorded by 10:05
        (t(12), 3),  # position 3 (10:10) is the highest recorded by 10:12, though 2 is not
        (t(25), 3),
        (t(30), 4),
    ],
)
def test_at_time_takes_the_highest_position_recorded_by_then_when_at_goes_backwards_i4(
    net: Harness, store_path: str, capsys: pytest.CaptureFixture[str], moment: str, position: int
) -> None:
    # Position 3 was reported late: its `at` is before position 2's. I4: never reordered.
    net.given(
        installed(at=t(0)),
        system("se-primary", role="primary", at=t(20)),
        system("exp-1", at=t(10)),
        system("exp-2", at=t(30)),
    )

    got = doc(capsys, store_path, "status", "acme", "--at-time", moment)

    assert got["position"] == position
    assert got == doc(capsys, store_path, "status", "acme", "--at", str(position))


def test_at_time_uses_the_receive_time_of_an_event_without_at(
    net: Harness, store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    net.given(installed())  # no `at`: recorded when received, i.e. now
    net.given(system("exp-1", at="2100-01-01T00:00:00Z"))  # says it happens later
    after = datetime.now(UTC) + timedelta(seconds=1)

    assert (
        doc(capsys, store_path, "status", "acme", "--at-time", after.isoformat())["position"] == 1
    )
    assert (
        doc(capsys, store_path, "status", "acme", "--at-time", "2100-01-01T00:00:00Z")["position"]
        == 2
    )
    rc, out, err = cli(
        capsys, "status", "acme", "--at-time", before.isoformat(), "--store", store_path
    )
    assert (rc, out) == (2, "")
    assert "no event recorded at or before" in err


@pytest.mark.parametrize("command", ["status", "directory"])
def test_at_time_before_the_first_event_is_a_one_line_error(
    timeline: Harness, store_path: str, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    rc, out, err = cli(
        capsys, command, "acme", "--at-time", "2024-03-04T09:59:59Z", "--store", store_path
    )

    assert (rc, out) == (2, "")
    assert err == (
        "ctilink: network 'acme' has no event recorded at or before 2024-03-04T09:59:59+00:00\n"
    )


def test_at_time_of_an_unknown_network_is_a_one_line_error(
    timeline: Harness, store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, err = cli(capsys, "status", "nope", "--at-time", t(30), "--store", store_path)

    assert (rc, out, err) == (2, "", "ctilink: unknown network 'nope'\n")


@pytest.mark.parametrize(
    "args",
    [
        ["--at", "2", "--at-time", t(30)],  # mutually exclusive
        ["--at-time", "2024-03-04T10:30:00"],  # no UTC offset (SPEC §2: RFC 3339)
        ["--at-time", "yesterday"],
    ],
    ids=["both", "no-offset", "not-a-time"],
)
def test_at_time_usage_errors_exit_2(
    timeline: Harness, store_path: str, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["status", "acme", *args, "--store", store_path])

    out, err = capsys.readouterr()
    assert exit_.value.code == 2
    assert out == ""
    assert "not allowed with" in err or "not an RFC 3339 time" in err


def test_at_without_at_time_is_unchanged_s8(
    timeline: Harness, store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert doc(capsys, store_path, "status", "acme", "--at", "2")["position"] == 2
    assert doc(capsys, store_path, "status", "acme")["position"] == 4


def test_recorded_times_page_through_the_whole_log_newest_first(
    timeline: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_reader, "PAGE", 3)  # 4 positions: two pages, the second short

    times = list(log_reader.recorded_times(timeline.service, "acme"))

    assert [p for p, _ in times] == [4, 3, 2, 1]
    assert [w.isoformat() for _, w in times] == [
        datetime.fromisoformat(t(m)).isoformat() for m in (30, 20, 10, 0)
    ]


# --- the pure lookup ------------------------------------------------------------


def when(minute: int) -> datetime:
    return datetime.fromisoformat(t(minute))


def test_position_at_time_is_the_first_position_met_from_the_end_recorded_by_then() -> None:
    newest_first = [(4, when(40)), (3, when(10)), (2, when(30)), (1, when(0))]

    assert position_at_time(newest_first, when(35)) == 3
    assert position_at_time(newest_first, when(40)) == 4
    assert position_at_time(newest_first, when(5)) == 1
    assert position_at_time(newest_first, when(0) - timedelta(microseconds=1)) is None
    assert position_at_time([], when(0)) is None


def test_position_at_time_refuses_positions_in_log_order() -> None:
    with pytest.raises(ValueError, match="from the last one down"):
        position_at_time([(1, when(50)), (2, when(50))], when(0))
