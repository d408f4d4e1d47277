"""A follower of the log under concurrent writers: nothing skipped, nothing repeated.

PostgreSQL hands out notification ids from a sequence: a failed insert burns ids
(gaps), and without the table lock eventsourcing takes, transactions could commit
out of id order. The publisher pages the log the way `follow` does here.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from eventsourcing.persistence import IntegrityError

from ctilink.adapters.store.queries.log import network_heads
from ctilink.adapters.store.selection import open_service
from ctilink.domain.application import NetworkService
from tests.support import decode, ev, installed, system

NETWORKS = ["n0", "n1", "n2"]
WRITERS = 4
BATCHES = 40


def follow(
    service: NetworkService, done: threading.Event, seen: list[tuple[int, str, int]]
) -> None:
    """Page the log after the last id seen, as the publisher does, until writers are done."""
    last = 0
    while True:
        finished = done.is_set()  # read before the page: a last page after the end
        page = service.recorder.select_notifications(start=last, limit=7, inclusive_of_start=False)
        for notification in page:
            seen.append(
                (notification.id, notification.originator_id, notification.originator_version)
            )
        if page:
            last = page[-1].id
        elif finished:
            return


def write(store: str, writer: int, failures: list[BaseException]) -> None:
    """One writer: small batches to every network, racing the other writers."""
    service = open_service(store)
    try:
        for batch in range(BATCHES):
            network = NETWORKS[(writer + batch) % len(NETWORKS)]
            events = [
                ev("link_changed", network, system="se", component="csta", up=(batch + k) % 2 == 0)
                for k in range(3)
            ]
            outcomes = service.ingest([decode(e) for e in events])
            assert {o.outcome for o in outcomes} == {"accepted"}, outcomes
    except BaseException as error:  # reported by the test, not lost in a thread
        failures.append(error)
    finally:
        service.close()


def burn_an_id(store: str) -> None:
    """Make one insert fail, as a lost race between two instances does."""
    first, second = open_service(store), open_service(store)
    event = decode(ev("portal_restarted", "n0"))
    try:
        batch = first.writes.load([event])  # first reads n0 at its current version
        assert batch.decide(event).outcome == "accepted"
        second.ingest([decode(ev("portal_restarted", "n0"))])  # and second moves it on
        with pytest.raises(IntegrityError):  # first's insert fails (burning ids on PostgreSQL)
            first.save(*batch.changed.values(), **first.writes.records(batch))
        first.writes.forget(batch)
        assert first.ingest([event])[0].outcome == "accepted"  # decided again, from the store
    finally:
        first.close()
        second.close()


def test_a_follower_sees_every_event_once_in_order_under_concurrent_writers_i4(
    store_path, store_kind
):
    setup = open_service(store_path)
    for network in NETWORKS:
        setup.ingest(
            [decode(installed(network=network)), decode(system("se", "primary", network=network))]
        )
    burn_an_id(store_path)

    done, seen, failures = threading.Event(), [], []
    follower = threading.Thread(target=follow, args=(setup, done, seen))
    writers = [
        threading.Thread(target=write, args=(store_path, n, failures)) for n in range(WRITERS)
    ]
    follower.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(120)
    done.set()
    follower.join(120)
    assert not failures, failures

    heads = dict(network_heads(setup))
    setup.close()
    logged = {(n, p) for n, head in heads.items() for p in range(1, head + 1)}
    assert sum(heads.values()) == len(NETWORKS) * 2 + 2 + WRITERS * BATCHES * 3
    positions = [(network, position) for _, network, position in seen]
    repeated = [key for key, count in Counter(positions).items() if count > 1]
    assert not repeated, repeated
    assert set(positions) == logged  # nothing skipped
    ids = [notification_id for notification_id, _, _ in seen]
    assert ids == sorted(ids)
    for network in NETWORKS:
        assert [p for n, p in positions if n == network] == list(range(1, heads[network] + 1))
    if store_kind == "postgresql":
        assert max(ids) > len(ids), "the run should have left gaps in the ids"
