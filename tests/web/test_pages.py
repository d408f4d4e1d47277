"""The console's pages over HTTP, from `ctilink web` as a process: each one the SPEC §8 document.

The HTML contract: component rows `<tr data-system data-role data-component
data-state data-via>`, provider rows `<tr data-kind data-target data-origin>`,
the mode panel `data-mode data-position data-configured data-effective
data-restart-pending data-converted`, overview rows `<tr data-network
data-position data-effective>`.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ctilink.adapters.store.queries.log import network_heads
from ctilink.adapters.store.selection import open_service
from ctilink.domain import messages as m
from ctilink.projections.changes import audit, diff
from ctilink.projections.directory import directory
from ctilink.projections.log import entry
from ctilink.projections.status import status
from tests.scenarios import order_dependent_events
from tests.support import decode
from tests.web.conftest import ROOT, hostile_events, rows

HOSTILE = "<img src=x onerror=\"document.title='pwned'\">"


@pytest.fixture(scope="module")
def scenario_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The example scenario plus generated networks, in a SQLite store."""
    store = str(tmp_path_factory.mktemp("web") / "ctilink.db")
    lines = (ROOT / "examples" / "scenario.jsonl").read_bytes().splitlines()
    generated = order_dependent_events(seed=21, count=1_500, networks=5)
    with closing(open_service(store)) as service:
        service.ingest([decode(json.loads(line)) for line in lines if line.strip()])
        for start in range(0, len(generated), 100):
            service.ingest([decode(e) for e in generated[start : start + 100]])
    return store


def expected_status(store: str, network: str, at: int | None = None) -> dict[str, Any]:
    """The domain's own status document, as JSON data."""
    with closing(open_service(store, create=False)) as service:
        return msgspec.to_builtins(status(*service.state_at(network, at)))


