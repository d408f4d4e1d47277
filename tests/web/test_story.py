"""The console tells the story, over HTTP from `ctilink web` as a process, on SQLite and
PostgreSQL: a navigation bar on every page, search, each position's event and what it
changed, the timeline, the preview (committing nothing) and the rejections from the store.

HTML contract of these pages (docs/console.md): the position's own panel
`<section data-made-by data-type data-id data-actor>` with its changes as
`data-changed-*` rows; timeline marks `<a data-mark data-position>`, runs
`<a data-run data-first data-last>`, positions `<a data-column>`; the preview's
`<p data-outcome data-code>` and `<section data-preview="at-once|after-restart"
data-position>` holding diff rows; rejection rows `<tr data-rejection data-network
data-code data-source data-event-id>`.
"""

from __future__ import annotations

import html as markup
import json
import re
import subprocess
import sys
import time
from contextlib import closing
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import msgspec
import pytest

from ctilink.adapters.store.queries.log import network_heads
from ctilink.adapters.store.queries.rejections import rejections
from ctilink.adapters.store.selection import open_service
from ctilink.domain import messages as m
from ctilink.projections.changes import compare
from ctilink.projections.directory import directory
from ctilink.projections.status import status
from tests.support import decode
from tests.web.conftest import ROOT, feed, rows

SCENARIO = ROOT / "examples" / "scenario.jsonl"
LATER = ("globex-016", "globex-017")  # globex's conversion and the restart after it
SITES = 130  # networks named site-NNN: more than a page of the overview


def scenario_before_conversion() -> list[dict[str, Any]]:
    """The example scenario up to just before globex converts."""
    lines = [json.loads(line) for line in SCENARIO.read_text().splitlines() if line.strip()]
    return [e for e in lines if e["id"] not in LATER]


def later_events() -> list[dict[str, Any]]:
    """globex's conversion and the restart after it."""
    lines = [json.loads(line) for line in SCENARIO.read_text().splitlines() if line.strip()]
    return [e for e in lines if e["id"] in LATER]


@pytest.fixture(scope="module")
def story(new_store: Any) -> dict[str, Any]:
    """A store: the scenario before globex converts, SITES small networks, names with `_`,
    a long log, and rejections from a file in two runs (the time between them kept)."""
    store = new_store()
    events = scenario_before_conversion()
    events += [
        {"type": "portal_installed", "id": "i", "network": name, "platform": "windows"}
        for name in [f"site-{n:03d}" for n in range(SITES)] + ["a_b", "axb", "Mixed-Case"]
    ]
    long = [
        {
            "type": "portal_installed",
            "id": "l0",
            "network": "long",
            "platform": "linux_server_edition",
        },
        {"type": "system_added", "id": "l1", "network": "long", "system": "pri"}
        | {"role": "primary", "platform": "linux", "address": "10.0.0.1"},
    ]
    long += [
        {"type": "link_changed", "id": f"f{n}", "network": "long", "system": "pri"}
        | {"component": "csta", "up": n % 2 == 1}
        for n in range(1, 1202)
    ]
    with closing(open_service(store)) as service:
        for start in range(0, len(events + long), 500):
            service.ingest([decode(e) for e in (events + long)[start : start + 500]])
    first = ['{"type": "portal_restarted", "id": "r1"}', "not json"]  # invalid (I1)
    first += [
        json.dumps({"type": "central_cti_link_set", "id": f"c{n}", "network": "initech"}).replace(
            "}", ', "enabled": true}'
        )
        for n in range(120)
    ]  # central_not_available (M2)
    assert feed(store, *first).returncode == 1
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    second = [json.dumps({"type": "failover", "id": "x", "network": "acme", "system": "nope"})]
    second += [
        json.dumps({"type": "user_removed", "id": f"u{n}", "network": "globex", "user": "nobody"})
        for n in range(3)
    ]  # unknown_system (I6), unknown_user
    assert feed(store, *second).returncode == 1
    return {"store": store, "between": between}


