"""`status` latency of a long-lived network, in process (run on demand)."""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import msgspec

from bench.machine import describe
from bench.workload import single_network_lines
from ctilink.adapters.ingest.lines import ingest
from ctilink.adapters.store.selection import open_service
from ctilink.projections.status import status

_encode = msgspec.json.Encoder().encode


def main() -> None:
    """Build a 30-system network with a long history, then time `status`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--systems", type=int, default=30)
    parser.add_argument("--calls", type=int, default=2_000)
    args = parser.parse_args()
    lines = single_network_lines(args.events, args.systems)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "ctilink.db")
        writer = open_service(path)
        ingest(writer, io.BytesIO(b"\n".join(lines)), lambda _: None)
        writer.close()
        service = open_service(path)  # a fresh process's view: nothing cached
        timings = []
        for _ in range(args.calls):
            start = time.perf_counter()
            state, position = service.state_at("big")
            _encode(status(state, position))
            timings.append(time.perf_counter() - start)
        service.close()
    timings.sort()
    p50 = statistics.median(timings) * 1e6
    p99 = timings[int(len(timings) * 0.99)] * 1e6
    print(f"machine: {describe()}")
    print(f"network: {args.systems} systems, {position} events; {args.calls} status calls")
    print(f"status (load + project + encode JSON): p50 {p50:,.0f} µs, p99 {p99:,.0f} µs")


if __name__ == "__main__":
    main()
