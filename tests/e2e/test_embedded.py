"""`ctilink serve` with no NATS given starts its own nats-server, and stops it on exit."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import nats
import pytest

from tests.e2e.conftest import ROOT, serve_process, wait_for, wait_ready

INSTALL = b'{"type":"portal_installed","id":"i1","network":"acme","platform":"windows"}'


def _start(folder: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`ctilink serve` with only a store, and the URL it says its nats-server has."""
    process = serve_process(folder / "ctilink.db", log)
    said = log.read_text()
    found = re.search(r"started embedded nats-server at (nats://127\.0\.0\.1:\d+)", said)
    assert found, said
    return process, found.group(1)


def _login(folder: Path) -> dict[str, str]:
    """The embedded server's user and password, from the owner-only file beside the store."""
    return json.loads((folder / "ctilink.db.nats" / "credentials").read_text())


def _port_open(url: str) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", int(url.rsplit(":", 1)[1]))) == 0


async def test_serve_without_nats_runs_its_own_server_takes_events_answers_and_stops_it(
    tmp_path,
):
    process, url = _start(tmp_path, tmp_path / "serve.log")
    try:
        nc = await nats.connect(url, **_login(tmp_path))
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


async def publish_until_acked(js, data: bytes, msg_id: str) -> None:  # type: ignore[no-untyped-def]
    """Publish to acme's subject until JetStream acks it (deduplicated by Nats-Msg-Id)."""
    for _ in range(20):
        try:
            await js.publish("ctilink.in.acme", data, headers={"Nats-Msg-Id": msg_id}, timeout=2)
            return
        except Exception:  # mid-reconnect: its reply may be lost, the message not
            await asyncio.sleep(0.2)
    raise AssertionError(f"{msg_id} never acked")


