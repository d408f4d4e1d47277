"""Text shown as it is (issue 23.5), relative redirects (23.6) and the listener's settings.

Control, format and bidi characters (Unicode Cc, Cf, Zl, Zp) show as the escape
of their code point in the console's text; `data-*` attributes carry the stored
value exactly; `--json` stays exact.
"""

from __future__ import annotations

import argparse
import configparser
import json
import subprocess
import sys
import unicodedata
from contextlib import closing

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctilink.adapters.store.selection import open_service
from ctilink.adapters.text import cut, visible
from ctilink.adapters.web.limits import (
    add_limit_arguments,
    default_connections,
    default_live,
    limits_of,
)
from ctilink.adapters.web.pages import exact
from tests.support import decode
from tests.web.conftest import ROOT, hidden_events, rows

HIDDEN = {"Cc", "Cf", "Zl", "Zp"}


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\u202enimda", "\\u202enimda"),
        ("b\u200bob", "b\\u200bob"),
        ("a\rb\nc\td", "a\\u000db\\u000ac\\u0009d"),
        ("\x1b[2J\x00\x7f\x85", "\\u001b[2J\\u0000\\u007f\\u0085"),
        ("line\u2028para\u2029", "line\\u2028para\\u2029"),
        ("tag\U000e0041", "tag\\U000e0041"),
        ("Müller 日本 \U0001f600 a\\u202eb", "Müller 日本 \U0001f600 a\\u202eb"),
    ],
)
def test_control_format_and_separator_characters_show_as_their_code_points(text, shown):
    assert visible(text) == shown


@given(st.text())
def test_nothing_hidden_is_left_and_text_without_any_is_untouched(text):
    assert not any(unicodedata.category(c) in HIDDEN for c in visible(text))
    plain = "".join(c for c in text if unicodedata.category(c) not in HIDDEN)
    assert visible(plain) == plain


def test_a_long_value_is_cut_with_a_marker_saying_how_long_it_was():
    assert cut("x" * 256) == "x" * 256
    assert cut("x" * 1_030_000) == "x" * 256 + "…[cut: 1,030,000 chars]"


def test_an_attribute_carries_a_carriage_return_as_a_reference_html_keeps():
    assert str(exact('a\rb\n"<&\u202e')) == "a&#13;b\n&#34;&lt;&amp;\u202e"


@pytest.fixture(scope="module")
def lies_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite store holding `hidden_events`."""
    store = str(tmp_path_factory.mktemp("lies") / "ctilink.db")
    with closing(open_service(store)) as service:
        outcomes = service.ingest([decode(e) for e in hidden_events()])
    assert {o.outcome for o in outcomes} == {"accepted"}, outcomes
    return store


def test_the_console_shows_hidden_characters_escaped_and_never_as_they_would_render(
    lies_store, start_console
):
    console = start_console(lies_store)
    for path in ("/networks/lies/log", "/networks/lies/audit", "/networks/lies/directory"):
        code, html, _ = console.get(path)
        assert code == 200
        assert not any(c in _text_of(html) for c in "\u202e\u200b\u2028\r"), path
    _, log, _ = console.get("/networks/lies/log")
    assert "<td>\\u202enimda</td>" in log  # the actor as it is, not "admin"
    assert "user=&#34;b\\u200bob&#34;" in log
    _, directory, _ = console.get("/networks/lies/directory")
    assert "<td>b\\u200bob</td>" in directory and "<td>\\u202eevil</td>" in directory


def _text_of(html: str) -> str:
    """The page's text, its tags and their attributes left out."""
    from html.parser import HTMLParser

    found: list[str] = []

    class Text(HTMLParser):
        def handle_data(self, data: str) -> None:
            found.append(data)

    Text(convert_charrefs=True).feed(html)
    return "".join(found)


