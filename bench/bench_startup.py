"""Start-up of a one-shot command next to a bare interpreter, side by side (run on demand).

`ctilink status NET --json` on a SQLite store, as a new process, against
`python -c pass` run in turn with it, so that the ratio holds on a noisy machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.machine import describe

ROOT = Path(__file__).resolve().parents[1]
CTILINK = Path(sys.executable).parent / "ctilink"


def timed(command: list[str]) -> float:
    """Wall seconds of one run of a command."""
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    """Time both commands in turn and print medians and the ratio of each pair."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "ctilink.db")
        scenario = str(ROOT / "examples" / "scenario.jsonl")
        subprocess.run(
            [str(CTILINK), "ingest", scenario, "--store", store], check=True, capture_output=True
        )
        status = [str(CTILINK), "status", "acme", "--json", "--store", store]
        bare = [sys.executable, "-c", "pass"]
        timed(status), timed(bare)  # warm the page cache
        pairs = [(timed(status), timed(bare)) for _ in range(args.runs)]
    ours = statistics.median(a for a, _ in pairs)
    python = statistics.median(b for _, b in pairs)
    ratio = statistics.median(a / b for a, b in pairs)
    print(f"machine: {describe()}")
    print(f"ctilink status --json: {ours * 1e3:.0f} ms; python -c pass: {python * 1e3:.0f} ms")
    print(f"ratio (median of {args.runs} pairs): {ratio:.1f}x")


if __name__ == "__main__":
    main()
