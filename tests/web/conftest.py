"""`ctilink web` as a process on a free port, and the pages' data-* rows read back."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


class Console:
    """A running `ctilink web`."""

    def __init__(self, store: str, *extra: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ctilink.adapters.cli", "web", "--store", store, *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()
        assert "listening on http://" in line, (line, self.process.stderr.read())  # type: ignore[union-attr]
        self.url = line.split("listening on ", 1)[1].strip().rstrip("/")

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, Any]:
        """(status, body, headers) of one GET, redirects not followed."""
        request = urllib.request.Request(self.url + path, headers=headers or {})
        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(request, timeout=30) as answer:
                return answer.status, answer.read().decode(), answer.headers
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(), error.headers

    def post(self, path: str, body: bytes) -> tuple[int, str, Any]:
        """(status, body, headers) of one form POST, redirects not followed."""
        request = urllib.request.Request(
            self.url + path,
            data=body,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.build_opener(NoRedirect).open(request, timeout=30) as answer:
                return answer.status, answer.read().decode(), answer.headers
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(), error.headers

    def stop(self) -> None:
        """SIGTERM, and wait."""
        self.process.terminate()
        self.process.wait(30)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are answers to check, not to follow."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@pytest.fixture
def start_console() -> Iterator[Any]:
    """Start consoles on stores; all stopped after the test."""
    yield from consoles()


@pytest.fixture(scope="module")
def start_console_module() -> Iterator[Any]:
    """Start consoles on stores; all stopped after the module."""
    yield from consoles()


def consoles() -> Iterator[Any]:
    """A starter of consoles, and the stop of every one it started."""
    started: list[Console] = []

    def start(
        store: str, *extra: str, env: dict[str, str] | None = None, fixed: bool = False
    ) -> Console:
        listen = () if fixed else ("--listen", "127.0.0.1:0")  # fixed: `extra` says where
        console = Console(store, *listen, *extra, env=env)
        started.append(console)
        return console

    yield start
    for console in started:
        if console.process.poll() is None:
            console.stop()


class Rows(HTMLParser):
    """Every element's data-* attributes, by the attribute that marks its kind."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # data-live marks what a live page swaps in: not part of the contract.
        data = {k[5:]: v or "" for k, v in attrs if k.startswith("data-") and k != "data-live"}
        if data:
            self.found.append(data)


def rows(html: str, marker: str) -> list[dict[str, str]]:
    """The elements carrying data-<marker>, their data-* attributes, in page order."""
    parser = Rows()
    parser.feed(html)
    return [row for row in parser.found if marker in row]


def wait_until(check: Any, timeout: float = 10.0) -> None:
    """Poll until `check()` is true."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def hostile_events(hostile: str) -> list[dict[str, Any]]:
    """Network `evil`, with `hostile` in every field a page shows: id, actor, address, names."""
    return [
        {
            "type": "portal_installed",
            "id": hostile,
            "network": "evil",
            "actor": hostile,
            "platform": "linux_server_edition",
        },
        {
            "type": "system_added",
            "id": "s",
            "network": "evil",
            "system": "pri",
            "role": "primary",
            "platform": "linux",
            "address": hostile,
            "actor": hostile,
        },
        {
            "type": "voicemail_discovered",
            "id": "v",
            "network": "evil",
            "system": "pri",
            "address": hostile,
        },
        {"type": "user_homed", "id": "u", "network": "evil", "user": hostile, "system": "pri"},
        {
            "type": "directory_changed",
            "id": "d",
            "network": "evil",
            "system": "pri",
            "entries": [{"name": hostile, "number": hostile}],
        },
    ]


def hidden_events() -> list[dict[str, object]]:
    """Network `lies`: an actor, a user and an address that would lie on screen."""
    return [
        {
            "type": "portal_installed",
            "id": "i",
            "network": "lies",
            "platform": "linux_server_edition",
            "actor": "\u202enimda",
        },
        {
            "type": "system_added",
            "id": "s",
            "network": "lies",
            "system": "pri",
            "role": "primary",
            "platform": "linux",
            "address": "10.0.0.1",
        },
        {
            "type": "voicemail_discovered",
            "id": "v",
            "network": "lies",
            "system": "pri",
            "address": "a\rb\r\nc\u2028",
        },
        {"type": "user_homed", "id": "u", "network": "lies", "user": "b\u200bob", "system": "pri"},
        {"type": "link_changed", "id": "l", "network": "lies", "system": "pri"}
        | {"component": "dsml", "up": True},
        {"type": "personal_directory_changed", "id": "p", "network": "lies", "system": "pri"}
        | {"user": "b\u200bob", "entries": [{"name": "\u202eevil", "number": "1\r2"}]},
    ]


def feed(store: str, *lines: str) -> subprocess.CompletedProcess[bytes]:
    """`ctilink ingest -` from another process, as a user feeds a file, whatever it decides."""
    return subprocess.run(
        [sys.executable, "-m", "ctilink.adapters.cli", "ingest", "-", "--store", store],
        input=("\n".join(lines) + "\n").encode(),
        capture_output=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
