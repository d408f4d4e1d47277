"""The habits a user brings to a command line (issue 24), tried on `ctilink` as a process,
on SQLite and PostgreSQL: `--version`, `--json` only where it means something, `log`'s
ranges, filters, pages and `--follow`, `rejections`' filters and network column, `verify`'s
summary, `status` naming the event that made its position, and hostile values for each.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from ctilink.adapters.cli.main import COMMANDS, parser
from tests.docs.test_docs_commands import options_of
from tests.integration.test_cli import CTILINK, SCENARIO, Run, assert_one_line_error, ctilink

EVENTS = [json.loads(line) for line in SCENARIO.read_text().splitlines() if line.strip()]
ACME = [e for e in EVENTS if e["network"] == "acme"]


@pytest.fixture(scope="module")
def store(new_store) -> str:  # type: ignore[no-untyped-def]
    """The example scenario, ingested once for the module's read-only questions."""
    path = new_store()
    assert ctilink("ingest", str(SCENARIO), store=path).rc == 0
    return path


def lines_of(run: Run) -> list[dict[str, Any]]:
    """A successful, quiet run's JSON lines."""
    assert (run.rc, run.err) == (0, ""), run
    return run.json_lines()


def positions(run: Run) -> list[int]:
    """The positions a `log --json` run printed."""
    return [entry["position"] for entry in lines_of(run)]


def logged(store: str, network: str, *args: str) -> list[int]:
    """The positions `log NETWORK ARGS --json` prints."""
    return positions(ctilink("log", network, *args, "--json", store=store))


# --- --version, and options only where they mean something -------------------------------


def test_version_prints_ctilink_and_the_installed_version_and_exits_0() -> None:
    run = ctilink("--version")

    assert (run.rc, run.out, run.err) == (0, f"ctilink {version('ctilink')}\n", "")


# The commands whose output --json changes; every other command refuses it.
PRINTS_JSON = {
    "ingest", "status", "directory", "log", "networks", "rejections", "replay", "audit",
    "diff", "verify", "head", "reindex", "diagram", "streams", "out", "migrate", "preview",
}  # fmt: skip
# (streams and out find the store's embedded nats-server when no --nats is given)
NO_STORE = {"diagram", "nkey", "schema"}


def test_json_is_an_option_exactly_of_the_commands_that_print_results() -> None:
    takes_json = {name for name in COMMANDS if "--json" in options_of(name)}
    takes_store = {name for name in COMMANDS if "--store" in options_of(name)}

    assert takes_json == PRINTS_JSON
    assert takes_store == set(COMMANDS) - NO_STORE
    assert "--version" in {f for a in parser([])._actions for f in a.option_strings}


@pytest.mark.parametrize(
    "args",
    [
        ("serve", "--json"),
        ("publish", "--json"),
        ("web", "--json"),
        ("export", "acme", "--json"),
        ("nkey", "seed.nk", "--json"),
        ("schema", "--store", "x.db"),
        ("diagram", "--store", "x.db"),
    ],
)
def test_an_option_that_would_mean_nothing_is_a_one_line_usage_error(
    args: tuple[str, ...], tmp_path: Path
) -> None:
    run = ctilink(*args, cwd=tmp_path)

    assert_one_line_error(run)
    assert "unrecognized arguments" in run.err
    assert list(tmp_path.iterdir()) == []  # nothing was started or written


# --- log: types, ranges of positions and times, pages ---------------------------------------


def test_log_type_keeps_the_events_of_the_types_named(store: str) -> None:
    run = ctilink("log", "acme", "--type", "failover", "--type", "failback", "--json", store=store)

    found = lines_of(run)
    wanted = [e["id"] for e in ACME if e["type"] in ("failover", "failback")]
    assert [entry["event"]["id"] for entry in found] == wanted == ["acme-021", "acme-024"]
    assert [entry["position"] for entry in found] == [21, 24]


def test_log_since_and_until_positions_are_an_inclusive_range(store: str) -> None:
    assert logged(store, "acme", "--since", "20") == list(range(20, 28))
    assert logged(store, "acme", "--until", "3") == [1, 2, 3]
    assert logged(store, "acme", "--since", "5", "--until", "7") == [5, 6, 7]


def test_log_limit_pages_through_the_log_with_since(store: str) -> None:
    pages = [logged(store, "acme", "--since", str(start), "--limit", "10") for start in (1, 11, 21)]

    assert pages == [list(range(1, 11)), list(range(11, 21)), list(range(21, 28))]
    # The limit counts what the filter kept.
    assert logged(store, "acme", "--type", "link_changed", "--limit", "2") == [6, 7]


