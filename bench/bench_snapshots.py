"""Bytes stored per event, snapshots included, for a small and a large network state.

Each case in a fresh SQLite store, twice: snapshots every 100 positions (the old
policy, CTILINK_SNAPSHOT_EVERY=100) and by size (the default). "events" is the
events' own stored bytes; "stored" adds the snapshots written meanwhile.
"""

from __future__ import annotations

import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path

import msgspec

from bench.machine import describe
from ctilink.adapters.store.selection import open_service
from ctilink.domain import messages as m

SMALL_EVENTS = 5_000
LARGE_ENTRIES = 10_000  # per system, over 8 systems
AFTER_LARGE = 1_000


def event(kind: str, n: int, **fields: object) -> m.Message:
    """One event of network `acme`."""
    body = {"type": kind, "id": f"e{n}", "network": "acme", **fields}
    return m.decode(msgspec.json.encode(body))


def sizes(path: Path) -> tuple[int, int]:
    """Bytes of the events' and the snapshots' stored state."""
    with closing(sqlite3.connect(path)) as db:
        events = db.execute("SELECT SUM(LENGTH(state)) FROM stored_events").fetchone()[0]
        snaps = db.execute("SELECT COALESCE(SUM(LENGTH(state)), 0) FROM stored_snapshots")
        return int(events or 0), int(snaps.fetchone()[0])


def case(path: Path, every: int | None, large: bool) -> tuple[int, int, int]:
    """Write the case; (events, their bytes, snapshot bytes) of the measured run."""
    n = 0
    with closing(open_service(str(path))) as service:
        service.writes.snapshot_interval = every
        setup = [event("portal_installed", 0, platform="linux_server_edition")]
        setup.append(
            event("system_added", 1, system="p1", role="primary", platform="linux", address="a")
        )
        n = 2
        if large:
            entries = [
                {"name": f"User {i:05d}", "number": f"{i:05d}"} for i in range(LARGE_ENTRIES)
            ]
            for s in range(8):
                setup.append(
                    event(
                        "system_added",
                        n,
                        system=f"x{s}",
                        role="expansion",
                        platform="linux",
                        address="a",
                    )
                )
                setup.append(event("directory_changed", n + 1, system=f"x{s}", entries=entries))
                n += 2
        service.ingest(setup)
        before = sizes(path)
        count = AFTER_LARGE if large else SMALL_EVENTS
        measured = [
            event("portal_restarted", n + i)
            if large
            else event("link_changed", n + i, system="p1", component="csta", up=i % 2 == 0)
            for i in range(count)
        ]
        for start in range(0, count, 100):
            service.ingest(measured[start : start + 100])
    after = sizes(path)
    return count, after[0] - before[0], after[1] - before[1]


def main() -> None:
    """Both cases under both policies: bytes per event, and the total over the events' own."""
    print(f"machine: {describe()}")
    heading = ("case", "policy", "events", "B/event", "stored/event", "ratio")
    print("{:34s} {:12s} {:>7s} {:>8s} {:>13s} {:>6s}".format(*heading))
    for large, label in (
        (False, "small state, link changes"),
        (True, "80,000 entries, then restarts"),
    ):
        for every, policy in ((100, "every 100"), (None, "by size")):
            with tempfile.TemporaryDirectory() as tmp:
                count, events, snaps = case(Path(tmp) / "s.db", every, large)
            print(
                f"{label:34s} {policy:12s} {count:7,d} {events / count:8.0f} "
                f"{(events + snaps) / count:13,.0f} {(events + snaps) / events:6.2f}x"
            )


if __name__ == "__main__":
    main()
