"""The embedded server's folder: what serve trusts of the files a dead one left there."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ctilink.adapters.nats.embedded import EmbeddedNats, _read_port

HOLD = "import fcntl, os, sys, time\nfd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n" + (
    "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(60)\n"
)


def sleeper(*args: str) -> subprocess.Popen[str]:
    """A process running `HOLD` (holding the lock file given) or sleeping."""
    code = HOLD if args else "import time; time.sleep(60)"
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True
    )
    if args:
        assert process.stdout is not None and process.stdout.readline() == "held\n"
    return process


def test_a_recorded_pid_is_trusted_only_if_that_process_holds_the_folders_lock(tmp_path):
    server = EmbeddedNats(tmp_path, owner=True)
    holder, stranger = sleeper(str(tmp_path / "nats.lock")), sleeper()
    try:
        (tmp_path / "nats.pid").write_text(f"{stranger.pid}\n")
        assert server._recorded_pid() is None  # would have been stopped before
        (tmp_path / "nats.pid").write_text(f"{holder.pid}\n")
        assert server._recorded_pid() == holder.pid
        (tmp_path / "nats.pid").write_text("garbage")
        assert server._recorded_pid() is None
    finally:
        for process in (holder, stranger):
            process.kill()
            process.wait()


@pytest.mark.parametrize("kept", ["garbage", "", "99999", "0", "-1", "4222x"])
def test_a_damaged_port_file_is_ignored_and_a_free_port_chosen(tmp_path, kept):
    (tmp_path / "port").write_text(kept)
    assert _read_port(tmp_path / "port") is None


def test_a_kept_port_is_used_again(tmp_path):
    (tmp_path / "port").write_text("41234\n")
    assert _read_port(tmp_path / "port") == 41234


def test_a_port_bound_by_another_program_but_not_listening_counts_as_taken():
    import socket

    from ctilink.adapters.nats.embedded import _free_port, _port_in_use

    port = _free_port()
    assert not _port_in_use(port)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))  # bound, never listening
        assert _port_in_use(port)
