"""Where a documented block runs: a fresh folder holding a copy of examples/ and infra/,
the checkout's `ctilink` and `nats-server` first on PATH, no CTILINK_* variable of the
caller, and the servers the block's placeholders ask for, on free ports."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import nkeys

from ctilink.adapters.nats.embedded import binary
from tests.docs.blocks import ROOT, Block, program

BIN = Path(sys.executable).parent  # the venv running the tests: its ctilink is the checkout's
PLACEHOLDER = re.compile(r"\{(port|pg|nats)\}")
USERS = ("service", "producer", "reader")
READY_WITHIN = 60.0
STOP_WITHIN = 30.0


def free_port() -> int:
    """A loopback port nothing listens on now, chosen by the kernel."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def group_members(group: int) -> list[str]:
    """The live processes of a process group (zombies left out), by pid and name."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            pid, rest = stat.read_text().split(" (", 1)
            name, fields = rest.rsplit(") ", 1)
            state, _, pgid = fields.split()[:3]
            if int(pgid) == group and state != "Z":
                members.append(f"{pid} {name}")
    return members


def without_secrets(folder: str, names: list[str]) -> list[str]:
    """shutil.copytree's ignore: seeds and tokens an operator made in compose/secrets/."""
    return [n for n in names if Path(folder).name == "secrets" and n != ".gitignore"]


