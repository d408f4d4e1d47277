"""`ingest` shows how far it is (docs/commands.md, ingest): on a terminal a bar with the
total, the rate and the time left; elsewhere a line every few seconds; always on stderr,
so that `--json` on stdout stays exact. Run as a process, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import termios
from pathlib import Path

import pytest

from tests.integration.test_cli import CTILINK, assert_one_line_error, ctilink

LINES = 20_000
# ingest: 24% of 4.2 MiB, 10,048 lines in 0.4 s (27,552 lines/s, 2.8 MiB/s), about 1.1 s left
WITH_TOTAL = re.compile(
    r"^ingest: \d{1,3}% of [\d.]+ MiB, [\d,]+ lines in [\d.,]+ s "
    r"\([\d,]+ lines/s, [\d.,]+ MiB/s\), about [\d.,]+ s left$"
)
WITHOUT_TOTAL = re.compile(
    r"^ingest: [\d.]+ MiB, [\d,]+ lines in [\d.,]+ s \([\d,]+ lines/s, [\d.,]+ MiB/s\)$"
)


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20,000 installations, one network each: long enough to be seen going."""
    path = tmp_path_factory.mktemp("input") / "many.jsonl"
    event = {"type": "portal_installed", "platform": "windows"}
    lines = (json.dumps({**event, "id": f"i{n}", "network": f"n{n}"}) for n in range(LINES))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_off_a_terminal_progress_lines_go_to_stderr_and_json_stays_exact(many, new_store) -> None:  # type: ignore[no-untyped-def]
    run = ctilink(
        "ingest", str(many), "--json", "--batch", "1000",
        store=new_store(), env={"CTILINK_PROGRESS_EVERY": "0.05"},
    )  # fmt: skip

    reports = run.json_lines()
    progress = run.err.splitlines()
    assert run.rc == 0
    assert [r["line"] for r in reports] == list(range(1, LINES + 1))  # nothing else on stdout
    assert progress and all(WITH_TOTAL.match(line) for line in progress), progress
    told = [int(line.split()[5].replace(",", "")) for line in progress]
    assert told == sorted(told) and told[-1] <= LINES


def test_standard_input_has_no_total_so_no_percentage_nor_time_left(many, new_store) -> None:  # type: ignore[no-untyped-def]
    run = ctilink(
        "ingest", "-", "--batch", "1000",
        stdin=many.read_bytes(), store=new_store(), env={"CTILINK_PROGRESS_EVERY": "0.05"},
    )  # fmt: skip

    progress = run.err.splitlines()
    assert run.rc == 0 and f"lines      {LINES}" in run.out
    assert progress and all(WITHOUT_TOTAL.match(line) for line in progress), progress


def test_a_short_ingest_writes_no_progress(new_store) -> None:  # type: ignore[no-untyped-def]
    text = json.dumps({"type": "portal_installed", "id": "a", "network": "n", "platform": "ucm"})

    run = ctilink("ingest", "-", stdin=text.encode(), store=new_store())

    assert (run.rc, run.err) == (0, "")


def test_on_a_terminal_a_bar_shows_the_total_the_rate_and_the_time_left(
    many, new_store, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CTILINK_")}
    command = [str(CTILINK), "ingest", str(many), "--json", "--batch", "1000"]
    with (tmp_path / "out.jsonl").open("wb") as out:  # a pipe would fill while we read the bar
        process = subprocess.Popen(
            [*command, "--store", new_store()], stdout=out, stderr=follower, env=environ
        )
    os.close(follower)
    drawn = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the terminal's last writer went away
            break
        if not chunk:
            break
        drawn += chunk
    process.wait(120)
    os.close(leader)
    stdout = (tmp_path / "out.jsonl").read_bytes()

    frames = drawn.decode().split("\r")
    bars = [frame for frame in frames if frame.startswith("ingest:")]
    assert process.returncode == 0 and len(stdout.splitlines()) == LINES
    assert bars, drawn[:500]
    size = f"/{many.stat().st_size / 2**20:.2f}M"  # tqdm's binary units
    last = bars[-1]
    assert "%|" in last and size in last, last  # how far of the file's size
    assert re.search(r"\[\d\d:\d\d<\d\d:\d\d, [\d.]+[kM]?B/s, [\d,]+ lines\]", last), last
    assert frames[-1].strip() == ""  # the bar is taken away before the summary


@pytest.mark.parametrize("every", ["soon", "0", "-1", "nan", "inf", ""])
def test_a_bad_progress_interval_is_a_one_line_error_naming_the_variable(
    every: str, tmp_path: Path
) -> None:
    environ = {"CTILINK_PROGRESS_EVERY": every}
    run = ctilink("ingest", "-", stdin=b"", store=tmp_path / "s.db", env=environ)

    assert_one_line_error(run)
    assert "$CTILINK_PROGRESS_EVERY" in run.err