def test_data_attributes_carry_the_stored_value_exactly(lies_store, start_console):
    console = start_console(lies_store)
    _, html, _ = console.get("/networks/lies")
    assert "\r" not in html  # a raw carriage return would be read as a line feed
    (voicemail,) = [p for p in rows(html, "kind") if p["kind"] == "voicemail"]
    assert voicemail["target"] == "a\rb\r\nc\u2028"
    _, html, _ = console.get("/networks/lies/directory")
    assert rows(html, "user") == [{"user": "b\u200bob", "name": "\u202eevil", "number": "1\r2"}]


def test_json_output_stays_exact(lies_store):
    store = ("--store", lies_store)
    done = subprocess.run(
        [sys.executable, "-m", "ctilink.adapters.cli", "status", "lies", "--json", *store],
        capture_output=True,
        cwd=ROOT,
        check=True,
    )
    (voicemail,) = [p for p in json.loads(done.stdout)["providers"] if p["kind"] == "voicemail"]
    assert voicemail["target"] == "a\rb\r\nc\u2028"


# --- redirects ------------------------------------------------------------------------


def test_a_trailing_slash_is_redirected_relative_to_this_site_whatever_the_host_says(
    lies_store, start_console
):
    console = start_console(lies_store, "--token", "t")
    headers = {"host": "evil.example", "authorization": "Bearer t"}
    code, _, answer = console.get("/networks/lies/log/?after=1&type=x", headers)
    assert code == 307 and answer["location"] == "/networks/lies/log?after=1&type=x"
    code, _, answer = console.get("/networks/lies/", headers)
    assert code == 307 and answer["location"] == "/networks/lies"
    for path in ("//evil.example/", "/nowhere/", "/networks/lies/nothing/"):
        code, _, answer = console.get(path, headers)
        assert code == 404 and "location" not in answer, path


# --- the listener's settings -----------------------------------------------------------


def test_the_caps_default_to_shares_of_the_file_descriptor_limit():
    assert default_connections(256) == 96
    assert default_connections(1024) == 480
    assert default_connections(65536) == 4096  # however high the limit
    assert default_connections(16) == 8
    assert default_live(480) == 120
    assert limits_of(None, 1024).max_connections == 480
    timeouts = limits_of(None, 1024)
    assert (timeouts.idle_timeout, timeouts.request_timeout, timeouts.write_timeout) == (
        15.0,
        10.0,
        30.0,
    )


def test_settings_come_from_options_then_the_environment(monkeypatch):
    parser = argparse.ArgumentParser()
    add_limit_arguments(parser)
    monkeypatch.setenv("CTILINK_HTTP_MAX_LIVE", "7")
    monkeypatch.setenv("CTILINK_HTTP_IDLE_TIMEOUT", "2.5")
    found = limits_of(parser.parse_args(["--http-max-connections", "50"]), 1024)
    assert (found.max_connections, found.max_live, found.idle_timeout) == (50, 7, 2.5)
    found = limits_of(parser.parse_args(["--http-max-live", "3"]), 1024)
    assert found.max_live == 3


@pytest.mark.parametrize(
    ("argument", "env", "said"),
    [
        (("--http-max-connections", "0"), {}, "'0' is not a number above 0"),
        (("--http-idle-timeout", "nan"), {}, "'nan' is not a number above 0"),
        ((), {"CTILINK_HTTP_MAX_LIVE": "lots"}, "$CTILINK_HTTP_MAX_LIVE: 'lots' is not"),
    ],
)
def test_a_setting_that_cannot_work_is_one_line_naming_it(lies_store, argument, env, said):
    import os

    done = subprocess.run(
        [sys.executable, "-m", "ctilink.adapters.cli", "web", "--store", lies_store, *argument],
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, **env},
        timeout=60,
        check=False,
    )
    (line,) = done.stderr.decode().splitlines()
    assert done.returncode == 2 and said in line, done


def test_the_systemd_unit_gives_the_listener_room_for_its_default_caps():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read_string((ROOT / "infra" / "systemd" / "ctilink.service").read_text())
    limit = int(unit["Service"]["LimitNOFILE"])
    assert default_connections(limit) == 4096
