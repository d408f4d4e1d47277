"""infra/nats: the accounts refuse what they should, and the streams match the code's."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import ConsumerConfig

from ctilink.adapters.nats.embedded import EmbeddedNats, binary
from ctilink.adapters.nats.streams import stream_configs
from tests.e2e.conftest import ROOT, login, make_key, serve_process, wait_for

INSTALL = b'{"type":"portal_installed","id":"i1","network":"acme","platform":"windows"}'
USERS = ("service", "producer", "reader")


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A key pair per user, the public keys in the environment as infra reads them."""
    for user in USERS:
        monkeypatch.setenv(f"CTILINK_{user.upper()}_NKEY", make_key(tmp_path, user))
    return tmp_path


@pytest.fixture
def secured(keys: Path, tmp_path: Path):
    """A nats-server with infra/nats/accounts.conf, and the service logged in with its key."""
    # nats-server resolves includes relative to the including file.
    (tmp_path / "accounts.conf").write_text((ROOT / "infra/nats/accounts.conf").read_text())
    config = tmp_path / "test.conf"
    config.write_text("include ./accounts.conf\n")
    server = EmbeddedNats(tmp_path / "nats", config=config)
    server.start()
    port = server.port
    log = tmp_path / "serve.log"
    process = serve_process(
        tmp_path / "c.db",
        log,
        *("--nats", f"nats://127.0.0.1:{port}", "--nkey", str(keys / "service.nk")),
        ready=False,  # each test waits for it, once it has its clients in place
    )
    yield port, log, keys
    process.terminate()
    process.wait(30)
    server.stop()
    assert process.returncode == 0, log.read_text()


async def test_producers_publish_events_and_nothing_else(secured):
    port, log, keys = secured
    await wait_for(lambda: _ready(log))
    errors: list[str] = []
    producer = await login(port, keys, "producer", errors)
    js = producer.jetstream()

    ack = await js.publish("ctilink.in.acme", INSTALL)
    with pytest.raises((NatsTimeout, NoRespondersError, asyncio.TimeoutError)):
        await js.publish("ctilink.events.acme.portal_installed", b"{}", timeout=1)
    with pytest.raises((NatsTimeout, NoRespondersError, asyncio.TimeoutError)):
        await producer.request("ctilink.api.status", b'{"network":"acme"}', timeout=1)
    await producer.close()

    assert ack.stream == "CTILINK_IN"
    assert any("permissions violation" in e.lower() for e in errors)


async def test_readers_query_subscribe_and_read_stored_messages_but_cannot_ingest(secured):
    port, log, keys = secured
    await wait_for(lambda: _ready(log))
    producer = await login(port, keys, "producer", [])
    await producer.jetstream().publish("ctilink.in.acme", INSTALL)
    await producer.close()
    errors: list[str] = []
    reader = await login(port, keys, "reader", errors)

    async def answered() -> bool:
        reply = await reader.request("ctilink.api.status", b'{"network":"acme"}', timeout=2)
        return not reply.headers

    await wait_for(answered)
    status = json.loads((await reader.request("ctilink.api.status", b'{"network":"acme"}')).data)

    async def published() -> bool:
        info = await reader.jetstream().stream_info("CTILINK_OUT")
        return info.state.messages > 0

    await wait_for(published)
    first = await reader.jetstream().get_msg("CTILINK_OUT", seq=1, direct=True)
    with pytest.raises((NatsTimeout, NoRespondersError, asyncio.TimeoutError)):
        await reader.request("ctilink.api.ingest", INSTALL, timeout=1)
    await reader.publish("ctilink.in.acme", INSTALL)
    await reader.flush()
    await asyncio.sleep(0.3)
    await reader.close()

    assert status["mode"]["effective"] == "manual"
    assert first.subject == "ctilink.events.acme.portal_installed"
    assert sum("permissions violation" in e.lower() for e in errors) >= 2