@pytest.mark.parametrize(
    "moment",
    [
        "2024-03-04T08:06:00Z",
        "2024-03-04T10:13:00Z",
        "2024-03-04T12:13:00+02:00",
        "2030-01-01T00:00:00Z",
    ],
)
def test_log_until_a_time_ends_where_status_at_time_stands(store: str, moment: str) -> None:
    found = logged(store, "acme", "--until", moment)
    status = json.loads(ctilink("status", "acme", "--at-time", moment, "--json", store=store).out)

    assert found == list(range(1, status["position"] + 1))


def test_log_since_a_time_starts_after_the_last_event_recorded_before_it(store: str) -> None:
    run = ctilink("log", "acme", "--since", "2024-03-04T10:13:00Z", "--json", store=store)
    found = lines_of(run)

    assert [entry["position"] for entry in found] == list(range(21, 28))
    assert found[0]["at"] == "2024-03-04T10:13:00Z"  # recorded at T itself: kept


def test_a_range_that_holds_nothing_prints_nothing_and_exits_0(store: str) -> None:
    before_all = ctilink("log", "acme", "--until", "2000-01-01T00:00:00Z", "--json", store=store)
    past_the_end = ctilink("log", "acme", "--since", "9000", store=store)

    assert (before_all.rc, before_all.out, before_all.err) == (0, "", "")
    assert past_the_end.rc == 0 and past_the_end.out.splitlines()[0].startswith("position")
    assert len(past_the_end.out.splitlines()) == 2  # the header and its rule


def test_a_time_stands_for_a_position_when_recorded_times_go_backwards(new_store) -> None:  # type: ignore[no-untyped-def]
    # I4: `at` is recorded, never used to reorder: position 3 is a late report.
    store = new_store()
    events = [
        {"type": "portal_installed", "platform": "windows", "at": "2024-01-01T10:00:00Z"},
        {"type": "resilience_set", "enabled": True, "at": "2024-01-01T11:00:00Z"},
        {"type": "resilience_set", "enabled": False, "at": "2024-01-01T09:30:00Z"},
        {"type": "resilience_set", "enabled": True, "at": "2024-01-01T12:00:00Z"},
    ]
    lines = [json.dumps({"id": f"b{n}", "network": "back", **e}) for n, e in enumerate(events)]
    ingest = ctilink("ingest", "-", stdin="\n".join(lines).encode(), store=store)
    assert ingest.rc == 0, ingest

    since = logged(store, "back", "--since", "2024-01-01T10:30:00Z")
    until = logged(store, "back", "--until", "2024-01-01T10:30:00Z")

    assert since == [4]  # after position 3, the last recorded before 10:30
    assert until == [1, 2, 3]  # up to position 3, as status --at-time 10:30 stands


def test_human_log_is_a_table_with_a_row_per_position(store: str) -> None:
    run = ctilink("log", "acme", "--since", "21", "--limit", "2", store=store)

    header, rule, *rows = run.out.splitlines()
    assert header.split() == ["position", "at", "actor", "type", "id", "fields"]
    assert set(rule) <= {"-", " "}
    assert [row.split()[:5] for row in rows] == [
        ["21", "2024-03-04T10:13:00+00:00", "system", "failover", "acme-021"],
        ["22", "2024-03-04T10:13:00+00:00", "system", "link_changed", "acme-022"],
    ]


# --- log --follow -------------------------------------------------------------------------


