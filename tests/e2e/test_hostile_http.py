"""Hostile HTTP clients against the real processes (`ctilink web`, `ctilink serve --http`).

Each process runs with a low file-descriptor limit (`ulimit -n 256`) and is held
by more idle and slow connections than it has descriptors; floods go over the
caps; the store holds the largest values an event can carry. On SQLite and on
PostgreSQL. Issue 23.1, 23.2.
"""

from __future__ import annotations

import contextlib
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from ctilink.adapters.store.selection import open_service
from ctilink.domain import messages as m
from tests.e2e.conftest import ROOT

DESCRIPTORS = 256  # the processes' `ulimit -n`
IDLE, SLOW = 400, 100  # connections held against the listener: more than DESCRIPTORS
TOKEN = "hostile-test-token"
LOG_GROWTH = 100_000  # bytes the process may log while it is flooded
PAGE_BYTES = 4_000_000  # no page larger, whatever the events hold


def ctilink(*args: str) -> list[str]:
    """A ctilink command line."""
    return [sys.executable, "-m", "ctilink.adapters.cli", *args]


class Process:
    """A ctilink process with few descriptors, its output in a log file."""

    def __init__(self, command: list[str], log: Path, ready: str) -> None:
        self.log = log
        # `ulimit -n 256` by the shell, which then becomes the command (no preexec_fn:
        # the test process has threads).
        limited = ["sh", "-c", f'ulimit -n {DESCRIPTORS} && exec "$@"', "ctilink", *command]
        with log.open("wb") as out:
            self.popen = subprocess.Popen(limited, stdout=out, stderr=out, cwd=ROOT)
        deadline = time.monotonic() + 60
        while ready not in log.read_text(errors="replace"):
            assert self.popen.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        text = log.read_text(errors="replace")
        self.base = "http://127.0.0.1:" + text.split("http://127.0.0.1:", 1)[1].split("/")[0]
        self.port = int(self.base.rsplit(":", 1)[1])

    def get(self, path: str, token: str | None = TOKEN) -> tuple[int, bytes, float]:
        """(status, body, seconds) of one GET."""
        headers = {"authorization": f"Bearer {token}"} if token else {}
        request = urllib.request.Request(self.base + path, headers=headers)
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, answer.read(), time.monotonic() - started
        except urllib.error.HTTPError as error:
            return error.code, error.read(), time.monotonic() - started

    def stop(self) -> int:
        """SIGTERM; the exit status."""
        self.popen.terminate()
        return self.popen.wait(30)


def console(store: str, tmp_path: Path, *extra: str) -> Process:
    """`ctilink web` on the store, with a token."""
    command = ctilink("web", "--store", store, "--listen", "127.0.0.1:0", "--token", TOKEN)
    return Process([*command, *extra], tmp_path / "web.log", "listening on")


class Flood:
    """Connections held against a port: idle ones that never send a byte, slow ones that
    send a request head a byte a second."""

    def __init__(self, port: int, idle: int = IDLE, slow: int = SLOW) -> None:
        self.idle = [self._connect(port) for _ in range(idle)]
        self.slow = [self._connect(port) for _ in range(slow)]
        self._stop = threading.Event()
        self._dripping = threading.Thread(target=self._drip, daemon=True)
        self._dripping.start()

    @staticmethod
    def _connect(port: int) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.setblocking(False)
        return sock

    def _drip(self) -> None:
        head = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"x" * 1000
        sent = 0
        while not self._stop.wait(1.0):
            for sock in self.slow:
                with contextlib.suppress(OSError):
                    sock.send(head[sent : sent + 1])
            sent = min(sent + 1, len(head) - 1)

    def closed(self) -> int:
        """How many of the connections the server has closed."""
        return sum(_closed(sock) for sock in [*self.idle, *self.slow])

    def close(self) -> None:
        """Stop dripping; close every socket."""
        self._stop.set()
        self._dripping.join()
        for sock in [*self.idle, *self.slow]:
            sock.close()


def _closed(sock: socket.socket) -> bool:
    """Whether the peer closed the connection (or reset it)."""
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


@contextlib.contextmanager
def flooded(port: int) -> Iterator[Flood]:
    """A flood held for the block."""
    flood = Flood(port)
    try:
        yield flood
    finally:
        flood.close()


