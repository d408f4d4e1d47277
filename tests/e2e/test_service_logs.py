"""The services' log lines as an operator reads them: `serve` and its publisher against a
real nats-server, stopped by SIGTERM as systemd stops them (docs/commands.md, service logs).

A normal stop is no problem: every line of it is INFO, "disconnected from NATS"
included; a connection lost is a WARNING. Plain lines carry their time and level;
`--log-level` leaves out the lines below it, in `serve` and in the publisher it starts.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import time
from pathlib import Path

from ctilink.adapters.nats.embedded import EmbeddedNats
from tests.e2e.conftest import Service, scenario, serve_process
from tests.e2e.traffic import publisher_caught_up

PLAIN = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00 (DEBUG|INFO|WARNING|ERROR) "
    r"ctilink (serve|publish): \S"
)


def wait_for(path: Path, text: str, timeout: float = 30) -> None:
    """Wait until the log holds `text`."""
    deadline = time.monotonic() + timeout
    while text not in path.read_text():
        assert time.monotonic() < deadline, path.read_text()
        time.sleep(0.05)


async def test_a_normal_stop_logs_only_info_and_its_disconnection_too(tmp_path, nats_server, nc):
    served = Service(
        tmp_path / "ctilink.db", nats_server.url, tmp_path / "serve.log", ["--log-format", "json"]
    )
    served.start()
    await nc.publish("ctilink.in.acme", scenario()[0])
    wait_for(served.log, "publisher role")

    assert served.stop() == 0

    entries = [json.loads(line) for line in served.log.read_text().splitlines()]
    said = {(e["logger"], e["message"]): e["level"] for e in entries}
    assert said[("ctilink.serve", "disconnected from NATS")] == "INFO"
    assert said[("ctilink.publish", "disconnected from NATS")] == "INFO"
    assert [e for e in entries if e["level"] != "INFO"] == []


def test_plain_lines_carry_time_and_level_and_a_lost_connection_is_a_warning(tmp_path):
    server = EmbeddedNats(tmp_path / "nats")
    url = server.start()
    served = Service(tmp_path / "ctilink.db", url, tmp_path / "serve.log")
    served.start()
    try:
        server.stop()  # NATS goes away under the service
        wait_for(served.log, "WARNING ctilink serve: disconnected from NATS")
        server.start()
        wait_for(served.log, "INFO ctilink serve: reconnected to NATS")
    finally:
        assert served.stop() == 0
        server.stop()

    lines = served.log.read_text().splitlines()
    assert lines and all(PLAIN.match(line) for line in lines), lines
    stop = lines[next(n for n, line in enumerate(lines) if line.endswith(" serve: stopping")) :]
    assert any(line.endswith(" INFO ctilink serve: disconnected from NATS") for line in stop)
    assert [line for line in stop if " INFO " not in line] == []
    assert stop[-1].endswith(" INFO ctilink serve: stopped")


async def test_log_level_warning_leaves_out_the_info_lines_of_serve_and_its_publisher(
    tmp_path, nats_server, nc
):
    store, log = tmp_path / "ctilink.db", tmp_path / "serve.log"
    quiet = ["--nats", nats_server.url, "--log-level", "warning"]
    process = serve_process(store, log, *quiet, ready=False)
    try:
        js = nc.jetstream()
        await eventually(lambda: stream_made(js), process, log)  # serve is up: no line says so
        for line in scenario():
            await js.publish(f"ctilink.in.{json.loads(line)['network']}", line)
        await eventually(lambda: publisher_caught_up(store), process, log)
    finally:
        process.terminate()
        assert process.wait(30) == 0

    assert log.read_text() == ""  # a run without a problem, at warning: not a line


async def stream_made(js) -> bool:  # type: ignore[no-untyped-def]
    """Whether CTILINK_IN exists (serve made it)."""
    try:
        await js.stream_info("CTILINK_IN")
    except Exception:
        return False
    return True


async def eventually(check, process, log: Path, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    """Wait until the check (a bool, or an awaitable one) holds, while the process runs."""
    deadline = time.monotonic() + timeout
    while not await settled(check()):
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        await asyncio.sleep(0.1)


async def settled(value):  # type: ignore[no-untyped-def]
    """A check's answer, awaited when it is awaitable."""
    return await value if inspect.isawaitable(value) else value
