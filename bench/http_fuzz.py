"""An HTTP fuzz of the console: hypothesis-made requests over every route and parameter.

Each request is sent over raw sockets (so that anything HTTP/1.1 can carry, and
some of what it cannot, reaches the server): methods, paths built from every
route with names and positions good and bad, every query parameter the pages
read (and others, repeated, empty, huge, with control, bidi and zero-width
characters), Host, Accept, Cookie and Authorization headers, login bodies, and
now and then bytes that are no request at all. Every answer must be an HTTP
response below 500, and the server must log no traceback.

    python -m bench.http_fuzz --requests 100000            # against a console of its own
    python -m bench.http_fuzz --requests 100000 --serve    # against serve --http, timing
                                                           # ctilink.api.status meanwhile
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "fuzz-token"
NETWORKS = ["acme", "globex", "initech", "evil"]
PAGES = ["", "/log", "/directory", "/audit", "/diff", "/timeline", "/preview"]
PARAMETERS = [
    "at",
    "at-time",
    "after",
    "type",
    "page",
    "from",
    "to",
    "effective",
    "name",
    "sort",
    "restart_pending",
    "network",
    "since",
    "next",
    "q",
    "upto",
    "event",
    "enabled",
    "then_restart",
    "code",
    "until",
    "before",
    "rejections",
]
FIXED = [
    "/",
    "/live",
    "/login",
    "/static/console.css",
    "/static/console.js",
    "/static/../app.py",
    "/static/%2e%2e/app.py",
    "/healthz",
    "/readyz",
    "/metrics",
    "/rejections",
    "//networks/acme",
    "/networks//log",
    "/nowhere",
    "*",
]
HOSTILE = [
    "\u202enimda",
    "b\u200bob",
    "a\rb",
    "a\nb",
    "\x00",
    "\x1b[2J",
    "\ufeff",
    "\U0001f600",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "%00",
    "../../etc/passwd",
    "9" * 30,
    "-1",
    "0",
    "1e9",
    "2024-03-04T10:00:00Z",
    "2024-03-04T10:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "0001-01-01T00:00:00+01:00",
    "converted_to_central",
    "central_cti_link_set",
    "auto_provisioning_set",
    "true",
    "false",
    "invalid",
    "cm",
]
MAX_BODY = 8 << 20  # bytes of an answer read at most (a page is far smaller)

texts = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(max_size=40),
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(NETWORKS),
    st.text(alphabet="x\u202e\u200b\r", min_size=200, max_size=5000),
)
networks = st.one_of(
    st.sampled_from(NETWORKS), texts, st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
)


@st.composite
def targets(draw: st.DrawFn) -> bytes:
    """A request target: a route (or not) and a query."""
    if draw(st.integers(0, 3)) == 0:
        path = draw(st.sampled_from(FIXED))
    else:
        path = "/networks/" + quote(draw(networks), safe="") + draw(st.sampled_from(PAGES))
    if draw(st.integers(0, 5)) == 0:
        path += "/"
    pairs = draw(
        st.lists(
            st.tuples(st.one_of(st.sampled_from(PARAMETERS), st.text(max_size=8)), texts),
            max_size=5,
        )
    )
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
    raw = path + (f"?{query}" if query else "")
    if draw(st.integers(0, 20)) == 0:  # bytes no URL may hold
        raw += draw(st.sampled_from(["\x7f", " x", "\u00e9", "%", "?#"]))
    return raw.encode("utf-8", "surrogatepass")


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    """One request's bytes."""
    if draw(st.integers(0, 50)) == 0:  # no request at all
        return draw(st.binary(min_size=1, max_size=200)) + b"\r\n\r\n"
    method = draw(st.sampled_from([b"GET"] * 8 + [b"HEAD", b"POST", b"PUT", b"OPTIONS", b"BREW"]))
    headers = [b"Host: " + draw(st.sampled_from([b"127.0.0.1", b"localhost:1", b"evil.example"]))]
    if draw(st.booleans()):
        headers.append(b"Accept: text/html")
    auth = draw(st.sampled_from([TOKEN] * 5 + [None, "wrong", "\u202e"]))
    if auth is not None:
        headers.append(b"Authorization: Bearer " + auth.encode())
    if draw(st.integers(0, 5)) == 0:
        headers.append(b"Cookie: ctilink_token=" + quote(draw(texts)).encode())
    body = b""
    if method == b"POST":
        fields = draw(
            st.lists(st.tuples(st.sampled_from(["token", "next", "x"]), texts), max_size=5)
        )
        body = "&".join(f"{k}={quote(v, safe='')}" for k, v in fields).encode()
        headers.append(b"Content-Type: application/x-www-form-urlencoded")
    if body or method in (b"POST", b"PUT"):
        headers.append(b"Content-Length: " + str(len(body)).encode())
    head = b" ".join([method, draw(targets()), b"HTTP/1.1"])
    return b"\r\n".join([head, *headers, b"", b""]) + body


