"""A long fuzz run of the one decode path and of ingest (run on demand; the suite runs a short one).

Generates hostile lines (random bytes, mutated and spliced valid events, random
JSON, odd datetimes, repeated keys, deep nesting), interleaves them with valid
events of their own networks, and ingests everything through the same path as
`ctilink ingest`. Checks, for every input: no exception escapes, every line gets
exactly one report, every valid event is accepted exactly once and in order.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import time
from collections.abc import Callable

from bench.machine import describe
from ctilink.adapters.ingest.lines import LineReport, ingest
from ctilink.adapters.store.selection import MEMORY, open_service
from ctilink.domain.decoding import decode

VALID = [
    {"type": "portal_restarted"},
    {"type": "link_changed", "system": "p", "component": "csta", "up": True},
    {"type": "directory_changed", "system": "p", "entries": [{"name": "A", "number": "1"}]},
    {"type": "central_cti_link_set", "enabled": False},
]
ODD = [
    None,
    True,
    0,
    -1,
    2**64,
    1e308,
    -0.0,
    "",
    "x" * 300,
    "\u0000",
    "\ud7ff",
    "\U0010ffff",
    [],
    {},
    [[[]]],
    {"a": {"b": {}}},
    "9999-12-31T23:59:59-01:00",
    "0001-01-01T00:00:00+01:00",
    "2024-01-01T00:00:00.1234567Z",
    "2024-02-30T00:00:00Z",
    "2024-01-01 00:00:00+14:00",
]
FIELDS = ["type", "id", "network", "at", "actor", "system", "entries", "enabled", "up", "zz"]


def hostile(rng: random.Random, network: str) -> bytes:
    """One hostile line of some kind."""
    kind = rng.randrange(7)
    base = json.dumps({**rng.choice(VALID), "id": f"h{rng.random()}", "network": network})
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 120)))
    if kind == 1:  # one field set to something odd
        event = json.loads(base)
        event[rng.choice(FIELDS)] = rng.choice(ODD)
        return json.dumps(event).encode()
    if kind == 2:  # bytes spliced in
        data = base.encode()
        at = rng.randrange(len(data))
        return data[:at] + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4))) + data[at:]
    if kind == 3:  # a key given twice
        key = rng.choice(FIELDS)
        return base[:-1].encode() + f', "{key}": {json.dumps(rng.choice(ODD))}}}'.encode()
    if kind == 4:
        return b"[" * rng.randrange(100, 5000) + b"]" * rng.randrange(100, 5000)
    if kind == 5:
        return json.dumps(rng.choice(ODD)).encode()
    return base.encode()[: rng.randrange(len(base))]  # cut short


def run(inputs: int, seed: int, progress: Callable[[int], None]) -> dict[str, float]:
    """Fuzz `inputs` hostile lines among valid ones; raise AssertionError on any broken property."""
    rng = random.Random(seed)
    service = open_service(MEMORY)
    started = time.perf_counter()
    done = valid_total = 0
    while done < inputs:
        chunk = min(5000, inputs - done)
        network = f"fz{done}"
        lines = [
            json.dumps(
                {"type": "portal_installed", "id": "i", "network": network, "platform": "windows"}
            ).encode()
        ]
        valid_ids = ["i"]
        for n in range(chunk):
            bad = hostile(rng, network)
            assert decode(bad) is not None  # decode never raises
            lines.append(bad.replace(b"\n", b" ").replace(b"\r", b" "))
            lines.append(
                json.dumps({"type": "portal_restarted", "id": f"v{n}", "network": network}).encode()
            )
            valid_ids.append(f"v{n}")
        reports: list[LineReport] = []
        ingest(service, io.BytesIO(b"\n".join(lines) + b"\n"), reports.append)
        numbers = [r.line for r in reports]
        assert numbers == sorted(set(numbers)), "a line reported twice or out of order"
        logged = [e.message.id for e in service.log(network)]
        # Hostile lines that are valid events of this network may land in the log too:
        # the valid ones must all be there, once each, in order.
        assert [i for i in logged if i in set(valid_ids)] == valid_ids, network
        done += chunk
        valid_total += len(valid_ids)
        progress(done)
    seconds = time.perf_counter() - started
    service.close()
    return {"inputs": inputs, "valid": valid_total, "seconds": seconds}


def main() -> None:
    """Run and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    figures = run(args.inputs, args.seed, lambda n: print(f"\r{n:,} inputs", end="", flush=True))
    print()
    print(f"machine: {describe()}")
    print(
        f"{figures['inputs']:,} hostile inputs among {figures['valid']:,} valid events: "
        f"no exception, one report per line, every valid event once and in order; "
        f"{figures['seconds']:.1f} s ({figures['inputs'] / figures['seconds']:,.0f} inputs/s)"
    )


if __name__ == "__main__":
    main()
