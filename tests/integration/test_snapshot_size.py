"""Storage in proportion to what happened: snapshots are taken by size, not every N events.

After a large state (thousands of directory entries), a long run of small events
costs at most about twice their own stored size; a small network still gets
snapshots, so loading it reads a bounded amount.
"""

from __future__ import annotations

from contextlib import closing
from typing import Any

from ctilink.adapters.store.selection import open_service
from tests.support import Harness, decode, ev, installed, system


def stored_bytes(service: Any, table: str) -> int:
    """The bytes of the rows' stored state in the events or the snapshots table."""
    recorder = service.recorder
    snapshots = "stored_snapshots" if recorder.mark == "?" else recorder.table("ctilink_snapshots")
    name = {"events": recorder.events_sql, "snapshots": snapshots}[table]
    return int(recorder.query(f"SELECT COALESCE(SUM(LENGTH(state)), 0) FROM {name}", ())[0][0])


def test_small_events_after_a_large_state_cost_at_most_twice_their_size(store_path):
    entries = [{"name": f"User {n:05d}", "number": f"{n:05d}"} for n in range(10_000)]
    with closing(open_service(store_path)) as service:
        net = Harness(service)
        net.given(installed(), system("p1", role="primary"))
        for n in range(8):  # 80,000 entries: a state of several MB
            net.given(system(f"x{n}"), ev("directory_changed", system=f"x{n}", entries=entries))
        events_before = stored_bytes(service, "events")
        snapshots_before = stored_bytes(service, "snapshots")
        for _ in range(10):
            service.ingest([decode(ev("portal_restarted")) for _n in range(100)])
        events = stored_bytes(service, "events") - events_before
        snapshots = stored_bytes(service, "snapshots") - snapshots_before

    assert snapshots_before > 1_000_000  # the large state was snapshotted once at least
    assert events + snapshots <= 2 * events, (events, snapshots)


def test_a_small_network_is_snapshotted_as_its_events_outweigh_its_state(store_path):
    with closing(open_service(store_path)) as service:
        net = Harness(service)
        net.given(installed(), system("p1", role="primary"))
        for _ in range(6):
            service.ingest(
                [
                    decode(ev("link_changed", system="p1", component="csta", up=i % 2 == 0))
                    for i in range(500)
                ]
            )
        snapshots = list(service.snapshots.recorder.select_events("acme"))  # type: ignore[union-attr]
        events = stored_bytes(service, "events")
        taken = stored_bytes(service, "snapshots")

    assert len(snapshots) >= 5  # loading it never reads the whole log
    assert taken <= events
