"""`ctilink preview`: one event decided by the same rules on a copy, committing nothing (M4, M5).

The preview must be what ingesting the event (and a portal restart after it)
then really does: the same outcome, and at once and after the restart the same
changes to the status document (SPEC §8) from the status now. The store must be
untouched. Run as a process on SQLite and PostgreSQL, and, in-process, over
generated settings histories.
"""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctilink.adapters.cli.commands.preview import BadEvent, event_of
from ctilink.adapters.store.queries.log import network_heads
from ctilink.adapters.store.selection import open_service
from ctilink.domain.application import NetworkService
from ctilink.projections.changes import compare
from ctilink.projections.preview import previewed, then_restart
from ctilink.projections.status import status
from tests.support import ROOT, decode

CTILINK = Path(sys.executable).parent / "ctilink"
SCENARIO = ROOT / "examples" / "scenario.jsonl"
CONVERT = '{"type": "converted_to_central", "actor": "admin@globex"}'


def ctilink(*args: str) -> subprocess.CompletedProcess[str]:
    """The console script as a user runs it."""
    return subprocess.run(
        [str(CTILINK), *args], capture_output=True, text=True, timeout=120, check=False
    )


def before_conversion() -> list[Any]:
    """The example scenario without globex's conversion and the restart after it."""
    lines = SCENARIO.read_text().splitlines()
    kept = [json.loads(line) for line in lines if line.strip()]
    return [decode(e) for e in kept if e["id"] not in ("globex-016", "globex-017")]


@pytest.fixture
def store(new_store: Any) -> str:
    """A store of this test's kind holding the scenario up to just before globex converts."""
    location = new_store()
    with closing(open_service(location)) as service:
        service.ingest(before_conversion())
    return location


def heads(location: str) -> list[tuple[str, int]]:
    """Every network and its last position."""
    with closing(open_service(location, create=False)) as service:
        return network_heads(service)


def document(changes: Any, position: int) -> dict[str, Any]:
    """What a preview's `at_once`/`after_restart` should be, as JSON data."""
    return {"position": position, **json.loads(msgspec.json.encode(changes))}


def test_the_conversion_previewed_is_what_converting_and_restarting_then_do_m4_m5(store):
    untouched = heads(store)

    done = ctilink("preview", "globex", CONVERT, "--then-restart", "--json", "--store", store)

    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert heads(store) == untouched  # nothing was committed
    with closing(open_service(store)) as service:
        now = status(*service.state_at("globex"))
        event = decode({"type": "converted_to_central", "network": "globex"} | {"id": "c"})
        assert [o.outcome for o in service.ingest([event])] == ["accepted"]
        converted = status(*service.state_at("globex"))
        service.ingest([then_restart(event)])
        restarted = status(*service.state_at("globex"))
    assert shown["position"] == 15 and shown["outcome"] == "accepted"
    assert shown["event"]["network"] == "globex" and shown["event"]["id"].startswith("preview-")
    assert shown["at_once"] == document(compare(now, converted), 16)
    assert shown["after_restart"] == document(compare(now, restarted), 17)
    # M5: at once only the configured mode moves; the providers follow at the restart.
    assert shown["at_once"]["providers"] == {"added": [], "removed": []}
    added = {
        (p["kind"], p["target"], p["origin"]) for p in shown["after_restart"]["providers"]["added"]
    }
    assert added == {("csta", "gx-primary", "central"), ("dsml", "gx-primary", "central")}


def test_the_text_report_says_nothing_was_committed_and_what_the_restart_changes(store):
    done = ctilink("preview", "globex", CONVERT, "--then-restart", "--store", store)

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == (
        "preview of converted_to_central on globex (at position 15): nothing was committed"
    )
    assert "accepted: it would be position 16" in lines
    assert "after the next portal restart, position 17 (compared with now):" in lines
    assert "  provider removed: csta gx-south (manual)" in lines  # P1: manual not active
    assert "  component gx-south dsml: unavailable via gx-south → available via gx-primary" in lines

    alone = ctilink("preview", "globex", CONVERT, "--store", store)
    assert "after the next portal restart" not in alone.stdout
    assert "(a restart is now pending: --then-restart shows what it would change)" in alone.stdout


def test_a_rejected_event_shows_the_rejection_and_exits_1_m2(store):
    done = ctilink(
        "preview", "initech", '{"type": "central_cti_link_set", "enabled": true}', "--store", store
    )

    assert done.returncode == 1
    assert done.stdout.splitlines()[-1].startswith("rejected: central_not_available: ")
    shown = json.loads(
        ctilink(
            "preview",
            "initech",
            '{"type": "central_cti_link_set", "enabled": true}',
            "--json",
            "--store",
            store,
        ).stdout
    )
    assert (shown["outcome"], shown["code"], shown["at_once"]) == (
        "rejected",
        "central_not_available",
        None,
    )