class Follower:
    """`ctilink log … --follow` running, its stdout read line by line as it comes."""

    def __init__(self, store: str, *args: str) -> None:
        environ = {k: v for k, v in os.environ.items() if k != "CTILINK_STORE"}
        self.process = subprocess.Popen(
            [str(CTILINK), "log", *args, "--follow", "--store", store],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environ,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self.lines.append(raw.decode())

    def wait_for(self, count: int, timeout: float = 30) -> list[str]:
        """Wait until `count` lines came (the process must still run)."""
        deadline = time.monotonic() + timeout
        while len(self.lines) < count:
            assert self.process.poll() is None, (self.lines, self.process.stderr.read())  # type: ignore[union-attr]
            assert time.monotonic() < deadline, self.lines
            time.sleep(0.02)
        return self.lines[:count]

    def stop(self, signum: int) -> tuple[int, str, float]:
        """Send the signal; (exit status, stderr, seconds it took to end)."""
        started = time.monotonic()
        self.process.send_signal(signum)
        rc = self.process.wait(10)
        took = time.monotonic() - started
        self.reader.join(5)
        return rc, self.process.stderr.read().decode(), took  # type: ignore[union-attr]


def append(store: str, *events: dict[str, Any]) -> None:
    """Ingest events for acme from another process, as another writer would."""
    lines = "\n".join(json.dumps({"network": "acme", **e}) for e in events)
    run = ctilink("ingest", "-", stdin=lines.encode(), store=store)
    assert run.rc == 0, run


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_follow_json_prints_each_new_position_as_committed_and_stops_cleanly(
    new_store,  # type: ignore[no-untyped-def]
    signum: int,
) -> None:
    store = new_store()
    append(store, *[{k: v for k, v in e.items() if k != "network"} for e in ACME[:3]])
    follower = Follower(store, "acme", "--json", "--since", "2")

    first = follower.wait_for(2)  # positions 2 and 3 at once
    append(store, {"type": "resilience_set", "id": "f-1", "enabled": True})
    fourth = follower.wait_for(3)[2]
    append(
        store, {"type": "portal_restarted", "id": "f-2"}, {"type": "portal_restarted", "id": "f-3"}
    )
    later = follower.wait_for(5)[3:]
    rc, err, took = follower.stop(signum)

    assert (rc, err) == (0, "")
    assert took < 5
    entries = [json.loads(line) for line in [*first, fourth, *later]]
    assert [e["position"] for e in entries] == [2, 3, 4, 5, 6]
    assert [e["event"]["id"] for e in entries[2:]] == ["f-1", "f-2", "f-3"]
    assert set(entries[2]) == {"network", "position", "at", "actor", "type", "event"}


def test_follow_as_a_table_prints_the_header_once_and_a_row_per_new_position(new_store) -> None:  # type: ignore[no-untyped-def]
    store = new_store()
    append(store, *[{k: v for k, v in e.items() if k != "network"} for e in ACME[:2]])
    follower = Follower(store, "acme", "--type", "portal_restarted")

    header = follower.wait_for(2)  # the header and its rule, before any row
    append(
        store,
        {"type": "portal_restarted", "id": "t-1"},
        {"type": "resilience_set", "id": "t-2", "enabled": True},
    )
    append(store, {"type": "portal_restarted", "id": "t-3"})
    rows = follower.wait_for(4)[2:]
    rc, err, _ = follower.stop(signal.SIGTERM)

    assert (rc, err) == (0, "")
    assert header[0].split() == ["position", "at", "actor", "type", "id", "fields"]
    assert [row.split()[0] for row in rows] == ["3", "5"]  # 4 is not of the type
    assert [row.split()[4] for row in rows] == ["t-1", "t-3"]


def test_follow_with_a_limit_ends_by_itself_after_that_many(new_store) -> None:  # type: ignore[no-untyped-def]
    store = new_store()
    append(store, *[{k: v for k, v in e.items() if k != "network"} for e in ACME[:2]])
    follower = Follower(store, "acme", "--json", "--limit", "3")
    follower.wait_for(2)
    append(
        store, {"type": "portal_restarted", "id": "l-1"}, {"type": "portal_restarted", "id": "l-2"}
    )

    assert follower.process.wait(10) == 0
    follower.reader.join(5)
    assert [json.loads(line)["position"] for line in follower.lines] == [1, 2, 3]


def test_follow_refuses_until_and_an_unknown_network_in_one_line(store: str) -> None:
    assert_one_line_error(ctilink("log", "acme", "--follow", "--until", "3", store=store))
    assert_one_line_error(ctilink("log", "nope", "--follow", store=store))


# --- rejections -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rejected(new_store) -> str:  # type: ignore[no-untyped-def]
    """The scenario, then a file with rejections of two networks and two codes."""
    path = new_store()
    assert ctilink("ingest", str(SCENARIO), store=path).rc == 0
    late = [
        {"type": "failover", "id": "r-1", "network": "acme", "system": "se-tertiary"},
        {"type": "failback", "id": "r-2", "network": "hooli", "system": "x"},
        {"type": "portal_installed", "id": "r-3", "network": "acme", "platform": "windows"},
        {"type": "failover", "id": "r-4", "network": "globex", "system": "nope"},
    ]
    text = "\n".join(json.dumps(e) for e in late) + "\nnot json\n"
    assert ctilink("ingest", "-", stdin=text.encode(), store=path).rc == 1
    return path


def ids(store: str, *args: str) -> list[str | None]:
    """The ids `rejections ARGS --json` lists, in order."""
    return [entry["id"] for entry in lines_of(ctilink("rejections", *args, "--json", store=store))]


def test_rejections_json_is_one_exact_object_per_rejection_oldest_first(rejected: str) -> None:
    found = lines_of(ctilink("rejections", "--json", store=rejected))

    assert [e["id"] for e in found] == ["r-1", "r-2", "r-3", "r-4", None]
    assert all(
        list(e) == ["network", "source", "position", "id", "received", "code", "message", "payload"]
        for e in found
    )
    assert [e["network"] for e in found] == ["acme", "hooli", "acme", "globex", None]
    assert [e["position"] for e in found] == [1, 2, 3, 4, 5]  # the lines of standard input
    assert (
        found[0]["payload"]
        == json.dumps({"type": "failover", "id": "r-1", "network": "acme", "system": "se-tertiary"})
        + "\n"
    )


def test_rejections_filter_by_network_code_and_time_and_combine(rejected: str) -> None:
    assert ids(rejected, "--network", "acme") == ["r-1", "r-3"]
    assert ids(rejected, "acme") == ["r-1", "r-3"]  # NETWORK, as before
    assert ids(rejected, "--code", "unknown_system") == ["r-1", "r-4"]
    assert ids(rejected, "--network", "acme", "--code", "unknown_system") == ["r-1"]
    assert ids(rejected, "--code", "invalid") == [None]
    assert ids(rejected, "--since", "2000-01-01T00:00:00Z") == ["r-1", "r-2", "r-3", "r-4", None]
    assert ids(rejected, "--since", "2999-01-01T00:00:00Z") == []
    assert ids(rejected, "--network", "initech") == []


def test_rejections_since_compares_instants_whatever_the_offset(rejected: str) -> None:
    first = lines_of(ctilink("rejections", "--json", store=rejected))[0]["received"]
    received = datetime.fromisoformat(first.replace("Z", "+00:00"))
    paris = timezone(timedelta(hours=2))
    hour_later = (received + timedelta(hours=1)).astimezone(paris).isoformat()
    hour_before = (received - timedelta(hours=1)).astimezone(paris).isoformat()

    assert ids(rejected, "--since", hour_later) == []
    assert len(ids(rejected, "--since", hour_before)) == 5


def test_human_rejections_table_has_a_network_column(rejected: str) -> None:
    run = ctilink("rejections", "--code", "unknown_system", store=rejected)

    header, _, *rows = run.out.splitlines()
    assert run.rc == 0 and header.split() == ["received", "network", "from", "id", "code", "reason"]
    assert [row.split()[1] for row in rows] == ["acme", "globex"]
    assert all(row.split()[4] == "unknown_system" for row in rows)


def test_the_store_filters_rejections_in_its_query(rejected: str) -> None:
    from ctilink.adapters.store.queries.rejections import rejections
    from ctilink.adapters.store.selection import open_service

    service = open_service(rejected, create=False)
    try:
        recorder: Any = service.recorder
        page = rejections(recorder, network="acme", code="unknown_system", limit=10)
        later = rejections(recorder, since=datetime(2999, 1, 1, tzinfo=UTC))
        after_first = rejections(recorder, after=page[0][0], code="unknown_system")
    finally:
        service.close()

    assert [r.event_id for _, r in page] == ["r-1"]
    assert later == []
    assert [r.event_id for _, r in after_first] == ["r-4"]


# --- verify, status ----------------------------------------------------------------------------


def test_verify_ends_with_one_summary_line(store: str) -> None:
    run = ctilink("verify", store=store)
    *table, summary = run.out.splitlines()

    assert run.rc == 0
    assert [line.split()[0] for line in table[2:]] == ["acme", "globex", "initech"]
    assert summary.startswith("verified 3 networks, 53 positions in ")
    assert summary.endswith(" s: all ok")


def test_verify_failures_only_shows_none_of_a_sound_store_and_json_stays_one_object_each(
    store: str,
) -> None:
    quiet = ctilink("verify", "--failures-only", store=store)
    as_json = ctilink("verify", "--json", store=store)

    assert quiet.rc == 0 and len(quiet.out.splitlines()) == 3  # header, rule, summary
    assert [v["network"] for v in lines_of(as_json)] == ["acme", "globex", "initech"]
    assert lines_of(ctilink("verify", "--failures-only", "--json", store=store)) == []


def test_status_at_a_position_names_the_event_that_made_it(store: str) -> None:
    human = ctilink("status", "acme", "--at", "21", store=store)
    by_time = ctilink("status", "globex", "--at-time", "2024-03-05T10:09:30Z", store=store)
    document = json.loads(ctilink("status", "acme", "--at", "21", "--json", store=store).out)

    assert (
        "made by            failover acme-021 by system at 2024-03-04T10:13:00+00:00" in human.out
    )
    assert "made by            converted_to_central globex-016 by admin@globex" in by_time.out
    assert list(document) == ["network", "position", "mode", "providers", "components"]  # §8


# --- hostile values ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, reason",
    [
        (("log", "acme", "--since", "yesterday"), "is neither a position"),
        (("log", "acme", "--since", "0"), "is neither a position"),
        (("log", "acme", "--since", "-1"), "is neither a position"),
        (("log", "acme", "--since=-1"), "is neither a position"),
        (("log", "acme", "--until", "9223372036854775808"), "is neither a position"),
        (("log", "acme", "--since", "1e3"), "is neither a position"),
        (("log", "acme", "--since", "٣"), "is neither a position"),  # an Arabic-Indic 3
        (("log", "acme", "--since", "2024-13-01T00:00:00Z"), "is neither a position"),
        (("log", "acme", "--since", "2024-03-04T08:00:00"), "is neither a position"),
        (("log", "acme", "--until", "0001-01-01T00:00:00+01:00"), "is neither a position"),
        (("log", "acme", "--limit", "0"), "is not a whole number from 1"),
        (("log", "acme", "--limit=-5"), "is not a whole number from 1"),
        (("log", "acme", "--limit", "9" * 40), "is not a whole number from 1"),
        (("log", "acme", "--limit", "ten"), "is not a whole number from 1"),
        (("log", "acme", "--type", "nope"), "invalid choice"),
        (("log", "acme", "--since", "\udcff"), "argument 4 is not UTF-8"),
        (("rejections", "--network", "no such"), "is not a network name"),
        (("rejections", "--network", "x" * 65), "is not a network name"),
        (("rejections", "--code", "nope"), "invalid choice"),
        (("rejections", "--since", "5"), "not an RFC 3339 time"),
        (("rejections", "--since", "\udcfe"), "argument 3 is not UTF-8"),
        (("rejections", "acme", "--network", "globex"), "name the network once"),
        (("verify", "--failures-only", "x", "y"), "unrecognized arguments"),
        (("web", "--log-level", "loud"), "invalid choice"),
        (("serve", "--log-level", "trace"), "invalid choice"),
    ],
)
def test_bad_values_of_the_new_options_are_one_line_errors_with_exit_2(
    store: str, args: tuple[str, ...], reason: str
) -> None:
    run = ctilink(*args, store=store)

    assert run.rc == 2 and run.out == "" and "Traceback" not in run.err, run
    assert len(run.err.splitlines()) == 1 and reason in run.err, run.err


