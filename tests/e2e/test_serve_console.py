"""`ctilink serve --http`: the console beside the NATS service; its rejections page reads the
store, live as every other page."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import urllib.request

from tests.e2e.conftest import ROOT, Service, scenario, wait_for


def free_port() -> int:
    """A port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str) -> tuple[int, str]:
    """(status, body) of one GET."""
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.status, answer.read().decode()


async def test_the_console_shows_what_nats_brought_and_the_stores_rejections_live(
    tmp_path, nats_server, nc
):
    port = free_port()
    served = Service(
        tmp_path / "ctilink.db",
        nats_server.url,
        tmp_path / "serve.log",
        ["--http", f"127.0.0.1:{port}"],
    )
    served.start()
    base = f"http://127.0.0.1:{port}"
    try:
        assert f"console on {base}/" in served.log.read_text()
        for line in scenario():
            await nc.publish(f"ctilink.in.{json.loads(line)['network']}", line)

        async def listed() -> bool:
            _, html = await asyncio.to_thread(get, base + "/")
            return 'data-network="initech" data-position="9"' in html

        await wait_for(listed)
        _, html = await asyncio.to_thread(get, base + "/rejections")
        assert "data-rejection=" not in html and "No rejection" in html

        # A live stream is open while a poison message goes in: it hears of it.
        stream = await asyncio.to_thread(
            urllib.request.urlopen, base + "/live?rejections=1", None, 10
        )
        assert (await asyncio.to_thread(stream.readline)).startswith(b"retry:")
        await nc.publish("ctilink.in.acme", b'{"type":"portal_restarted","id":"x"}')
        while not (await asyncio.to_thread(stream.readline)).startswith(b"event: change"):
            pass
        stream.close()
        _, html = await asyncio.to_thread(get, base + "/rejections")
        assert 'data-network="acme" data-code="invalid" data-source="nats:' in html
        _, html = await asyncio.to_thread(get, base + "/rejections?network=globex")
        assert "data-rejection=" not in html  # filtered by network
    finally:
        assert served.stop() == 0  # promptly, live streams or not
    assert "console on" in served.log.read_text()


def test_serve_refuses_a_console_beyond_loopback_without_its_token_before_starting(tmp_path):
    done = subprocess.run(
        [
            *(sys.executable, "-m", "ctilink.adapters.cli", "serve"),
            *("--store", str(tmp_path / "ctilink.db"), "--http", "0.0.0.0:0"),
        ],
        capture_output=True,
        cwd=ROOT,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin"},
    )
    assert done.returncode == 2
    (said,) = done.stderr.decode().splitlines()
    assert "--http-token or $CTILINK_WEB_TOKEN" in said
    assert not (tmp_path / "ctilink.db").exists()  # nothing was started
