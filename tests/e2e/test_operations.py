"""`serve --http`: /healthz, /readyz and /metrics against a real nats-server, and JSON logs.

Counters must equal what was sent (accepted, duplicates, rejected by code), the
component gauges the status documents, the publisher's lag 0 after a drain and
more while the publisher is held; /readyz must follow NATS going away and back.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ctilink.adapters.nats.embedded import EmbeddedNats
from ctilink.adapters.store.queries.log import network_heads
from ctilink.adapters.store.selection import open_service
from ctilink.domain.errors import Code
from ctilink.projections.status import status
from tests.e2e.conftest import ROOT, Service, scenario
from tests.e2e.private_postgres import PrivatePostgres
from tests.e2e.traffic import publisher_caught_up


async def eventually(check: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait until `check()` holds (it runs in a thread: it may block on HTTP)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await asyncio.to_thread(check):
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


def free_port() -> int:
    """A port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fetch(url: str) -> tuple[int, bytes]:
    """(status, body) of one GET, errors included."""
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def samples(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics: (name, sorted labels) -> value."""
    code, body = fetch(base + "/metrics")
    assert code == 200, body
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def started(tmp_path: Path, url: str, *extra: str, store: str | None = None) -> tuple[Service, str]:
    """`serve --http` on a free port, ready (on a SQLite store in tmp_path unless given)."""
    port = free_port()
    served = Service(
        store or tmp_path / "ctilink.db",
        url,
        tmp_path / "serve.log",
        ["--http", f"127.0.0.1:{port}", *extra],
    )
    served.start()
    return served, f"http://127.0.0.1:{port}"


async def test_the_counters_equal_what_was_sent_and_the_gauges_the_status_documents(
    tmp_path, nats_server, nc, new_store
):
    served, base = started(tmp_path, nats_server.url, store=new_store())
    try:
        lines = scenario()
        resent = lines[:5]  # duplicates (I3)
        poison = [
            b'{"type":"portal_restarted","id":"p1"}',  # no network: invalid
            b'{"type":"failover","id":"p2","network":"acme","system":"nobody"}',  # I6
            b'{"type":"portal_restarted","id":"p3","network":"nowhere"}',  # I5
        ]
        for line in [*lines, *resent, *poison]:
            network = json.loads(line).get("network", "acme")
            await nc.publish(f"ctilink.in.{network}", line)

        def counted() -> float:
            found = samples(base)
            return sum(v for (name, _), v in found.items() if name == "ctilink_events_total")

        await eventually(lambda: counted() == len(lines) + len(resent) + len(poison))
        api = await nc.request(
            "ctilink.api.ingest", b'{"type":"portal_restarted","id":"api-1","network":"acme"}'
        )
        assert json.loads(api.data)["outcome"] == "accepted"
        assert counted() == len(lines) + len(resent) + len(poison) + 1
        found = samples(base)
        events = {
            dict(labels)["outcome"] + "/" + dict(labels)["source"]: value
            for (name, labels), value in found.items()
            if name == "ctilink_events_total"
        }
        assert events == {
            "accepted/nats": len(lines),
            "duplicate/nats": len(resent),
            "rejected/nats": len(poison),
            "accepted/api": 1,
            "duplicate/api": 0,
            "rejected/api": 0,
        }
        codes = {
            dict(labels)["code"]: value
            for (name, labels), value in found.items()
            if name == "ctilink_rejections_total"
        }
        # Every code is there from the start, at 0.
        assert {code: n for code, n in codes.items() if n} == {
            "invalid": 1,
            "unknown_system": 1,
            "not_installed": 1,
        }
        assert len(codes) == len(Code)
        assert found[("ctilink_ingest_batch_seconds_count", ())] >= 1

        await eventually(lambda: publisher_caught_up(served.store))
        found = samples(base)
        assert found[("ctilink_publisher_lag_events", ())] == 0
        with closing(open_service(str(served.store), create=False)) as service:
            documents = [status(*service.state_at(n)) for n, _ in network_heads(service)]
        states = Counter(row.state for d in documents for row in d.components)
        for state in ("available", "unavailable", "not_configured"):
            assert found[("ctilink_components", (("state", state),))] == states[state]
        modes = Counter(d.mode.effective for d in documents)
        for mode, count in modes.items():
            assert found[("ctilink_networks", (("effective", mode),))] == count
        pending = sum(d.mode.restart_pending for d in documents)
        assert found[("ctilink_restart_pending_networks", ())] == pending
        # One instance: pinned on every partition that had traffic; none left unconsumed;
        # every partition's series present, and at 0 once all is acked (cluster-wide).
        assert 1 <= found[("ctilink_partitions_held", ())] <= 12
        assert found[("ctilink_partitions_unconsumed", ())] == 0
        per_partition = [
            (name, (("partition", str(partition)),))
            for partition in range(12)
            for name in ("ctilink_inbound_pending", "ctilink_inbound_oldest_age_seconds")
        ]
        await eventually(lambda: all(samples(base)[key] == 0 for key in per_partition))
        assert found[("ctilink_nats_connected", ())] == 1 and found[("ctilink_store_up", ())] == 1

        # $SRV: each endpoint's own figures; the instance, its store and its pins in metadata.
        reply = await nc.request("ctilink.api.status", b'{"network":"acme"}')
        assert not reply.headers
        stats = json.loads((await nc.request("$SRV.STATS.ctilink", b"")).data)
        data = {e["name"]: e["data"] for e in stats["endpoints"]}
        assert data["status"]["ctilink_api_request_seconds_count{code=200}"] >= 1
        assert data["directory"]["ctilink_api_request_seconds_count{code=200}"] == 0
        assert data["ingest"]["ctilink_events_total{outcome=accepted}"] == 1  # the API's one
        info = json.loads((await nc.request("$SRV.INFO.ctilink", b"")).data)
        assert info["version"] == info["metadata"]["version"]
        assert info["metadata"]["store"] == (
            "postgresql" if "://" in str(served.store) else "sqlite"
        )
        held = info["metadata"]["partitions_held"].split(",")
        assert len(held) == found[("ctilink_partitions_held", ())] and info["metadata"]["instance"]
    finally:
        assert served.stop() == 0


async def test_the_publishers_lag_rises_while_it_is_held_and_returns_to_zero(
    tmp_path, nats_server, nc
):
    served, base = started(tmp_path, nats_server.url)
    try:
        await nc.publish("ctilink.in.acme", scenario()[0])
        await eventually(lambda: publisher_caught_up(served.store))
        assert served.process is not None
        (publisher,) = [  # serve's children: the publisher, and its writer process
            pid
            for pid in children(served.process.pid)
            if b"publish" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        os.kill(publisher, signal.SIGSTOP)  # the publisher holds still; ingest goes on
        try:
            for line in scenario()[1:20]:
                await nc.publish("ctilink.in.acme", line)
            await eventually(lambda: samples(base)[("ctilink_publisher_lag_events", ())] == 19)
        finally:
            os.kill(publisher, signal.SIGCONT)
        await eventually(lambda: samples(base)[("ctilink_publisher_lag_events", ())] == 0)
    finally:
        assert served.stop() == 0


def children(pid: int) -> list[int]:
    """The processes `pid` started."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


async def test_healthz_answers_and_readyz_follows_nats_going_away_and_coming_back(tmp_path):
    server = EmbeddedNats(tmp_path / "nats")
    url = server.start()
    served, base = started(tmp_path, url)
    try:
        assert fetch(base + "/healthz") == (200, b'{"status":"ok"}\n')
        # Ready once the partitions are settled, moments after "ready:" is logged.
        await eventually(lambda: fetch(base + "/readyz")[0] == 200, timeout=10)
        assert json.loads(fetch(base + "/readyz")[1])["not_ready"] == []

        server.stop()  # NATS goes away
        await eventually(lambda: fetch(base + "/readyz")[0] == 503, timeout=10)
        ready = json.loads(fetch(base + "/readyz")[1])
        assert ready["not_ready"] == ["nats"] and ready["store"] is True
        assert fetch(base + "/healthz")[0] == 200  # alive all the same
        assert samples(base)[("ctilink_nats_connected", ())] == 0

        server.start()  # back, on the same port and folder
        await eventually(lambda: fetch(base + "/readyz")[0] == 200, timeout=30)
        assert samples(base)[("ctilink_nats_reconnects_total", ())] >= 1
    finally:
        assert served.stop() == 0
        server.stop()


async def test_json_logs_are_one_object_per_line_from_serve_and_its_publisher(
    tmp_path, nats_server, nc
):
    served, _ = started(tmp_path, nats_server.url, "--log-format", "json")
    await nc.publish("ctilink.in.acme", scenario()[0])
    await eventually(lambda: publisher_caught_up(served.store))
    assert served.stop() == 0
    lines = served.log.read_text().splitlines()
    parsed = [json.loads(line) for line in lines]  # every line is JSON
    assert all({"time", "level", "message"} <= set(entry) for entry in parsed)
    messages = [entry["message"] for entry in parsed]
    assert any(m.startswith("ready:") for m in messages)
    assert any("publisher role" in m for m in messages)


@pytest.fixture
def private_store() -> Iterator[tuple[PrivatePostgres, str]]:
    """A PostgreSQL server of this test's own (it is stopped and started), and a store URL."""
    server = PrivatePostgres()
    reason = server.unavailable()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs PostgreSQL's server binaries: {reason}")
        pytest.skip(reason)
    try:
        server.create()
        yield server, server.url()
    finally:
        server.remove()


async def test_readyz_follows_the_store_going_away_and_coming_back(
    tmp_path, nats_server, private_store
):
    server, store = private_store
    port = free_port()
    served = Service(
        store, nats_server.url, tmp_path / "serve.log", ["--http", f"127.0.0.1:{port}"]
    )  # type: ignore[arg-type]
    served.start()
    base = f"http://127.0.0.1:{port}"
    try:
        await eventually(lambda: fetch(base + "/readyz")[0] == 200, timeout=15)
        server.stop()  # the store goes away
        await eventually(lambda: fetch(base + "/readyz")[0] == 503, timeout=10)
        assert json.loads(fetch(base + "/readyz")[1])["not_ready"] == ["store"]
        assert samples(base)[("ctilink_store_up", ())] == 0
        server.start()
        await eventually(lambda: fetch(base + "/readyz")[0] == 200, timeout=30)
    finally:
        assert served.stop() == 0


async def test_per_network_series_only_when_asked_and_equal_to_the_status_documents(
    tmp_path, nats_server, nc, new_store
):
    served, base = started(tmp_path, nats_server.url, "--metrics-per-network", store=new_store())
    try:
        for line in scenario():
            await nc.publish(f"ctilink.in.{json.loads(line)['network']}", line)
        await eventually(lambda: publisher_caught_up(served.store))
        found = samples(base)
        with closing(open_service(str(served.store), create=False)) as service:
            heads = network_heads(service)
            documents = [status(*service.state_at(n)) for n, _ in heads]
        for name, head in heads:
            assert found[("ctilink_log_position", (("network", name),))] == head
        for document in documents:
            for row in document.components:
                key = (
                    ("component", row.component),
                    ("network", document.network),
                    ("system", row.system),
                )
                assert found[("ctilink_component_available", key)] == (row.state == "available")
    finally:
        assert served.stop() == 0

    (tmp_path / "plain").mkdir()
    plain, base = started(tmp_path / "plain", nats_server.url)
    try:
        assert not [k for k in samples(base) if k[0] == "ctilink_log_position"]
    finally:
        assert plain.stop() == 0


def test_while_serve_waits_for_nats_healthz_answers_and_readyz_says_starting(tmp_path):
    port = free_port()
    nowhere = f"nats://127.0.0.1:{free_port()}"  # nobody listens: serve keeps waiting
    served = subprocess.Popen(
        [
            *(sys.executable, "-m", "ctilink.adapters.cli", "serve"),
            *("--store", str(tmp_path / "ctilink.db"), "--nats", nowhere),
            *("--http", f"127.0.0.1:{port}"),
        ],
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while fetch_or_none(base + "/healthz") is None:
            assert time.monotonic() < deadline and served.poll() is None
            time.sleep(0.1)
        assert fetch(base + "/healthz") == (200, b'{"status":"ok"}\n')
        code, body = fetch(base + "/readyz")
        assert code == 503 and json.loads(body)["not_ready"] == ["starting"]
        assert fetch(base + "/metrics")[0] == 503
    finally:
        served.terminate()
        assert served.wait(30) == 0


def fetch_or_none(url: str) -> tuple[int, bytes] | None:
    """(status, body), or None while nothing listens."""
    try:
        return fetch(url)
    except (urllib.error.URLError, ConnectionError):
        return None


def test_with_json_logs_a_command_that_cannot_start_says_so_in_one_json_line(tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        done = subprocess.run(
            [
                *(sys.executable, "-m", "ctilink.adapters.cli", "serve", "--log-format", "json"),
                *("--store", str(tmp_path / "ctilink.db"), "--http"),
                f"127.0.0.1:{taken.getsockname()[1]}",
            ],
            capture_output=True,
            cwd=ROOT,
            timeout=60,
            check=False,
        )
    finally:
        taken.close()
    assert done.returncode == 2
    (line,) = done.stderr.decode().splitlines()
    said = json.loads(line)
    assert said["level"] == "ERROR" and said["message"].startswith("cannot listen on")