def test_verify_counts_a_tampered_network_and_failures_only_shows_just_it(tmp_path: Path) -> None:
    store = tmp_path / "ctilink.db"
    assert ctilink("ingest", str(SCENARIO), store=store).rc == 0
    with sqlite3.connect(store) as db:
        db.execute(
            "UPDATE stored_events SET state = x'00ff' "
            "WHERE originator_id = 'globex' AND originator_version = 5"
        )

    run = ctilink("verify", "--failures-only", store=store)

    _, _, *rows, summary = run.out.splitlines()
    assert run.rc == 1  # as ever: tampering found
    assert [row.split()[:3] for row in rows] == [["globex", "17", "TAMPERED"]]
    assert summary.startswith("verified 3 networks, 53 positions in ")
    assert summary.endswith(" s: 1 failed")


# --- web's log lines --------------------------------------------------------------------------

PLAIN_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00 (INFO|WARNING|ERROR) ctilink web: \S"
)


@pytest.mark.parametrize("level", ["info", "warning"])
def test_web_logs_carry_time_and_level_and_its_address_is_on_stdout_whatever_the_level(
    store: str, level: str, tmp_path: Path
) -> None:
    environ = {k: v for k, v in os.environ.items() if k != "CTILINK_STORE"}
    command = ["web", "--listen", "127.0.0.1:0", "--log-level", level, "--store", store]
    with (tmp_path / "err").open("wb") as err:
        process = subprocess.Popen(
            [str(CTILINK), *command], stdout=subprocess.PIPE, stderr=err, env=environ
        )
    try:
        address = process.stdout.readline().decode()  # type: ignore[union-attr]
    finally:
        process.send_signal(signal.SIGTERM)
        rc = process.wait(30)
    logged = (tmp_path / "err").read_text().splitlines()

    assert rc == 0
    assert (
        PLAIN_LINE.match(address) and " INFO ctilink web: listening on http://127.0.0.1:" in address
    )
    if level == "warning":
        assert logged == []
    else:
        assert len(logged) == 1 and PLAIN_LINE.match(logged[0]), logged
        assert logged[0].endswith(" INFO ctilink web: stopped")