def test_an_id_already_accepted_is_a_duplicate_and_nothing_would_change_i3(store):
    line = SCENARIO.read_text().splitlines()[0]  # acme-001 as accepted
    done = ctilink("preview", "acme", line, "--json", "--store", store)

    assert done.returncode == 0
    shown = json.loads(done.stdout)
    assert (shown["outcome"], shown["at_once"], shown["after_restart"]) == ("duplicate", None, None)
    conflict = ctilink(
        "preview", "acme", '{"type": "portal_restarted", "id": "acme-001"}', "--store", store
    )
    assert conflict.returncode == 1 and "rejected: id_conflict" in conflict.stdout


@pytest.mark.parametrize(
    ("network", "event", "said"),
    [
        ("globex", '{"type": "central_cti_link_set", "enabled": "yes"}', "field `enabled`"),
        ("globex", '{"type": "converted_to_central", "network": "acme"}', "names network 'acme'"),
        ("globex", "[1]", "EVENT_JSON: Expected `object`"),
        ("globex", "{", "EVENT_JSON: not valid JSON"),
        ("globex", '{"type": "nuke"}', "EVENT_JSON: "),
        ("glo bex", '{"type": "portal_restarted"}', "NETWORK: 'glo bex' is not a network name"),
    ],
)
def test_an_event_that_is_no_event_is_one_line_naming_the_field_exit_2_i1(
    store, network, event, said
):
    done = ctilink("preview", network, event, "--store", store)

    assert done.returncode == 2, done.stdout
    (line,) = done.stderr.splitlines()
    assert said in line and "Traceback" not in done.stderr


def test_a_store_that_does_not_exist_is_decided_as_a_new_one_and_not_created(tmp_path):
    missing = tmp_path / "nothing.db"
    done = ctilink(
        "preview",
        "newco",
        '{"type": "portal_installed", "platform": "windows"}',
        "--json",
        "--store",
        str(missing),
    )

    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["position"] is None and shown["at_once"]["position"] == 1
    assert shown["at_once"]["mode"]["configured"] == [None, "manual"]  # M1
    assert not missing.exists()


SETTINGS = st.sampled_from(
    [
        {"type": "converted_to_central"},
        {"type": "central_cti_link_set", "enabled": True},
        {"type": "central_cti_link_set", "enabled": False},
        {"type": "auto_provisioning_set", "enabled": True},
        {"type": "auto_provisioning_set", "enabled": False},
        {"type": "portal_restarted"},
    ]
)
INSTALLS = st.fixed_dictionaries(
    {
        "type": st.just("portal_installed"),
        "platform": st.sampled_from(["linux_server_edition", "windows"]),
    },
    optional={
        "upgraded_from": st.sampled_from(["9.1", "10.0"]),
        "auto_provisioning": st.booleans(),
    },
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    install=INSTALLS, history=st.lists(SETTINGS, max_size=6), asked=SETTINGS, restart=st.booleans()
)
def test_any_setting_previewed_after_any_history_is_what_ingesting_it_does_m1_m6(
    install, history, asked, restart
):
    network = "net"
    primary = {"type": "system_added", "system": "pri", "role": "primary", "platform": "linux"}
    past = [install, primary | {"address": "10.0.0.1"}, *history]
    with closing(open_service("memory://")) as service:
        service.ingest(
            [decode({**e, "network": network, "id": f"h{i}"}) for i, e in enumerate(past)]
        )
        before = service.state_at(network)
        event = decode({**asked, "network": network, "id": "asked"})

        shown = previewed(service, event, restart=restart)

        assert service.state_at(network)[1] == before[1]  # nothing was committed
        now = status(*before)
        outcome = service.ingest([event])[0]
        assert (shown.outcome, shown.code) == (outcome.outcome, outcome.code)
        if outcome.outcome != "accepted":
            assert shown.at_once is None and shown.after_restart is None
            return
        at_once = status(*service.state_at(network))
        assert shown.at_once is not None and shown.at_once.position == before[1] + 1
        assert json.loads(msgspec.json.encode(shown.at_once)) == document(
            compare(now, at_once), before[1] + 1
        )
        if restart:
            service.ingest([then_restart(event)])
            later = status(*service.state_at(network))
            assert shown.after_restart is not None
            assert json.loads(msgspec.json.encode(shown.after_restart)) == document(
                compare(now, later), before[1] + 2
            )
        else:
            assert shown.after_restart is None


@settings(max_examples=300, deadline=None)
@given(
    text=st.one_of(
        st.text(max_size=60),
        st.sampled_from(['{"type": "portal_restarted"}', "{}", "  { } ", '{"id": 1}']),
    )
)
def test_any_event_json_is_an_event_of_that_network_or_one_reason_never_a_crash(text):
    try:
        event = event_of("acme", text)
    except BadEvent as error:
        assert str(error) and "\n" not in str(error)
    else:
        assert event.network == "acme" and 1 <= len(event.id) <= 128


def test_a_restart_with_nothing_pending_is_accepted_and_changes_nothing_m5(store):
    with closing(open_service(store, create=False)) as service:
        assert isinstance(service, NetworkService)
        restart = decode({"type": "portal_restarted", "network": "acme", "id": "r"})
        shown = previewed(service, restart, restart=True)
    assert shown.outcome == "accepted"
    assert shown.at_once is not None and shown.at_once.empty
    assert shown.after_restart is not None and shown.after_restart.empty