def wait_closed(flood: Flood, seconds: float) -> float:
    """Seconds until the server has closed every flooding connection (fails past `seconds`)."""
    started = time.monotonic()
    total = IDLE + SLOW
    while (closed := flood.closed()) < total:
        assert time.monotonic() - started < seconds, f"{closed} of {total} closed"
        time.sleep(0.5)
    return time.monotonic() - started


@pytest.fixture(scope="module")
def scenario_store(new_store) -> str:  # type: ignore[no-untyped-def]
    """The example scenario in a store of this module's kind."""
    store = new_store()
    done = subprocess.run(
        ctilink("ingest", str(ROOT / "examples/scenario.jsonl"), "--store", store),
        capture_output=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return str(store)


def test_more_idle_and_slow_connections_than_descriptors_leave_an_authorised_reader_answered_and_are_closed_within_a_minute(  # noqa: E501
    scenario_store, tmp_path
):
    web = console(scenario_store, tmp_path)  # the default caps and timeouts
    limits = Path(f"/proc/{web.popen.pid}/limits").read_text()
    assert f"Max open files            {DESCRIPTORS}" in limits
    logged = web.log.stat().st_size
    try:
        with flooded(web.port) as flood:
            for _ in range(5):
                code, body, seconds = web.get("/networks/acme")
                assert code == 200 and b'data-mode="' in body
                assert seconds < 2.0, seconds
            assert flood.closed() > 0  # the oldest idle ones made room
            wait_closed(flood, 60)
            code, _, seconds = web.get("/")
            assert code == 200 and seconds < 2.0
        grown = web.log.stat().st_size - logged
        assert grown < LOG_GROWTH, web.log.read_text()[-2000:]
        assert "Traceback" not in web.log.read_text()
    finally:
        assert web.stop() == 0


def test_running_out_of_descriptors_is_one_log_line_an_interval_and_readers_are_still_answered(
    scenario_store, tmp_path
):
    # A cap above the descriptor limit: accept() itself fails with EMFILE.
    web = console(scenario_store, tmp_path, "--http-max-connections", "5000")
    logged = web.log.stat().st_size
    try:
        with flooded(web.port) as flood:
            code, _, seconds = web.get("/networks/globex")
            assert code == 200 and seconds < 2.0, seconds
            time.sleep(1)
            code, _, seconds = web.get("/networks/globex")
            assert code == 200 and seconds < 2.0, seconds
            wait_closed(flood, 60)
        text = web.log.read_text()
        shortages = text.count("cannot take a connection: Too many open files")
        assert 1 <= shortages <= 8, text  # one line a 10 s interval, with a count
        assert web.log.stat().st_size - logged < LOG_GROWTH
        assert "Traceback" not in text
    finally:
        assert web.stop() == 0


def test_short_timeouts_close_idle_and_slow_connections_as_configured(scenario_store, tmp_path):
    web = console(
        scenario_store,
        tmp_path,
        *("--http-idle-timeout", "2", "--http-request-timeout", "3"),
        *("--http-max-connections", "1000"),  # nothing displaced: the timeouts close them
    )
    try:
        flood = Flood(web.port, idle=50, slow=50)
        try:
            time.sleep(1)
            assert flood.closed() == 0
            started = time.monotonic()
            while flood.closed() < 100:
                assert time.monotonic() - started < 10
                time.sleep(0.2)
        finally:
            flood.close()
    finally:
        assert web.stop() == 0


def test_a_new_connection_at_the_cap_displaces_the_one_idle_the_longest(scenario_store, tmp_path):
    web = console(scenario_store, tmp_path, "--http-max-connections", "8")
    try:
        flood = Flood(web.port, idle=8, slow=0)
        try:
            time.sleep(0.5)  # all eight taken, in the order they came
            code, _, seconds = web.get("/networks/acme")  # the ninth: served at once
            assert code == 200 and seconds < 2.0
            assert [_closed(sock) for sock in flood.idle] == [True] + [False] * 7
        finally:
            flood.close()
    finally:
        assert web.stop() == 0


def stream(port: int, path: str) -> tuple[socket.socket, bytes]:
    """A live stream asked for; the socket and its answer's first line."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()
    )
    return sock, sock.recv(4096).split(b"\r\n", 1)[0]


def test_live_streams_past_their_cap_get_503_and_a_stream_ended_frees_its_place(
    scenario_store, tmp_path
):
    web = console(scenario_store, tmp_path, "--http-max-live", "4")
    try:
        held = [stream(web.port, "/live?network=acme") for _ in range(4)]
        assert {line for _, line in held} == {b"HTTP/1.1 200 OK"}
        refused, line = stream(web.port, "/live")
        assert line == b"HTTP/1.1 503 Service Unavailable"
        refused.close()
        code, _, _ = web.get("/networks/acme")  # pages are still served
        assert code == 200
        held.pop()[0].close()
        deadline = time.monotonic() + 10
        while (again := stream(web.port, "/live"))[1] != b"HTTP/1.1 200 OK":
            again[0].close()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        for sock, _ in [*held, again]:
            sock.close()
    finally:
        assert web.stop() == 0


def test_with_every_connection_busy_a_new_one_is_answered_503_at_once(scenario_store, tmp_path):
    web = console(scenario_store, tmp_path, "--http-max-connections", "8", "--http-max-live", "8")
    try:
        held = [stream(web.port, "/live") for _ in range(8)]  # busy: never displaced
        assert {line for _, line in held} == {b"HTTP/1.1 200 OK"}
        sock = socket.create_connection(("127.0.0.1", web.port), timeout=10)
        assert sock.recv(4096).startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        sock.close()
        held.pop()[0].close()
        deadline = time.monotonic() + 10
        while True:
            code, _, _ = web.get("/networks/acme")
            if code == 200:
                break
            assert time.monotonic() < deadline
            time.sleep(0.1)
        for sock, _ in held:
            sock.close()
        assert "refused a connection: all 8 are busy" in web.log.read_text()
    finally:
        assert web.stop() == 0


# --- the largest values an event carries ------------------------------------------------

LONG = 1_030_000  # characters of a name in a store from before SPEC v1.1's bounds


def largest_events() -> list[m.Message]:
    """Network `lt`: a directory change of 10,000 entries (system p), 30 with names of a
    million characters (system q; built as structs: an older store holds them, a v1.1
    decode refuses them), 250 personal entries, and every text field at its longest, made
    of characters that HTML escaping lengthens most."""
    quote = '"' * 256
    events: list[m.Message] = [
        m.PortalInstalled(id="i", network="lt", platform="linux_server_edition", actor=quote),
        m.SystemAdded(
            id="s", network="lt", system="p", role="primary", platform="linux", address=quote
        ),
        m.LinkChanged(id="l", network="lt", system="p", component="dsml", up=True),
        m.SystemAdded(
            id="q", network="lt", system="q", role="expansion", platform="linux", address=quote
        ),
        m.LinkChanged(id="lq", network="lt", system="q", component="dsml", up=True),
        m.UserHomed(id="u", network="lt", user=quote, system="p"),
        m.PersonalDirectoryChanged(
            id="pd",
            network="lt",
            system="p",
            user=quote,
            entries=tuple(m.PersonalEntry(f"{n:03d}{quote}", quote) for n in range(250)),
        ),
        m.DirectoryChanged(
            id="wide",
            network="lt",
            system="p",
            entries=tuple(m.Entry(f"{n:05d}{quote}", quote) for n in range(10_000)),
        ),
    ]
    events += [
        m.DirectoryChanged(
            id=f"d{n}",
            network="lt",
            system="q",
            entries=(m.Entry(f"{n}" + "<" * LONG, "&" * LONG),),
        )
        for n in range(30)
    ]
    return events


@pytest.fixture(scope="module")
def largest_store(new_store) -> str:  # type: ignore[no-untyped-def]
    """A store holding `largest_events`."""
    store = str(new_store())
    with closing(open_service(store)) as service:
        outcomes = service.ingest(largest_events())
    assert {o.outcome for o in outcomes} == {"accepted"}, outcomes[:3]
    return store


def test_no_page_exceeds_a_few_megabytes_whatever_the_events_hold(largest_store, tmp_path):
    web = console(largest_store, tmp_path)
    try:
        pages = [
            "/",
            "/networks/lt",
            "/networks/lt?at=5",
            "/networks/lt/log",
            "/networks/lt/log?type=directory_changed",
            "/networks/lt/directory",
            "/networks/lt/directory?page=2",
            "/networks/lt/audit",
            "/networks/lt/diff?from=1&to=38",
        ]
        for path in pages:
            code, body, _ = web.get(path)
            assert code == 200, (path, body[:300])
            assert len(body) < PAGE_BYTES, (path, len(body))
        _, log, _ = web.get("/networks/lt/log")
        assert f"…[cut: {LONG + 1:,} chars]".encode() in log  # the long values are cut, visibly
        assert b"[and 9,990 more]" in log  # a long list is its first items and a count
        _, directory, _ = web.get("/networks/lt/directory?page=51")
        assert f"…[cut: {LONG:,} chars]".encode() in directory
        assert b'rel="prev"' in directory and b'rel="next"' not in directory
        assert "Traceback" not in web.log.read_text()
    finally:
        assert web.stop() == 0


def _reset(sock: socket.socket) -> bool:
    """Whether the server has dropped the connection, looked at without reading from it
    (Linux's TCP_INFO: its first byte is the state, 1 while established)."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] != 1


def resident_mb(pid: int) -> float:
    """A process's resident memory, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_large_pages_hold_up_nothing_else_and_clients_that_never_read_are_dropped(
    largest_store, tmp_path
):
    web = console(largest_store, tmp_path, "--http-write-timeout", "3")
    try:
        web.get("/networks/lt/directory")
        before = resident_mb(web.popen.pid)
        stalled = []
        for _ in range(3):  # each asks for the largest page five times and never reads
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", web.port))
            ask = b"GET /networks/lt/directory HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            sock.sendall((ask + f"Authorization: Bearer {TOKEN}\r\n\r\n".encode()) * 5)
            stalled.append(sock)
        code, _, seconds = web.get("/static/console.css")
        assert code == 200 and seconds < 2.0, seconds
        held = resident_mb(web.popen.pid) - before
        for sock in stalled:  # once its answers fill the buffers, 3 s more and it is dropped
            sock.setblocking(False)
            deadline = time.monotonic() + 60
            while not _reset(sock):
                assert time.monotonic() < deadline
                time.sleep(0.5)
            sock.close()
        assert held < 150, held  # MB for three clients that do not read
        code, _, seconds = web.get("/networks/lt/log")
        assert code == 200 and seconds < 2.0
    finally:
        assert web.stop() == 0


# --- serve --http: nothing HTTP clients do slows the NATS service -----------------------


def open_and_drop(port: int, stop: threading.Event) -> None:
    """New connections without pause, each sending half a request head or garbage, then
    dropped, until `stop`."""
    sent = [b"GET /networks/acme HTTP/1.1\r\nHost: 127", b"\x16\x03\x01\x02\x00\x01", b"GET /"]
    n = 0
    while not stop.is_set():
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 5) as s:
            s.sendall(sent[n % len(sent)])
        n += 1


async def test_a_flood_of_http_connections_leaves_the_nats_api_fast_and_the_console_answering(
    scenario_store, tmp_path, nats_server, nc
):
    import asyncio

    serve = await asyncio.to_thread(
        Process,
        ctilink(
            *("serve", "--store", scenario_store, "--nats", nats_server.url),
            *("--http", "127.0.0.1:0", "--http-token", TOKEN, "--publisher-in-process"),
        ),
        tmp_path / "serve.log",
        "ready:",
    )

    async def api_seconds(count: int) -> list[float]:
        found = []
        for _ in range(count):
            started = time.perf_counter()
            reply = await nc.request("ctilink.api.status", b'{"network":"acme"}', timeout=10)
            found.append(time.perf_counter() - started)
            assert json.loads(reply.data)["network"] == "acme"
        return found

    try:
        logged = serve.log.stat().st_size
        idle = await api_seconds(100)
        flood = await asyncio.to_thread(Flood, serve.port)
        churning = threading.Event()
        churn = threading.Thread(target=open_and_drop, args=(serve.port, churning), daemon=True)
        churn.start()
        try:
            flooded_api = await api_seconds(300)
            churning.set()
            churn.join()
            code, _, seconds = await asyncio.to_thread(serve.get, "/networks/acme")
            assert code == 200 and seconds < 2.0, seconds
            await asyncio.to_thread(wait_closed, flood, 60)
        finally:
            churning.set()
            flood.close()
        p99 = sorted(flooded_api)[int(len(flooded_api) * 0.99)]
        print(
            f"ctilink.api.status idle p50 {statistics.median(idle) * 1e3:.1f} ms, p99 "
            f"{sorted(idle)[98] * 1e3:.1f} ms; flooded p50 "
            f"{statistics.median(flooded_api) * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms"
        )
        assert p99 < 1.0  # a generous bound: bench/http_fuzz.py --serve measures it
        assert serve.log.stat().st_size - logged < LOG_GROWTH
        assert "Traceback" not in serve.log.read_text()
    finally:
        assert await asyncio.to_thread(serve.stop) == 0