def as_strings(document: dict[str, Any]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The document's component and provider rows as the page's data-* attributes."""
    components = [
        {k: "" if v is None else str(v) for k, v in row.items()} for row in document["components"]
    ]
    providers = [{k: str(v) for k, v in p.items()} for p in document["providers"]]
    return components, providers


def test_every_network_page_at_every_fifth_position_is_its_status_document(
    scenario_store, start_console
):
    console = start_console(scenario_store)
    with closing(open_service(scenario_store, create=False)) as service:
        heads = network_heads(service)
    rng = random.Random(5)
    checked = 0
    for network, head in heads:
        for at in sorted({head, 1, *rng.sample(range(1, head + 1), min(head, head // 5 + 1))}):
            code, html, _ = console.get(f"/networks/{network}?at={at}")
            assert code == 200, html
            document = expected_status(scenario_store, network, at)
            components, providers = as_strings(document)
            assert rows(html, "system") == components, (network, at)
            assert rows(html, "kind") == providers, (network, at)
            (panel,) = rows(html, "mode")
            mode = document["mode"]
            assert panel == {
                "mode": mode["setting"],
                "position": str(at),
                "configured": mode["configured"],
                "effective": mode["effective"],
                "restart-pending": str(mode["restart_pending"]).lower(),
                "converted": str(mode["converted"]).lower(),
            }
            assert ('data-past="true"' in html) == (at != head)
            checked += 1
    assert checked > 50


def test_time_travel_by_recorded_time_shows_the_last_position_recorded_by_then(
    scenario_store, start_console
):
    console = start_console(scenario_store)
    # acme's 20 was recorded at 08:13, 21 to 23 (the failover) at 10:13 (examples/).
    for moment, position in [("2024-03-04T10:12:59Z", 20), ("2024-03-04T11:13:00+01:00", 23)]:
        code, html, _ = console.get(f"/networks/acme?at-time={moment.replace('+', '%2B')}")
        assert code == 200
        (panel,) = rows(html, "mode")
        assert panel["position"] == str(position)
        expected = as_strings(expected_status(scenario_store, "acme", position))[0]
        assert rows(html, "system") == expected


def test_the_overview_lists_every_network_with_its_status_and_pages_and_filters(
    tmp_path, start_console
):
    store = str(tmp_path / "many.db")
    names = [f"site-{n:03d}" for n in range(230)]
    events = [
        {"type": "portal_installed", "id": "i", "network": n, "platform": "linux_server_edition"}
        for n in names
    ]
    events += [
        {"type": "central_cti_link_set", "id": "c", "network": n, "enabled": False}
        for n in names[::7]
    ]
    with closing(open_service(store)) as service:
        service.ingest([decode(e) for e in events])
    console = start_console(store)

    listed, path = [], "/"
    while path:
        code, html, _ = console.get(path)
        assert code == 200
        listed += rows(html, "network")
        following = [line for line in html.splitlines() if 'rel="next"' in line]
        path = (
            following[0].split('href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
            if following
            else ""
        )
    assert [row["network"] for row in listed] == names
    for row in listed[:20]:
        document = expected_status(store, row["network"])
        assert row["position"] == str(document["position"])
        assert row["effective"] == document["mode"]["effective"]

    code, html, _ = console.get("/?restart_pending=1&name=site-00")
    assert [row["network"] for row in rows(html, "network")] == ["site-000", "site-007"]
    code, html, _ = console.get("/?effective=manual")  # until the portal restarts
    assert rows(html, "network") == []
    code, html, _ = console.get("/?effective=central&name=site-")
    assert len(rows(html, "network")) == 100 and 'rel="next"' in html


@pytest.mark.parametrize(
    ("path", "code", "said"),
    [
        ("/networks/nobody", 404, "unknown network &#39;nobody&#39;"),
        ("/networks/a%20b", 404, "is not a network name"),
        ("/networks/acme?at=x", 400, "at: &#39;x&#39; is not a position"),
        ("/networks/acme?at=0", 400, "out of range (1..27)"),
        ("/networks/acme?at=28", 400, "out of range (1..27)"),
        ("/networks/acme?at=-1", 400, "is not a position"),
        ("/networks/acme?at=99999999999999999999", 400, "is not a position"),
        ("/networks/acme?at=1&at-time=2024-03-04T10:00:00Z", 400, "not both"),
        ("/networks/acme?at-time=yesterday", 400, "is not an RFC 3339 time"),
        ("/networks/acme?at-time=2024-03-04T10:00:00", 400, "is not an RFC 3339 time"),
        ("/networks/acme?at-time=1999-01-01T00:00:00Z", 400, "nothing was recorded"),
        ("/networks/acme/log?after=x", 400, "after"),
        ("/networks/acme/log?type=nope", 400, "is not an event type"),
        ("/?effective=central_cti_link", 400, "is not a mode"),
        ("/?name=%3Cscript%3E", 400, "is not the start of a network name"),
        ("/nowhere", 404, "Not found"),
    ],
)
def test_an_unknown_network_is_404_and_a_bad_question_400_naming_the_reason_never_500(
    scenario_store, start_console, path, code, said
):
    console = start_console(scenario_store)

    got, html, headers = console.get(path)

    assert got == code and said in html, (got, html)
    assert "script-src 'self'" in headers["content-security-policy"]


def test_the_log_page_pages_by_position_filters_by_type_and_links_each_row_to_its_state(
    scenario_store, start_console
):
    console = start_console(scenario_store)
    with closing(open_service(scenario_store, create=False)) as service:
        log = [(e.originator_version, e.message) for e in service.log("net-00")]
    seen, path = [], "/networks/net-00/log"
    while path:
        code, html, _ = console.get(path)
        assert code == 200
        seen += [int(row["position"]) for row in rows(html, "type")]
        following = [line for line in html.splitlines() if 'rel="next"' in line]
        path = (
            following[0].split('href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
            if following
            else ""
        )
        path = f"/networks/net-00/log{path}" if path.startswith("?") else path
    assert seen == [position for position, _ in log]
    kind = m.type_of(log[-1][1])
    code, html, _ = console.get(f"/networks/net-00/log?type={kind}")
    shown = rows(html, "type")
    assert {row["type"] for row in shown} == {kind}
    assert len(shown) == min(100, sum(m.type_of(message) == kind for _, message in log))
    assert 'href="/networks/net-00?at=' in html


def test_hostile_strings_in_every_field_shown_are_text_never_markup(tmp_path, start_console):
    store = str(tmp_path / "hostile.db")
    events = hostile_events(HOSTILE)
    with closing(open_service(store)) as service:
        outcomes = service.ingest([decode(e) for e in events])
    assert {o.outcome for o in outcomes} == {"accepted"}, outcomes
    console = start_console(store)

    for path in ("/", "/networks/evil", "/networks/evil?at=1", "/networks/evil/log"):
        code, html, _ = console.get(path)
        assert code == 200
        assert "<img" not in html, path
    code, html, _ = console.get("/networks/evil/log")
    assert "&lt;img src=x onerror=" in html  # shown, as text
    code, html, _ = console.get("/networks/evil")
    assert {p["target"] for p in rows(html, "kind") if p["kind"] == "voicemail"} == {HOSTILE}


def web(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`ctilink web` run to its end (for the ways it refuses to start)."""
    return subprocess.run(
        [sys.executable, "-m", "ctilink.adapters.cli", "web", *args],
        capture_output=True,
        cwd=ROOT,
        timeout=60,
        env=env,
        check=False,
    )


def test_beyond_loopback_the_console_refuses_to_start_without_a_token(scenario_store):
    for listen in ("0.0.0.0:0", "[::]:0", "example.org:0"):
        done = web("--store", scenario_store, "--listen", listen, env={"PATH": "/usr/bin"})
        assert done.returncode == 2, done
        (said,) = done.stderr.decode().splitlines()
        assert "give it a token" in said
    done = web("--store", scenario_store, "--listen", "nowhere")
    assert done.returncode == 2 and b"is not HOST:PORT" in done.stderr
    done = web("--store", str(Path(scenario_store).parent / "missing.db"))
    assert done.returncode == 2 and b"does not exist" in done.stderr


def test_with_a_token_a_reader_signs_in_or_presents_it_and_nothing_else_gets_in(
    scenario_store, start_console
):
    console = start_console(scenario_store, "--token", "s3cret")

    code, _, headers = console.get("/networks/acme", {"accept": "text/html"})
    assert code == 303 and headers["location"] == "/login?next=%2Fnetworks%2Facme"
    assert console.get("/networks/acme")[0] == 401
    assert console.get("/networks/acme", {"authorization": "Bearer wrong"})[0] == 401
    assert console.get("/networks/acme", {"authorization": "Bearer s3cret"})[0] == 200

    code, html, _ = console.post("/login", b"token=wrong&next=/networks/acme")
    assert code == 401 and "not the console" in html
    code, _, headers = console.post("/login", b"token=s3cret&next=//evil.example/")
    assert code == 303 and headers["location"] == "/"  # never off the site
    code, _, headers = console.post("/login", b"token=s3cret&next=/networks/acme")
    assert code == 303 and headers["location"] == "/networks/acme"
    cookie = headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    code, html, _ = console.get("/networks/acme", {"cookie": cookie.split(";", 1)[0]})
    assert code == 200 and rows(html, "mode")


def test_the_directory_page_is_the_directory_document_now_and_then_d1_d4(
    scenario_store, start_console
):
    console = start_console(scenario_store)
    for at in (12, 27):
        code, html, _ = console.get(f"/networks/acme/directory?at={at}")
        assert code == 200
        with closing(open_service(scenario_store, create=False)) as service:
            document = directory(*service.state_at("acme", at))
        assert rows(html, "via") == [
            {"name": e.name, "number": e.number, "system": e.system, "via": e.via}
            for e in document.system
        ]
        personal = [
            {"user": user, "name": e.name if e else "", "number": e.number if e else ""}
            for user, entries in document.personal.items()
            for e in (entries or [None])
        ]
        assert rows(html, "user") == personal
        assert ('data-past="true"' in html) == (at != 27)


def test_the_audit_page_is_ctilink_audit(scenario_store, start_console):
    console = start_console(scenario_store)
    code, html, _ = console.get("/networks/globex/audit")
    assert code == 200
    with closing(open_service(scenario_store, create=False)) as service:
        expected = list(audit(entry(e) for e in service.log("globex")))
    assert rows(html, "configured") == [
        {
            "position": str(e.position),
            "type": e.type,
            "configured-before": e.configured[0] or "",
            "configured": e.configured[1],
            "effective-before": e.effective[0] or "",
            "effective": e.effective[1],
        }
        for e in expected
    ]


def test_the_diff_page_is_ctilink_diff_and_refuses_what_it_cannot_compare(
    scenario_store, start_console
):
    console = start_console(scenario_store)
    code, html, _ = console.get("/networks/acme/diff?from=20&to=22")  # the failover
    assert code == 200
    with closing(open_service(scenario_store, create=False)) as service:
        found = diff(status(*service.state_at("acme", 20)), status(*service.state_at("acme", 22)))
    assert rows(html, "after-via") == [
        {
            "system": c.system,
            "component": c.component,
            "before": c.before.state if c.before else "",
            "after": c.after.state if c.after else "",
            "before-via": (c.before.via or "") if c.before else "",
            "after-via": (c.after.via or "") if c.after else "",
        }
        for c in found.components
    ]
    assert found.components, "the failover changes rows"
    for bad, said in [("from=20", "to: a position is needed"), ("from=0&to=2", "out of range")]:
        code, html, _ = console.get(f"/networks/acme/diff?{bad}")
        assert code == 400 and said in html


def test_without_a_token_only_loopback_host_names_are_answered_against_dns_rebinding(
    scenario_store, start_console
):
    console = start_console(scenario_store)
    for host in ("attacker.example:8080", "evil.example", "10.0.0.1"):
        code, _, _ = console.get("/networks/acme", {"host": host})
        assert code == 421, host
    for host in ("localhost:1", "127.0.0.1", "[::1]:8080"):
        assert console.get("/networks/acme", {"host": host})[0] == 200, host


def test_a_login_form_too_large_or_too_full_is_refused_with_the_policy_headers(
    scenario_store, start_console
):
    console = start_console(scenario_store, "--token", "s3cret")
    code, html, headers = console.post("/login", b"token=a&b=1&c=2&d=3&e=4")
    assert code == 400 and "nothing more" in html
    assert "script-src 'self'" in headers["content-security-policy"]
    code, _, _ = console.post("/login", b"token=" + b"x" * 100_000)
    assert code == 413
    code, _, headers = console.get("/networks/acme", {"authorization": "Bearer s3cret"})
    assert code == 200 and headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("query", "listed"), [("restart_pending=0", 230), ("restart_pending=false", 230)]
)
def test_a_filter_turned_off_stays_off(tmp_path, start_console, query, listed):
    store = str(tmp_path / "flags.db")
    with closing(open_service(store)) as service:
        service.ingest(
            [
                decode(
                    {
                        "type": "portal_installed",
                        "id": "i",
                        "network": f"n{n:03d}",
                        "platform": "windows",
                    }
                )
                for n in range(listed)
            ]
        )
    console = start_console(store)
    code, html, _ = console.get(f"/?{query}")
    assert code == 200 and len(rows(html, "network")) == 100
    assert console.get("/?restart_pending=yes")[0] == 400