def ctilink(*args: str) -> list[str]:
    """The command line of a ctilink command, run by this Python."""
    return [sys.executable, "-m", "ctilink.adapters.cli", *args]


class Answer:
    """What came back: the status, the headers, the body's length."""

    def __init__(self, status: int, headers: dict[bytes, bytes], length: int) -> None:
        self.status, self.headers, self.length = status, headers, length


class Client:
    """One keep-alive connection at a time to the server, raw."""

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)
        self.sock: socket.socket | None = None
        self.buffer = b""

    def send(self, request: bytes, head_only: bool) -> Answer | None:
        """Send one request; its answer (None: the connection closed without one)."""
        if self.sock is None:
            self.sock = socket.create_connection(self.address, timeout=30)
            self.buffer = b""
        try:
            self.sock.sendall(request)
            return self._answer(head_only)
        except (ConnectionError, BrokenPipeError):
            self.close()
            return None

    def close(self) -> None:
        """Drop the connection."""
        if self.sock is not None:
            self.sock.close()
        self.sock = None

    def _read(self) -> bytes:
        assert self.sock is not None
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        return chunk

    def _answer(self, head_only: bool) -> Answer:
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._read()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.split(b"\r\n")
        status = int(status_line.split(b" ")[1])
        headers = {}
        for line in lines:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if head_only or headers.get(b"content-type", b"").startswith(b"text/event-stream"):
            self.close()  # a live stream never ends: its head is the answer
            return Answer(status, headers, 0)
        if b"content-length" in headers:
            length = int(headers[b"content-length"])
            while len(self.buffer) < length:
                self.buffer += self._read()
            self.buffer = self.buffer[length:]
        elif headers.get(b"transfer-encoding") == b"chunked":
            length = self._chunked()
        else:  # the body ends with the connection
            length = self._to_the_end()
        if headers.get(b"connection") == b"close":
            self.close()
        return Answer(status, headers, length)

    def _to_the_end(self) -> int:
        assert self.sock is not None
        while chunk := self.sock.recv(65536):
            self.buffer += chunk
        length = len(self.buffer)
        self.close()
        return length

    def _chunked(self) -> int:
        total = 0
        while True:
            while b"\r\n" not in self.buffer:
                self.buffer += self._read()
            size_line, self.buffer = self.buffer.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            while len(self.buffer) < size + 2:
                self.buffer += self._read()
            self.buffer = self.buffer[size + 2 :]
            total += size
            if size == 0 or total > MAX_BODY:
                return total


class Tally:
    """What the fuzz saw."""

    def __init__(self) -> None:
        self.sent = 0
        self.statuses: Counter[int] = Counter()
        self.unanswered = 0
        self.failures: list[str] = []
        self.largest = 0


def fuzz(host: str, port: int, count: int, seed: int | None = None) -> Tally:
    """Send `count` hypothesis-made requests; the tally of what came back."""
    tally = Tally()
    client = Client(host, port)

    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        derandomize=seed is not None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(requests())
    def one(request: bytes) -> None:
        tally.sent += 1
        head_only = request.startswith(b"HEAD ")
        answer = client.send(request, head_only)
        if answer is None:  # the server closed a connection it had kept: ask once more, fresh
            answer = client.send(request, head_only)
        if answer is None:
            tally.unanswered += 1
            if not request.split(b" ", 1)[0].isalpha():
                return  # bytes that were no request: closing on them is an answer
            tally.failures.append(f"no answer to {request[:200]!r}")
            return
        tally.statuses[answer.status] += 1
        tally.largest = max(tally.largest, answer.length)
        if answer.status >= 500:
            tally.failures.append(f"{answer.status} for {request[:300]!r}")

    try:
        one()
    finally:
        client.close()
    return tally


@contextlib.contextmanager
def console(store: str) -> Iterator[tuple[subprocess.Popen[bytes], str, int, Path]]:
    """`ctilink web` on the store with a token; its process, host, port and log."""
    log = Path(tempfile.mkstemp(prefix="ctilink-fuzz-", suffix=".log")[1])
    with log.open("wb") as out:
        process = subprocess.Popen(
            ctilink("web", "--store", store, "--listen", "127.0.0.1:0", "--token", TOKEN),
            stdout=subprocess.PIPE,
            stderr=out,
            cwd=ROOT,
        )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        host, port = line.split("http://", 1)[1].strip().rstrip("/").rsplit(":", 1)
        yield process, host, int(port), log
    finally:
        process.terminate()
        process.wait(30)
        log.unlink()