class Workspace:
    """One block's folder, environment and servers; `close` stops what it started."""

    def __init__(self, folder: Path, new_pg_store: Callable[[], str]) -> None:
        self.run_dir = folder / "run"  # the block's working directory
        self.meta = folder / "meta"  # the harness's own files, out of the block's way
        self.meta.mkdir(parents=True)
        self.run_dir.mkdir()
        shutil.copytree(ROOT / "examples", self.run_dir / "examples")
        shutil.copytree(ROOT / "infra", self.run_dir / "infra", ignore=without_secrets)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CTILINK_")}
        self.env["PATH"] = f"{BIN}{os.pathsep}{self.env.get('PATH', '')}"
        self.new_pg_store = new_pg_store
        self.values: dict[str, str] = {}
        self.servers: list[subprocess.Popen[bytes]] = []
        self.steps = 0

    # --- placeholders -------------------------------------------------------------

    def value(self, name: str) -> str:
        """A placeholder's value, made on first use and the same for the whole block."""
        if name not in self.values:
            make = {"port": lambda: str(free_port()), "pg": self.new_pg_store}
            self.values[name] = make.get(name, self.deployed_nats)()
        return self.values[name]

    def fill(self, text: str, block: Block) -> str:
        """The text with the block's replacements made and its placeholders filled."""
        for old, new in [args for args in block.args("replace") if len(args) == 2]:
            text = text.replace(old, new)
        return PLACEHOLDER.sub(lambda found: self.value(found.group(1)), text)

    def deployed_nats(self) -> str:
        """A nats-server run from infra/nats/nats-server.conf (the users' nkeys, JetStream
        synced) on a free port, with the users' seeds in the block's folder; its URL."""
        keys = {}
        for user in USERS:
            pair = nkeys.from_seed(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER))
            seed = self.run_dir / f"{user}.nk"
            seed.write_bytes(pair.seed + b"\n")
            seed.chmod(0o600)
            keys[f"CTILINK_{user.upper()}_NKEY"] = pair.public_key.decode()
        deployed = (ROOT / "infra/nats/nats-server.conf").read_text()
        config = self.meta / "nats-server.conf"
        config.write_text(deployed.replace("/var/lib/nats/jetstream", str(self.meta / "js")))
        shutil.copy(ROOT / "infra/nats/accounts.conf", self.meta)  # included beside it
        ports = self.meta / "ports"
        ports.mkdir()
        listen = ["-a", "127.0.0.1", "-p", "-1", "--ports_file_dir", str(ports)]
        with (self.meta / "nats-server.log").open("wb") as log:
            server = subprocess.Popen(
                [binary(), "-c", str(config), *listen],
                env=self.env | keys,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.servers.append(server)
        deadline = time.monotonic() + 10
        while True:
            assert server.poll() is None, (self.meta / "nats-server.log").read_text()
            assert time.monotonic() < deadline, "the deployed nats-server did not listen"
            for written in ports.glob("*.ports"):
                with contextlib.suppress(ValueError, KeyError, IndexError):  # not whole yet
                    return json.loads(written.read_text())["nats"][0]
            time.sleep(0.02)

    # --- running ------------------------------------------------------------------

    def run(self, block: Block) -> str:
        """Run the block (setups first, then what runs beside it); its output. Fails when a
        command fails."""
        for setup in block.args("setup"):
            self.script([self.fill(setup[0], block)], what="setup")
        besides = [
            (self.fill(command, block), ready)
            for command, ready in [args for args in block.args("beside") if len(args) == 2]
        ]
        running = [(*self.start(command, ready), command) for command, ready in besides]
        try:
            return self._run(block)
        finally:
            for process, log, command in reversed(running):
                self.stop(process, log, command)

    def _run(self, block: Block) -> str:
        """The block's own commands, in order."""
        filled = replace(block, text=self.fill(block.text, block))
        backgrounds = [args for args in block.args("background") if len(args) == 2]
        output: list[str] = []
        batch: list[str] = []
        for command in filled.commands():
            started = program(command)
            ready = next((r for start, r in backgrounds if started.startswith(start)), None)
            if ready is None:
                batch.append(command)
                continue
            if batch:
                output.append(self.script(batch))
                batch = []
            output.append(self.background(command, ready))
        if batch:
            output.append(self.script(batch))
        return "".join(output)

    def script(self, commands: list[str], what: str = "block") -> str:
        """Run commands as one bash script (errexit, nounset, pipefail); exported variables
        carry to the next step."""
        self.steps += 1
        saved = self.meta / f"env{self.steps}"
        body = "\n".join(["set -euo pipefail", *commands, f"env -0 > {saved}", ""])
        done = subprocess.run(
            ["bash", "-c", body],
            cwd=self.run_dir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"{what} exited {done.returncode}:\n{body}\n{output}"
        pairs = [item.split("=", 1) for item in saved.read_text().split("\0") if "=" in item]
        self.env = {name: value for name, value in pairs}
        return output

    def background(self, command: str, ready: str) -> str:
        """Start a long-running command, wait for `ready` in its output, SIGTERM it as
        systemd or `kill` would, and require exit status 0; its output."""
        process, log = self.start(command, ready)
        return self.stop(process, log, command)

    def start(self, command: str, ready: str) -> tuple[subprocess.Popen[bytes], Path]:
        """Start a long-running command and wait until it says `ready`."""
        self.steps += 1
        log = self.meta / f"background{self.steps}.log"
        with log.open("wb") as out:
            # bash runs a single command by exec: the process is the command itself.
            process = subprocess.Popen(
                ["bash", "-c", command],
                cwd=self.run_dir,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + READY_WITHIN
            while ready not in log.read_text(errors="replace"):
                ended = process.poll()
                assert ended is None, f"{command!r} exited {ended} before {ready!r}:\n" + (
                    log.read_text(errors="replace")
                )
                assert time.monotonic() < deadline, f"{command!r} never said {ready!r}"
                time.sleep(0.05)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise
        return process, log

    def stop(self, process: subprocess.Popen[bytes], log: Path, command: str) -> str:
        """SIGTERM a command started by `start`; it must exit 0 and leave nothing running."""
        try:
            process.send_signal(signal.SIGTERM)
            status = process.wait(STOP_WITHIN)
            # What it started (a publisher, an embedded nats-server) stops with it.
            deadline = time.monotonic() + 10
            while (left := group_members(process.pid)) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        output = log.read_text(errors="replace")
        assert status == 0, f"{command!r} exited {status} on SIGTERM:\n{output}"
        assert left == [], f"{command!r} left processes running"
        return output

    def close(self) -> None:
        """Stop the servers the placeholders started."""
        for server in self.servers:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