def test_the_overview_sorts_by_a_column_and_pages_in_that_order(scenario_store, start_console):
    console = start_console(scenario_store)
    code, html, _ = console.get("/?sort=position")
    positions = [int(row["position"]) for row in rows(html, "network")]
    assert code == 200 and positions == sorted(positions, reverse=True) and positions
    assert console.get("/?sort=bogus")[0] == 400


def test_a_live_stream_is_for_a_network_that_exists_and_only_pages_of_now_hold_one(
    scenario_store, start_console
):
    console = start_console(scenario_store)
    assert console.get("/live?network=nope")[0] == 404
    _, html, _ = console.get("/networks/acme?at=27")  # the head, but asked for by position
    assert "data-stream" not in html
    _, html, _ = console.get("/networks/acme")
    assert 'data-stream="/live?network=acme&amp;since=' in html


def test_a_stream_asked_with_an_older_generation_says_change_at_once(scenario_store, start_console):
    import urllib.request

    console = start_console(scenario_store)
    with urllib.request.urlopen(console.url + "/live?network=acme&since=999", timeout=10) as s:
        assert s.readline().startswith(b"retry:")
        s.readline()
        assert s.readline() == b"event: change\n"


def test_the_console_stops_at_once_with_exit_0_even_with_a_live_stream_open(
    scenario_store, start_console
):
    import time
    import urllib.request

    console = start_console(scenario_store)
    stream = urllib.request.urlopen(console.url + "/live?network=acme", timeout=10)
    stream.readline()
    started = time.monotonic()
    console.process.terminate()
    assert console.process.wait(30) == 0
    assert time.monotonic() - started < 2.5
    assert b"ctilink web: stopped" in console.process.stderr.read()  # type: ignore[union-attr]
    stream.close()


