"""A PostgreSQL server of the test's own, so that the test may stop and restart it."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest


def _binaries() -> Path | None:
    """The newest installed PostgreSQL server binaries, if any."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivatePostgres:
    """initdb into a folder, then start, stop and restart at will (trust auth, loopback)."""

    def __init__(self) -> None:
        self.bin = _binaries()
        # Not under pytest's tmp_path: its parents are private to root, and the
        # server runs as `postgres` when the tests run as root.
        self.folder = Path(tempfile.mkdtemp(prefix="ctilink-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        # initdb refuses to run as root: run the server as the `postgres` user then.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def unavailable(self) -> str | None:
        """Why this machine cannot run a private server, or None."""
        if self.bin is None:
            return "no PostgreSQL server binaries (initdb) installed"
        if self.as_user and shutil.which("runuser") is None:
            return "running as root without runuser"
        return None

    def _run(self, *command: str) -> None:
        done = subprocess.run(
            [*self.as_user, *command], capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr

    def create(self) -> None:
        """A new cluster in the folder, started."""
        problem = self.unavailable()
        if problem is not None:
            if os.environ.get("CI") == "true":
                pytest.fail(f"CI needs a private PostgreSQL: {problem}")
            pytest.skip(problem)
        if self.as_user:
            shutil.chown(self.folder, "postgres")
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
            "--auth=trust", "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        self.start()

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.folder / "server.log"), "-w", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` rolls back open transactions, `immediate` is a crash."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        """Stop at once and delete the cluster."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(AssertionError):
                self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        """A store URL on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"