@pytest.fixture(scope="module")
def console(story: dict[str, Any], start_console_module: Any) -> Any:
    """One console on the story's store for the module."""
    return start_console_module(story["store"])


def heads(store: str) -> list[tuple[str, int]]:
    """Every network and its last position."""
    with closing(open_service(store, create=False)) as service:
        return network_heads(service)


def page(console: Any, path: str) -> str:
    """A page that must be there."""
    code, html, _ = console.get(path)
    assert code == 200, (path, code, html[:2000])
    return html


# --- the navigation bar -------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "here"),
    [
        ("/", "networks"),
        ("/rejections", "rejections"),
        ("/networks/acme", "now"),
        ("/networks/acme?at=3", "now"),
        ("/networks/acme/log", "log"),
        ("/networks/acme/timeline", "timeline"),
        ("/networks/acme/audit", "audit"),
        ("/networks/acme/directory", "directory"),
        ("/networks/acme/diff?from=20&to=22", "diff"),
        ("/networks/globex/preview?event=converted_to_central", "now"),
    ],
)
def test_every_page_has_the_navigation_bar_and_says_where_the_reader_is(console, path, here):
    html = page(console, path)

    links = {row["nav"] for row in rows(html, "nav")}
    assert {"networks", "rejections"} <= links
    if path.startswith("/networks/"):
        assert {
            "now",
            "log",
            "timeline",
            "audit",
            "directory",
            "diff",
            "network-rejections",
        } <= links
        network = path.split("/")[2].split("?")[0]
        assert f'href="/rejections?network={network}" data-nav="network-rejections"' in html
    current = re.findall(r'data-nav="([a-z-]+)" aria-current="page"', html)
    assert current == [here]
    assert 'role="search"' in html and 'name="q"' in html  # networks searched from anywhere


def test_an_error_page_has_the_bar_too(console):
    code, html, _ = console.get("/networks/nowhere")
    assert code == 404
    assert {"networks", "rejections"} <= {row["nav"] for row in rows(html, "nav")}


# --- search ---------------------------------------------------------------------------


def listed(console: Any, query: str) -> list[str]:
    """Every network the overview lists for a query, following its pages."""
    names, path = [], f"/?{query}"
    while path:
        html = page(console, path)
        names += [row["network"] for row in rows(html, "effective")]
        following = re.search(r'rel="next" href="(\?[^"]*)"', html)
        path = "/" + following.group(1).replace("&amp;", "&") if following else ""
    return names


@pytest.mark.parametrize("text", ["site-1", "SITE-12", "e", "x", "_", "mixed", "B", "nothing"])
def test_networks_are_searched_by_any_part_of_their_name_whatever_the_case(story, console, text):
    every = [name for name, _ in heads(story["store"])]

    found = listed(console, f"q={quote(text)}")

    assert found == sorted(n for n in every if text.casefold() in n.casefold())


def test_a_search_keeps_the_other_filters_and_sorts(story, console):
    found = listed(console, "q=site&effective=manual&sort=position")
    assert sorted(found) == [f"site-{n:03d}" for n in range(SITES)]
    assert listed(console, "q=site&effective=central") == []
    assert listed(console, "q=glo&name=gl") == ["globex"]
    assert listed(console, "q=ex&restart_pending=1") == []


@pytest.mark.parametrize("bad", ["<b>", "a b", "x" * 65])
def test_a_search_for_what_no_name_can_hold_is_400_naming_q(console, bad):
    code, html, _ = console.get(f"/?q={quote(bad)}")
    assert code == 400 and "q: " in markup.unescape(html)