@pytest.mark.parametrize(
    ("argument", "said"),
    [
        (("--listen", "[::1]]:0"), "is not HOST:PORT"),
        (("--listen", "::1:0"), "is not HOST:PORT"),
        (("--listen", " 127.0.0.1:0"), "is not HOST:PORT"),
        (("--listen", "127.0.0.1:70000"), "is not HOST:PORT"),
        (("--token", "pässwörd"), "printable ASCII"),
    ],
)
def test_a_listen_address_or_token_that_cannot_work_is_refused(scenario_store, argument, said):
    done = web("--store", scenario_store, *argument)
    assert done.returncode == 2 and said in done.stderr.decode(), done


def test_the_mode_machine_is_drawn_from_the_domains_table_with_the_networks_modes_marked_m3_m5(
    scenario_store, start_console
):
    from ctilink.projections.machine import diagram

    console = start_console(scenario_store)
    machine = diagram()
    for network, at in [("globex", 16), ("globex", 17), ("initech", 9), ("acme", 1)]:
        _, html, _ = console.get(f"/networks/{network}?at={at}")
        mode = expected_status(scenario_store, network, at)["mode"]
        states = {row["state"]: row for row in rows(html, "configured") if "state" in row}
        assert set(states) == set(machine.states)
        assert [s for s, row in states.items() if row["configured"] == "true"] == [
            mode["configured"]
        ]
        assert [s for s, row in states.items() if row["effective"] == "true"] == [mode["effective"]]
        moves = {(e.source, e.dest) for e in machine.transitions if e.source != e.dest}
        assert html.count("<line ") == len(moves)


def test_each_security_header_is_sent_once(scenario_store, start_console):
    console = start_console(scenario_store)
    for path in ("/", "/networks/acme", "/networks/nobody", "/static/console.css"):
        _, _, headers = console.get(path)
        for name in ("content-security-policy", "x-content-type-options", "referrer-policy"):
            assert len(headers.get_all(name)) == 1, (path, name)
