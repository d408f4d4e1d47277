"""infra/nats: the accounts refuse what they should, and the streams match the code's."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import nats
import pytest
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from ctilink.adapters.nats.embedded import EmbeddedNats
from ctilink.adapters.nats.streams import stream_configs
from tests.e2e.conftest import ROOT, wait_for

PASSWORDS = {
    "CTILINK_SERVICE_PASSWORD": "s3rvice",
    "CTILINK_PRODUCER_PASSWORD": "pr0ducer",
    "CTILINK_READER_PASSWORD": "r3ader",
}
INSTALL = b'{"type":"portal_installed","id":"i1","network":"acme","platform":"windows"}'


@pytest.fixture
def secured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A nats-server with infra/nats/accounts.conf, and the service logged in as `ctilink`."""
    for key, value in PASSWORDS.items():
        monkeypatch.setenv(key, value)
    # nats-server resolves includes relative to the including file.
    (tmp_path / "accounts.conf").write_text((ROOT / "infra/nats/accounts.conf").read_text())
    config = tmp_path / "test.conf"
    config.write_text("include ./accounts.conf\n")
    server = EmbeddedNats(tmp_path / "nats", config=config)
    server.start()
    port = server.port
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ctilink.adapters.cli",
                "serve",
                "--store",
                str(tmp_path / "c.db"),
                "--nats",
                f"nats://127.0.0.1:{port}",
                "--user",
                "ctilink",
                "--password",
                PASSWORDS["CTILINK_SERVICE_PASSWORD"],
            ],
            stdout=out,
            stderr=out,
            cwd=ROOT,
            env=dict(os.environ),
        )
    yield port, log
    process.terminate()
    process.wait(30)
    server.stop()
    assert process.returncode == 0, log.read_text()


async def login(port: int, user: str, errors: list[str]):
    """A connection as one of the users, collecting permission errors."""

    async def error(e: Exception) -> None:
        errors.append(str(e))

    return await nats.connect(
        f"nats://127.0.0.1:{port}",
        user=user,
        password=PASSWORDS[f"CTILINK_{user.upper()}_PASSWORD"],
        error_cb=error,
    )


async def test_producers_publish_events_and_nothing_else(secured):
    port, log = secured
    await wait_for(lambda: _ready(log))
    errors: list[str] = []
    producer = await login(port, "producer", errors)
    js = producer.jetstream()

    ack = await js.publish("ctilink.in.acme", INSTALL)
    with pytest.raises((NatsTimeout, NoRespondersError, asyncio.TimeoutError)):
        await js.publish("ctilink.events.acme.portal_installed", b"{}", timeout=1)
    with pytest.raises((NatsTimeout, NoRespondersError, asyncio.TimeoutError)):
        await producer.request("ctilink.api.status", b'{"network":"acme"}', timeout=1)
    await producer.close()

    assert ack.stream == "CTILINK_IN"
    assert any("permissions violation" in e.lower() for e in errors)


async def test_readers_query_and_subscribe_but_cannot_ingest(secured):
    port, log = secured
    await wait_for(lambda: _ready(log))
    producer = await login(port, "producer", [])
    await producer.jetstream().publish("ctilink.in.acme", INSTALL)
    await producer.close()
    errors: list[str] = []
    reader = await login(port, "reader", errors)

    async def answered() -> bool:
        reply = await reader.request("ctilink.api.status", b'{"network":"acme"}', timeout=2)
        return not reply.headers

    await wait_for(answered)
    status = json.loads((await reader.request("ctilink.api.status", b'{"network":"acme"}')).data)
    events = await reader.jetstream().subscribe("ctilink.events.>", ordered_consumer=True)
    first = await events.next_msg(timeout=5)
    with pytest.raises((NatsTimeout, NoRespondersError, asyncio.TimeoutError)):
        await reader.request("ctilink.api.ingest", INSTALL, timeout=1)
    await reader.publish("ctilink.in.acme", INSTALL)
    await reader.flush()
    await asyncio.sleep(0.3)
    await reader.close()

    assert status["mode"]["effective"] == "manual"
    assert first.subject == "ctilink.events.acme.portal_installed"
    assert sum("permissions violation" in e.lower() for e in errors) >= 2


async def _ready(log: Path) -> bool:
    return "ready:" in log.read_text()


def test_stream_definitions_in_infra_match_what_the_service_creates():
    for config in stream_configs():
        written = json.loads((ROOT / f"infra/nats/streams/{config.name}.json").read_text())
        assert written["subjects"] == config.subjects
        assert written["retention"] == config.retention.value
        assert written["duplicate_window"] == int(config.duplicate_window * 1e9)
        transform = config.subject_transform
        assert written.get("subject_transform") == (transform and transform.as_dict())