def example_store(store: str) -> None:
    """The example scenario, and a network whose every shown field is hostile."""
    subprocess.run(
        ctilink("ingest", str(ROOT / "examples/scenario.jsonl"), "--store", store),
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    hostile = "\u202enimda <b>\r\n\x1b[2J b\u200bob"
    lines = [
        {
            "type": "portal_installed",
            "id": "i",
            "network": "evil",
            "platform": "windows",
            "actor": hostile,
        },
        {"type": "system_added", "id": "s", "network": "evil", "system": "p", "role": "primary"}
        | {"platform": "linux", "address": hostile},
        {"type": "user_homed", "id": "u", "network": "evil", "user": hostile, "system": "p"},
        {"type": "directory_changed", "id": "d", "network": "evil", "system": "p"}
        | {"entries": [{"name": hostile, "number": hostile}]},
    ]
    subprocess.run(
        ctilink("ingest", "-", "--store", store),
        input="".join(json.dumps(line) + "\n" for line in lines).encode(),
        check=True,
        capture_output=True,
        cwd=ROOT,
    )


def api_latencies(url: str, stop: threading.Event) -> list[float]:
    """Seconds of each `ctilink.api.status` request, one after another, until `stop`."""
    import nats

    async def ask() -> list[float]:
        nc = await nats.connect(url)
        found = []
        try:
            while not stop.is_set():
                started = time.perf_counter()
                await nc.request("ctilink.api.status", b'{"network":"acme"}', timeout=10)
                found.append(time.perf_counter() - started)
                await asyncio.sleep(0.01)
        finally:
            await nc.close()
        return found

    return asyncio.run(ask())


def p99(samples: list[float]) -> float:
    """The 99th percentile."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def report(tally: Tally, seconds: float, log: Path) -> None:
    """What the run saw."""
    text = log.read_text(errors="replace")
    print(
        f"{tally.sent:,} requests in {seconds:.0f} s ({tally.sent / seconds:,.0f}/s); statuses "
        f"{dict(sorted(tally.statuses.items()))}; largest body {tally.largest:,} bytes; "
        f"log {log.stat().st_size:,} bytes, {text.count('Traceback')} tracebacks"
    )
    for failure in tally.failures[:20]:
        print("FAILED:", failure)


def main() -> None:
    """Fuzz a console of its own (or serve --http) and report."""
    from bench.machine import describe

    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--serve", action="store_true", help="fuzz serve --http, timing the API")
    args = parser.parse_args()
    print(f"machine: {describe()}")
    with tempfile.TemporaryDirectory() as folder:
        store = os.path.join(folder, "ctilink.db")
        example_store(store)
        if not args.serve:
            with console(store) as (_, host, port, log):
                started = time.monotonic()
                tally = fuzz(host, port, args.requests)
                report(tally, time.monotonic() - started, log)
            return
        serve_and_fuzz(store, folder, args.requests)


def serve_and_fuzz(store: str, folder: str, count: int) -> None:
    """serve --http on the store: the API's latency idle, while the fuzz hits a console in
    another process (what the machine's load alone costs), and while it hits serve's own."""
    from ctilink.adapters.nats.embedded import EmbeddedNats

    server = EmbeddedNats(Path(folder) / "nats")
    url = server.start()
    port = free_port()
    log = Path(folder) / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ctilink(
                *("serve", "--store", store, "--nats", url),
                *("--http", f"127.0.0.1:{port}", "--http-token", TOKEN),
            ),
            stdout=out,
            stderr=out,
            cwd=ROOT,
        )
    try:
        while "ready:" not in log.read_text():
            assert process.poll() is None, log.read_text()
            time.sleep(0.1)
        idle = timed_while(url, lambda: time.sleep(20))
        shown("idle", idle)
        with console(store) as (_, host, other, _):
            elsewhere = timed_while(url, lambda: fuzz(host, other, count // 5))
        shown(f"while {count // 5:,} requests go to a console in another process", elsewhere)
        tallies: list[tuple[Tally, float]] = []

        def fuzz_serve() -> None:
            started = time.monotonic()
            tallies.append((fuzz("127.0.0.1", port, count), time.monotonic() - started))

        flooded = timed_while(url, fuzz_serve)
        report(*tallies[0], log)
        shown(f"while {count:,} requests go to serve's own listener", flooded)
    finally:
        process.terminate()
        process.wait(30)
        server.stop()


def timed_while(url: str, work: Callable[[], object]) -> list[float]:
    """`ctilink.api.status` timed, request after request, while `work()` runs."""
    stop = threading.Event()
    found: list[float] = []
    asking = threading.Thread(target=lambda: found.extend(api_latencies(url, stop)))
    asking.start()
    try:
        work()
    finally:
        stop.set()
        asking.join()
    return found


def shown(when: str, seconds: list[float]) -> None:
    """One line of API latencies."""
    print(
        f"ctilink.api.status {when}: p50 {statistics.median(seconds) * 1e3:.1f} ms, "
        f"p99 {p99(seconds) * 1e3:.1f} ms ({len(seconds):,} requests)"
    )


def free_port() -> int:
    """A port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


if __name__ == "__main__":
    main()