async def test_readers_can_neither_make_consumers_nor_delete_anyones(secured):
    port, log, keys = secured
    await wait_for(lambda: _ready(log))
    errors: list[str] = []
    reader = await login(port, keys, "reader", errors)
    js = reader.jetstream()

    denied = (NatsTimeout, NoRespondersError, asyncio.TimeoutError)
    with pytest.raises(denied):  # a push consumer would deliver to any subject it names
        await js.add_consumer(
            "CTILINK_OUT", ConsumerConfig(deliver_subject="ctilink.api.ingest"), timeout=1
        )
    with pytest.raises(denied):
        await asyncio.wait_for(js.delete_consumer("CTILINK_IN", "ctilink-p0-anyone"), 2)
    await reader.close()

    assert sum("permissions violation" in e.lower() for e in errors) >= 2


def test_a_missing_or_empty_key_stops_the_server_from_starting(keys: Path, tmp_path: Path):
    (tmp_path / "accounts.conf").write_text((ROOT / "infra/nats/accounts.conf").read_text())
    config = tmp_path / "test.conf"
    config.write_text("include ./accounts.conf\n")
    env = {**os.environ, "CTILINK_READER_NKEY": ""}
    unset = {k: v for k, v in os.environ.items() if k != "CTILINK_PRODUCER_NKEY"}

    empty = subprocess.run([binary(), "-c", str(config), "-t"], env=env, capture_output=True)
    missing = subprocess.run([binary(), "-c", str(config), "-t"], env=unset, capture_output=True)
    fine = subprocess.run([binary(), "-c", str(config), "-t"], capture_output=True)

    assert empty.returncode != 0 and missing.returncode != 0
    assert fine.returncode == 0, fine.stderr


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
        # CTILINK_OUT keeps 30 days by default (--out-max-age); CTILINK_IN, what is unacked.
        assert written.get("max_age", 0) == int((config.max_age or 0) * 1e9)
        assert written.get("allow_direct", False) == bool(config.allow_direct)


def test_serve_with_credentials_the_server_refuses_stops_at_once_in_one_line(
    keys: Path, tmp_path: Path
):
    (tmp_path / "accounts.conf").write_text((ROOT / "infra/nats/accounts.conf").read_text())
    config = tmp_path / "test.conf"
    config.write_text("include ./accounts.conf\n")
    server = EmbeddedNats(tmp_path / "nats", config=config)
    server.start()
    (tmp_path / "elsewhere").mkdir()
    stranger = make_key(tmp_path / "elsewhere", "stranger")  # a key no account names
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "ctilink.adapters.cli",
                "serve",
                "--store",
                str(tmp_path / "c.db"),
                "--nats",
                server.url,
                "--nkey",
                str(tmp_path / "elsewhere" / "stranger.nk"),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=ROOT,
        )
    finally:
        server.stop()

    assert stranger and done.returncode == 2, done.stderr
    assert "refused the credentials" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.count("refused the credentials") <= 2  # said once, not every second


async def test_a_reader_replays_and_follows_ctilink_out_without_any_consumer(secured):
    port, log, keys = secured
    await wait_for(lambda: _ready(log))
    producer = await login(port, keys, "producer", [])
    await producer.jetstream().publish("ctilink.in.acme", INSTALL)
    url = f"nats://127.0.0.1:{port}"
    as_reader = ["--nats", url, "--nkey", str(keys / "reader.nk")]

    def replay() -> list[dict]:
        done = subprocess.run(
            [sys.executable, "-m", "ctilink.adapters.cli", "out", *as_reader, "--json"],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines()]

    async def published() -> bool:
        return len(await asyncio.to_thread(replay)) >= 2

    await wait_for(published)
    first = replay()
    assert first[0]["seq"] == 1 and first[0]["subject"] == "ctilink.events.acme.portal_installed"
    assert first[0]["headers"]["Nats-Msg-Id"] == "acme:1"
    assert first[0]["data"]["event"]["id"] == "i1"
    following = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ctilink.adapters.cli",
            "out",
            *as_reader,
            "--follow",
            "--since",
            str(first[-1]["seq"] + 1),
            "--subject",
            "ctilink.events.>",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    await asyncio.sleep(1.0)
    restart = b'{"type":"portal_restarted","id":"r1","network":"acme"}'
    await producer.jetstream().publish("ctilink.in.acme", restart)
    await producer.close()
    await asyncio.sleep(2.0)
    following.send_signal(signal.SIGINT)
    out, err = following.communicate(timeout=10)

    assert following.returncode == 0, err
    assert "ctilink.events.acme.portal_restarted" in out and "Traceback" not in err