def _servers_of(folder: Path) -> list[int]:
    """The pids of nats-servers whose JetStream directory is in `folder`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"nats-server" in command and str(folder).encode() in command:
                found.append(int(entry.name))
    return found


async def test_serve_killed_then_started_again_has_one_server_on_the_same_port_and_loses_nothing(
    tmp_path,
):
    folder = tmp_path / "ctilink.db.nats"
    first, url = _start(tmp_path, tmp_path / "first.log")
    producer = await nats.connect(
        url, reconnect_time_wait=0.2, max_reconnect_attempts=-1, **_login(tmp_path)
    )
    js = producer.jetstream()
    await js.publish("ctilink.in.acme", INSTALL)
    try:
        first.kill()  # SIGKILL: its nats-server is told by the kernel and stops
        first.wait()
        second, again = _start(tmp_path, tmp_path / "second.log")
        try:
            # The producer connected before the kill goes on, reconfigured in nothing:
            # as producers do, it sends again what was not acked, with the same id.
            for n in range(5):
                event = {"type": "portal_restarted", "id": f"r{n}", "network": "acme"}
                await publish_until_acked(js, json.dumps(event).encode(), f"r{n}")

            async def applied() -> bool:
                reply = await producer.request(
                    "ctilink.api.status", b'{"network":"acme"}', timeout=2
                )
                return b'"position":6' in reply.data

            await wait_for(applied)
            servers = _servers_of(folder)
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(30) == 0
    finally:
        await producer.close()

    assert again == url  # the same address
    assert len(servers) == 1
    assert _servers_of(folder) == []  # and it stopped with the service


async def test_a_second_serve_on_the_same_store_is_refused_in_one_line(tmp_path):
    first, _ = _start(tmp_path, tmp_path / "first.log")
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "ctilink.adapters.cli",
                "serve",
                "--store",
                str(tmp_path / "ctilink.db"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(30)

    assert done.returncode == 2
    assert done.stderr.startswith(f"ctilink: another ctilink serve (pid {first.pid}) runs")
    assert len(done.stderr.strip().splitlines()) == 1


async def test_a_server_left_running_on_the_store_is_stopped_before_a_new_one_starts(tmp_path):
    from ctilink.adapters.nats.embedded import EmbeddedNats

    folder = tmp_path / "ctilink.db.nats"
    leftover = EmbeddedNats(folder, owner=True)  # as if its serve had died without telling it
    url = leftover.start()

    process, again = _start(tmp_path, tmp_path / "serve.log")
    try:
        servers = _servers_of(folder)
        left_exited = leftover.process is not None and leftover.process.poll() is not None
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)

    assert left_exited
    assert again == url  # its port, kept beside the store
    assert len(servers) == 1 and servers[0] == int((folder / "nats.pid").read_text())
    assert "left running" in (tmp_path / "serve.log").read_text()


async def test_sync_always_has_the_embedded_server_sync_every_write(tmp_path):
    log = tmp_path / "serve.log"
    process = serve_process(tmp_path / "ctilink.db", log, "--sync", "always", ready=False)
    try:
        wait_ready(process, log)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)

    config = (tmp_path / "ctilink.db.nats" / "auth.conf").read_text()
    assert "sync_interval: always" in config
    assert "every write synced" in log.read_text()


async def test_events_sent_to_a_stream_made_afresh_are_applied_not_taken_for_decided(tmp_path):
    # The store keeps each partition's last stream sequence; a new CTILINK_IN (its
    # data folder moved away, the stream deleted) numbers from 1 again.
    first, url = _start(tmp_path, tmp_path / "first.log")
    try:
        nc = await nats.connect(url, **_login(tmp_path))
        js = nc.jetstream()
        await js.publish("ctilink.in.acme", INSTALL)
        for n in range(20):
            event = {"type": "portal_restarted", "id": f"a{n}", "network": "acme"}
            await js.publish("ctilink.in.acme", json.dumps(event).encode())

        async def at(position: int) -> bool:
            reply = await nc.request("ctilink.api.status", b'{"network":"acme"}', timeout=2)
            return f'"position":{position}'.encode() in reply.data

        await wait_for(lambda: at(21))
        await nc.close()
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(30) == 0
    (tmp_path / "ctilink.db.nats").rename(tmp_path / "old.nats")

    second, url = _start(tmp_path, tmp_path / "second.log")
    try:
        nc = await nats.connect(url, **_login(tmp_path))
        js = nc.jetstream()
        for n in range(20):
            event = {"type": "portal_restarted", "id": f"b{n}", "network": "acme"}
            await js.publish("ctilink.in.acme", json.dumps(event).encode())
        await wait_for(lambda: at(41))
        await nc.close()
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
    assert "decided before came again" not in (tmp_path / "second.log").read_text()


async def test_the_embedded_server_lets_in_only_who_holds_the_stores_credentials(tmp_path):
    process, url = _start(tmp_path, tmp_path / "serve.log")
    folder = tmp_path / "ctilink.db.nats"
    try:
        with pytest.raises(Exception, match=r"[Aa]uthorization"):
            await nats.connect(url, allow_reconnect=False, connect_timeout=3, error_cb=_quiet)
        nc = await nats.connect(url, **_login(tmp_path))
        await nc.jetstream().publish("ctilink.in.acme", INSTALL)
        await nc.close()
        # Nothing of the password on any process's command line (another user sees those).
        password = _login(tmp_path)["password"]
        lines = [
            Path(f"/proc/{pid}/cmdline").read_bytes()
            for pid in [process.pid, *_children(process.pid)]
        ]
        streams = subprocess.run(
            [
                sys.executable,
                "-m",
                "ctilink.adapters.cli",
                "streams",
                "--store",
                str(tmp_path / "ctilink.db"),
                "--json",
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=30,
        )
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0

    assert len(lines) >= 3 and not any(password.encode() in line for line in lines)
    for name in ("credentials", "auth.conf"):
        assert (folder / name).stat().st_mode & 0o077 == 0, name  # the owner's alone
    # The CLI finds the store's embedded server, and logs in, without --nats.
    assert streams.returncode == 0, streams.stderr
    assert {s["name"] for s in json.loads(streams.stdout)} == {"CTILINK_IN", "CTILINK_OUT"}
    assert "127.0.0.1" in url


async def _quiet(_: Exception) -> None:
    """No traceback for the refused login (it is what the test expects)."""


def _children(pid: int) -> list[int]:
    """Every process below `pid` (the publisher, the writer, the nats-server)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found += [int(entry.name), *_children(int(entry.name))]
    return found