@pytest.mark.parametrize("text", ["bob", "BRANCH", "200", "se-secondary", "alice", "zzz"])
def test_the_directory_is_searched_by_name_number_system_or_user_d1_d4(story, console, text):
    with closing(open_service(story["store"], create=False)) as service:
        document = directory(*service.state_at("acme"))
    wanted = text.casefold()

    html = page(console, f"/networks/acme/directory?q={quote(text)}")

    system = [
        {"name": e.name, "number": e.number, "system": e.system, "via": e.via}
        for e in document.system
        if any(wanted in v.casefold() for v in (e.name, e.number, e.system, e.via))
    ]
    assert [r for r in rows(html, "via") if "user" not in r] == system
    personal = [
        {"user": user, "name": e.name if e else "", "number": e.number if e else ""}
        for user, entries in document.personal.items()
        for e in (entries or [None])
        if wanted in user.casefold()
        or (e is not None and (wanted in e.name.casefold() or wanted in e.number.casefold()))
    ]
    assert rows(html, "user") == personal


# --- each position's story --------------------------------------------------------------


def test_each_position_names_the_event_that_made_it_and_what_it_changed(story, console):
    with closing(open_service(story["store"], create=False)) as service:
        for network in ("acme", "globex", "initech"):
            log = list(service.log(network))
            documents = [status(*service.state_at(network, p)) for p in range(1, len(log) + 1)]
            for position, event in enumerate(log, 1):
                html = page(console, f"/networks/{network}?at={position}")
                (made,) = rows(html, "made-by")
                message = event.message
                assert made == {
                    "made-by": str(position),
                    "type": m.type_of(message),
                    "id": message.id,
                    "actor": message.actor,
                }
                before = documents[position - 2] if position > 1 else None
                changes = compare(before, documents[position - 1])
                shown = rows(html, "changed-component")
                assert [(r["changed-system"], r["changed-component"]) for r in shown] == [
                    (c.system, c.component) for c in changes.components
                ]
                assert [(r["changed-after"], r["changed-after-via"]) for r in shown] == [
                    (c.after.state if c.after else "", (c.after.via or "") if c.after else "")
                    for c in changes.components
                ]
                kinds = rows(html, "changed-kind")
                assert len(kinds) == len(changes.providers.added) + len(changes.providers.removed)
                # The status rows keep their own contract beside the changes.
                document = msgspec.to_builtins(documents[position - 1])
                assert len(rows(html, "role")) == len(document["components"])


def test_the_failover_position_shows_every_row_moving_to_the_secondary_c2(console):
    html = page(console, "/networks/acme?at=21")

    (made,) = rows(html, "made-by")
    assert made["type"] == "failover"
    moved = rows(html, "changed-component")
    assert moved and {r["changed-after-via"] for r in moved} == {"se-secondary"}
    assert 'href="/networks/acme/diff?from=20&amp;to=21"' in html


# --- the timeline -------------------------------------------------------------------------


def test_the_timeline_marks_mode_changes_failovers_and_links_down_and_links_every_position(
    console,
):
    html = page(console, "/networks/acme/timeline")

    marks = [(int(r["position"]), r["mark"]) for r in rows(html, "mark")]
    assert marks == [
        (1, "installed"),
        (21, "failover"),
        (22, "link_down"),
        (23, "link_down"),
        (24, "failback"),
        (25, "link_up"),
        (26, "link_up"),
    ]
    assert [int(r["column"]) for r in rows(html, "column")] == list(range(1, 28))
    for position in range(1, 28):
        assert f'href="/networks/acme?at={position}" data-column="{position}"' in html
    runs = {(r["run"], r["first"], r["last"]) for r in rows(html, "run")}
    assert ("se-primary", "21", "23") in runs  # failed over until the failback
    assert ("2 down", "23", "24") in runs
    assert ("central", "1", "27") in runs


def test_a_long_log_is_drawn_a_window_at_a_time_and_every_window_stays_small(console):
    seen: list[int] = []
    path = "/networks/long/timeline"
    while path:
        code, html, _ = console.get(path)
        assert code == 200 and len(html.encode()) < 1_500_000
        columns = [int(r["column"]) for r in rows(html, "column")]
        assert len(columns) <= 500 and columns == sorted(columns)
        seen = columns + seen
        earlier = re.search(r'rel="prev" href="(\?[^"]*)"', html)
        path = "/networks/long/timeline" + earlier.group(1) if earlier else ""
    assert seen == list(range(1, 1204))
    html = page(console, "/networks/long/timeline?at=600")
    assert 'class="here"' in html
    assert 600 in [int(r["column"]) for r in rows(html, "column")]


