"""`ctilink serve` with no NATS given starts its own nats-server, and stops it on exit."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nats

from tests.e2e.conftest import ROOT, wait_for

INSTALL = b'{"type":"portal_installed","id":"i1","network":"acme","platform":"windows"}'


def _start(folder: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`ctilink serve` with only a store, and the URL it says its nats-server has."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ctilink.adapters.cli",
                "serve",
                "--store",
                str(folder / "ctilink.db"),
            ],
            stdout=out,
            stderr=out,
            cwd=ROOT,
        )
    deadline = time.monotonic() + 60
    while "ready:" not in log.read_text():
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    said = log.read_text()
    found = re.search(r"started embedded nats-server at (nats://127\.0\.0\.1:\d+)", said)
    assert found, said
    return process, found.group(1)


def _port_open(url: str) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", int(url.rsplit(":", 1)[1]))) == 0


async def test_serve_without_nats_runs_its_own_server_takes_events_answers_and_stops_it(
    tmp_path,
):
    process, url = _start(tmp_path, tmp_path / "serve.log")
    try:
        nc = await nats.connect(url)
        await nc.jetstream().publish("ctilink.in.acme", INSTALL)

        async def installed() -> bool:
            reply = await nc.request("ctilink.api.status", b'{"network":"acme"}', timeout=2)
            return b'"position":1' in reply.data

        await wait_for(installed)
        status = json.loads((await nc.request("ctilink.api.status", b'{"network":"acme"}')).data)
        await nc.close()
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)

    assert status["mode"]["effective"] == "manual"
    assert code == 0
    assert (tmp_path / "ctilink.db.nats").is_dir()  # its data beside the store
    assert not _port_open(url)  # and the server stopped with the service
    assert "Traceback" not in (tmp_path / "serve.log").read_text()
