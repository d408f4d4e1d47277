"""A real nats-server per test (never the machine's own on 4222), and the service as a process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.js.api import ConsumerConfig, DeliverPolicy

from ctilink.adapters.nats.embedded import EmbeddedNats

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """A nats-server with JetStream on a free loopback port, data under tmp_path."""
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def small_payload_server(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A nats-server that takes messages of at most 64 KiB."""
    config = tmp_path / "small.conf"
    config.write_text("max_payload: 65536\n")
    server = EmbeddedNats(tmp_path / "nats", config=config)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def nc(nats_server: EmbeddedNats) -> AsyncIterator[Client]:
    """A client connection that rides out server restarts."""

    async def quiet(_: Exception) -> None:
        pass

    client = await nats.connect(
        nats_server.url, reconnect_time_wait=0.2, max_reconnect_attempts=-1, error_cb=quiet
    )
    yield client
    with contextlib.suppress(Exception):  # the server may be gone already
        await asyncio.wait_for(client.close(), 5)


def serve_process(
    store: Path | str, log: Path, *args: str, ready: bool = True
) -> subprocess.Popen[bytes]:
    """`ctilink serve --store STORE ARGS…` in a process of its own, its output into `log`;
    returned once it says it is ready (unless `ready` is False)."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ctilink.adapters.cli", "serve", "--store", str(store), *args],
            stdout=out,
            stderr=out,
            cwd=ROOT,
        )
    if ready:
        wait_ready(process, log)
    return process


def wait_ready(process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until the serve process says it is ready (it must not end first)."""
    deadline = time.monotonic() + 60
    while "ready:" not in log.read_text():
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


class Service:
    """`ctilink serve` in its own process, so that it can be killed."""

    def __init__(
        self, store: Path | str, url: str, log: Path, extra: list[str] | None = None
    ) -> None:
        self.store, self.url, self.log = store, url, log
        self.extra = extra or []
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start and wait until it says it is ready."""
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ctilink.adapters.cli",
                    "serve",
                    "--store",
                    str(self.store),
                    "--nats",
                    self.url,
                    *self.extra,
                ],
                stdout=out,
                stderr=out,
                cwd=ROOT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.log.read_text().count("ready:") > self.starts:
                self.starts += 1
                return
            assert self.process.poll() is None, self.log.read_text()
            time.sleep(0.05)
        raise AssertionError(f"service not ready:\n{self.log.read_text()}")

    starts = 0

    def kill(self) -> None:
        """SIGKILL, as a crash."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> int:
        """SIGTERM and wait for the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)


@pytest.fixture
def service(tmp_path: Path, nats_server: EmbeddedNats, new_store) -> Iterator[Service]:  # type: ignore[no-untyped-def]
    """The service on a fresh store of each kind, connected to the test's nats-server."""
    svc = Service(new_store(), nats_server.url, tmp_path / "serve.log")
    svc.start()
    yield svc
    if svc.process is not None and svc.process.poll() is None:
        svc.process.kill()
        svc.process.wait()


async def stream_messages(nc: Client, stream: str, subjects: str) -> list:
    """Every message of a stream on some subjects, read with an ephemeral ordered consumer."""
    js = nc.jetstream()
    info = await js.stream_info(stream, subjects_filter=subjects)
    total = sum((info.state.subjects or {}).values()) if info.state.subjects else 0
    messages = []
    if total == 0:
        return messages
    sub = await js.subscribe(
        subjects,
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.ALL,
        config=ConsumerConfig(headers_only=False),
    )
    try:
        while len(messages) < total:
            messages.append(await sub.next_msg(timeout=5))
    finally:
        await sub.unsubscribe()
    return messages


async def wait_for(predicate, timeout: float = 30.0, every: float = 0.1) -> None:
    """Poll an async predicate until it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(every)
    raise AssertionError("condition not met in time")


def scenario() -> list[bytes]:
    """The example scenario's lines."""
    return [
        line.encode()
        for line in (ROOT / "examples/scenario.jsonl").read_text().splitlines()
        if line.strip()
    ]


def network_of(line: bytes) -> str:
    """The `network` of one event line."""
    return json.loads(line)["network"]


def make_key(folder: Path, user: str) -> str:
    """A key pair made as an operator makes one: the seed file, and its public key."""
    done = subprocess.run(
        [sys.executable, "-m", "ctilink.adapters.cli", "nkey", str(folder / f"{user}.nk")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return done.stdout.strip()


async def login(port: int, keys: Path, user: str, errors: list[str]):
    """A connection as one of the users, collecting permission errors."""

    async def error(e: Exception) -> None:
        errors.append(str(e))

    return await nats.connect(
        f"nats://127.0.0.1:{port}",
        nkeys_seed=str(keys / f"{user}.nk"),
        error_cb=error,
        allow_reconnect=False,
    )