@pytest.mark.parametrize(
    ("query", "said"),
    [("at=0", "at: position 0 is out of range"), ("upto=x", "upto: 'x' is not a whole number")],
)
def test_a_timeline_asked_for_nowhere_is_400(console, query, said):
    code, html, _ = console.get(f"/networks/acme/timeline?{query}")
    assert code == 400 and said in markup.unescape(html), html


# --- the preview ------------------------------------------------------------------------


def cli_preview(store: str, network: str, event: dict[str, Any]) -> dict[str, Any]:
    """`ctilink preview --then-restart --json` as a process."""
    done = subprocess.run(
        [
            *(sys.executable, "-m", "ctilink.adapters.cli", "preview", network, json.dumps(event)),
            *("--then-restart", "--json", "--store", store),
        ],
        capture_output=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    return json.loads(done.stdout)


def diff_rows(changes: dict[str, Any]) -> list[dict[str, str]]:
    """A preview's component changes as the page's data-* rows."""
    return [
        {
            "system": c["system"],
            "component": c["component"],
            "before": c["before"]["state"] if c["before"] else "",
            "after": c["after"]["state"] if c["after"] else "",
            "before-via": (c["before"]["via"] or "") if c["before"] else "",
            "after-via": (c["after"]["via"] or "") if c["after"] else "",
        }
        for c in changes["components"]
    ]


def section(html: str, name: str) -> str:
    """The HTML of one preview section."""
    start = html.index(f'data-preview="{name}"')
    return html[start : html.index("</section>", start)]


def test_the_panel_offers_what_the_mode_machine_allows_now_and_only_now_m3_m6(console):
    offered = {
        network: [
            (r["preview"], r["enabled"])
            for r in rows(page(console, f"/networks/{network}"), "preview")
        ]
        for network in ("globex", "acme", "initech")
    }
    assert offered["globex"] == [  # legacy_auto: Auto Provisioning shown, conversion possible
        ("converted_to_central", ""),
        ("auto_provisioning_set", "true"),
        ("auto_provisioning_set", "false"),
    ]
    assert offered["acme"] == [("central_cti_link_set", "true"), ("central_cti_link_set", "false")]
    assert offered["initech"] == offered["acme"]  # the machine allows it; M2 refuses it
    assert rows(page(console, "/networks/globex?at=3"), "preview") == []  # not on the past


def test_the_conversion_preview_is_ctilink_previews_and_commits_nothing_m4_m5(story, console):
    untouched = heads(story["store"])

    html = page(console, "/networks/globex/preview?event=converted_to_central&then_restart=1")

    expected = cli_preview(story["store"], "globex", {"type": "converted_to_central"})
    (outcome,) = rows(html, "outcome")
    assert outcome == {"outcome": "accepted", "code": ""}
    for name, key in (("at-once", "at_once"), ("after-restart", "after_restart")):
        shown = section(html, name)
        assert f'data-position="{expected[key]["position"]}"' in shown
        assert rows(shown, "after-via") == diff_rows(expected[key])
        changed = [
            (r["change"], r["kind"], r["target"], r["origin"]) for r in rows(shown, "change")
        ]
        providers = expected[key]["providers"]
        assert sorted(changed) == sorted(
            [("removed", p["kind"], p["target"], p["origin"]) for p in providers["removed"]]
            + [("added", p["kind"], p["target"], p["origin"]) for p in providers["added"]]
        )
    assert "data-change" not in section(html, "at-once")  # M5: providers follow the restart
    assert heads(story["store"]) == untouched


def test_a_setting_the_rules_refuse_is_previewed_as_its_rejection_m2(console):
    html = page(console, "/networks/initech/preview?event=central_cti_link_set&enabled=true")

    (outcome,) = rows(html, "outcome")
    assert outcome == {"outcome": "rejected", "code": "central_not_available"}
    assert 'data-preview="at-once"' not in html


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("event=failover", "event: 'failover' is not one of"),
        ("event=central_cti_link_set", "enabled: '' is not true or false"),
        ("event=central_cti_link_set&enabled=yes", "enabled: 'yes' is not true or false"),
        ("event=converted_to_central&enabled=true", "converted_to_central takes none"),
        ("event=converted_to_central&then_restart=2", "then_restart: '2' is not 1 or 0"),
    ],
)
def test_a_preview_asked_wrongly_is_400_naming_the_parameter(console, query, said):
    code, html, _ = console.get(f"/networks/globex/preview?{query}")
    assert code == 400 and said in markup.unescape(html), html


