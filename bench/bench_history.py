"""Long histories: each command's time and peak memory on one network of 10^3 … 10^7 events.

Every command runs as the `ctilink` a user runs, in a process of its own, its
output thrown away; peak memory is the process's maximum resident set. The
ratios compare with the same command on a 300-event network, and the ingest
rate into one network with the same number of events spread over 1,000.

    python -m bench.bench_history                        # 10^3, 10^5, 10^6
    python -m bench.bench_history --sizes 1000 10000000  # add 10^7 (about 20 min)
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from bench.machine import describe
from bench.workload import network_events

CTILINK = [sys.executable, "-m", "ctilink.adapters.cli.main"]
BASELINE = 300
SPREAD_OVER = 1_000
encode = msgspec.json.Encoder().encode

# (label, arguments after `ctilink`); {store}, {network} and {one} are filled in.
COMMANDS = [
    ("first write", ["ingest", "{one}", "--store", "{store}", "--json"]),
    ("status", ["status", "{network}", "--store", "{store}", "--json"]),
    ("export", ["export", "{network}", "--store", "{store}"]),
    ("log --json", ["log", "{network}", "--store", "{store}", "--json"]),
    ("audit --json", ["audit", "{network}", "--store", "{store}", "--json"]),
    ("replay --json", ["replay", "{network}", "--store", "{store}", "--json"]),
    ("verify", ["verify", "{network}", "--store", "{store}"]),
]


def write_lines(path: Path, events: int, networks: int) -> None:
    """`events` valid JSON lines over `networks` networks, streamed to a file."""
    rng = random.Random(7)
    streams = [network_events(f"net-{n:04d}", 10, rng) for n in range(networks)]
    with path.open("wb") as out:
        for stream in streams:  # every network is installed first
            out.write(encode(next(stream)) + b"\n")
        left = events - networks
        while left > 0:
            chunk = min(left, 10_000)
            out.write(b"".join(encode(next(rng.choice(streams))) + b"\n" for _ in range(chunk)))
            left -= chunk


def run(arguments: list[str]) -> tuple[float, float]:
    """(seconds, peak MB) of one ctilink process, output discarded; it must succeed.

    The peak is the process's own (VmHWM, read while it runs): the rusage of a
    child also counts the parent it was forked from, which a benchmark holding
    its workload in memory would inflate.
    """
    started = time.perf_counter()
    process = subprocess.Popen(
        [*CTILINK, *arguments], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    peak = watch(process)
    seconds = time.perf_counter() - started
    error = process.stderr.read().decode() if process.stderr else ""
    if process.returncode != 0:
        raise SystemExit(f"ctilink {' '.join(arguments)} exited {process.returncode}: {error}")
    return seconds, peak


def watch(process: subprocess.Popen[bytes]) -> float:
    """Wait for the process; its peak resident memory in MB, read every 5 ms."""
    peak = 0.0
    while process.poll() is None:
        peak = max(peak, _high_water(process.pid))
        time.sleep(0.005)
    return peak


def _high_water(pid: int) -> float:
    """The process's peak resident memory so far, in MB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def one_more(path: Path) -> None:
    """A line a long network accepts: a restart with an id of its own."""
    path.write_bytes(b'{"type":"portal_restarted","id":"one-more","network":"net-0000"}\n')


def measure(tmp: Path, events: int) -> dict[str, tuple[float, float]]:
    """Build a one-network store of `events`, then time every command on it."""
    lines, store, one = tmp / f"{events}.jsonl", tmp / f"{events}.db", tmp / "one.jsonl"
    write_lines(lines, events, 1)
    one_more(one)
    found = {"ingest": run(["ingest", str(lines), "--store", str(store), "--json"])}
    lines.unlink()
    fill = {"store": str(store), "network": "net-0000", "one": str(one)}
    for label, arguments in COMMANDS:
        found[label] = run([a.format(**fill) for a in arguments])
    found["store MB"] = (store.stat().st_size / 2**20, 0.0)
    store.unlink()
    return found


def spread_rate(tmp: Path, events: int) -> float:
    """Events/s of ingesting `events` spread over SPREAD_OVER networks."""
    lines, store = tmp / "spread.jsonl", tmp / "spread.db"
    write_lines(lines, events, SPREAD_OVER)
    seconds, _ = run(["ingest", str(lines), "--store", str(store), "--json"])
    lines.unlink()
    store.unlink()
    return events / seconds


def held_memory(tmp: Path, per_network: int, networks: int = SPREAD_OVER) -> float:
    """Peak MB of a process that holds `networks` networks of `per_network` events for writing."""
    lines, store = tmp / "held.jsonl", tmp / "held.db"
    write_lines(lines, networks * per_network, networks)
    run(["ingest", str(lines), "--store", str(store)])
    lines.unlink()
    code = (
        "import sys, msgspec\n"
        "from ctilink.adapters.store.selection import open_service\n"
        "from ctilink.domain.messages import decode\n"
        "s = open_service(sys.argv[1])\n"
        f"for n in range({networks}):\n"
        "    e = {'type': 'portal_restarted', 'id': f'held-{n}', 'network': f'net-{n:04d}'}\n"
        "    s.ingest([decode(msgspec.json.encode(e))])\n"
        "s.close()\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code, str(store)])
    peak = watch(process)
    if process.returncode:
        raise SystemExit("holding networks failed")
    store.unlink()
    return peak


def main() -> None:
    """Print the growth table, the ratios against 300 events, and the held-networks memory."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000, 1_000_000])
    parser.add_argument("--skip-held", action="store_true", help="skip the held-networks figure")
    args = parser.parse_args()
    print(f"machine: {describe()}")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        base = measure(tmp, BASELINE)
        results = {size: measure(tmp, size) for size in args.sizes}
        labels = [label for label, _ in COMMANDS]
        print()
        print("| events in one network | store | ingest | " + " | ".join(labels) + " |")
        print("| --- " * (len(labels) + 3) + "|")
        for size, found in [(BASELINE, base), *results.items()]:
            rate = size / found["ingest"][0]
            cells = [f"{found[label][0]:.2f} s, {found[label][1]:.0f} MB" for label in labels]
            print(
                f"| {size:,} | {found['store MB'][0]:,.0f} MB | {rate:,.0f}/s | "
                + " | ".join(cells)
                + " |"
            )
        largest = max(args.sizes)
        print()
        print(f"against {BASELINE} events (time x, memory x), at {largest:,} events:")
        for label in labels:
            seconds, peak = results[largest][label]
            print(
                f"  {label:14s} {seconds / base[label][0]:5.2f}x time  "
                f"{peak / base[label][1]:5.2f}x memory"
            )
        spread_size = min(largest, 1_000_000)
        spread = spread_rate(tmp, spread_size)
        one = spread_size / results.get(spread_size, results[largest])["ingest"][0]
        print(
            f"ingest of {spread_size:,}: one network {one:,.0f}/s, over {SPREAD_OVER:,} networks "
            f"{spread:,.0f}/s: {one / spread:.2f}x"
        )
        if not args.skip_held:
            for per_network in (100, 1_000):
                peak = held_memory(tmp, per_network)
                print(
                    f"holding {SPREAD_OVER:,} networks of {per_network:,} events for writing: "
                    f"peak {peak:.0f} MB"
                )


if __name__ == "__main__":
    main()