# --- rejections from the store ------------------------------------------------------------


def kept(store: str) -> list[tuple[int, Any]]:
    """Every rejection the store keeps, newest first."""
    with closing(open_service(store, create=False)) as service:
        return list(reversed(rejections(service.recorder, limit=100_000)))


def shown_rejections(console: Any, query: str) -> list[dict[str, str]]:
    """Every rejection the page lists for a query, following its pages."""
    found, path = [], f"/rejections?{query}"
    while path:
        html = page(console, path)
        found += rows(html, "rejection")
        following = re.search(r'rel="next" href="(\?[^"]*)"', html)
        path = "/rejections" + following.group(1).replace("&amp;", "&") if following else ""
    return found


def test_the_rejections_page_lists_every_rejection_the_store_keeps_newest_first_a_page_at_a_time(
    story, console
):
    every = kept(story["store"])
    assert len(every) == 126  # 122 from the first run, 4 from the second

    found = shown_rejections(console, "")

    assert [int(r["rejection"]) for r in found] == [identity for identity, _ in every]
    assert [(r["network"], r["code"], r["event-id"], r["source"]) for r in found] == [
        (r.network or "", r.code, r.event_id or "", r.source or "") for _, r in every
    ]
    assert len(rows(page(console, "/rejections"), "rejection")) == 100


@pytest.mark.parametrize(
    ("query", "wanted"),
    [
        ("network=initech", lambda r, t: r.network == "initech"),
        ("code=invalid", lambda r, t: r.code == "invalid"),
        (
            "network=acme&code=unknown_system",
            lambda r, t: (r.network, r.code) == ("acme", "unknown_system"),
        ),
        ("since={between}", lambda r, t: r.received >= t),
        ("until={between}", lambda r, t: r.received <= t),
        (
            "code=unknown_user&since={between}",
            lambda r, t: r.code == "unknown_user" and r.received >= t,
        ),
        ("network=nobody", lambda r, t: False),
    ],
)
def test_the_rejections_are_filtered_by_network_code_and_time(story, console, query, wanted):
    between = story["between"]
    asked = query.replace("{between}", quote(between.isoformat()))

    found = shown_rejections(console, asked)

    expected = [identity for identity, r in kept(story["store"]) if wanted(r, between)]
    assert [int(r["rejection"]) for r in found] == expected
    if "since" in query or "until" in query:
        assert 0 < len(expected) < 126  # the time parts the two runs


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("network=%3Cb%3E", "network: '<b>' is not a network name"),
        ("code=nope", "code: 'nope' is not one of invalid"),
        ("since=yesterday", "since: 'yesterday' is not an RFC 3339 time"),
        ("until=9999-12-31T23:59:59-01:00", "until: "),
        ("before=x", "before: 'x' is not a whole number"),
    ],
)
def test_a_rejections_filter_with_no_answer_is_400_naming_it(console, query, said):
    code, html, _ = console.get(f"/rejections?{query}")
    assert code == 400 and said in markup.unescape(html), html
