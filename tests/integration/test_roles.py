"""Roles (publisher, inbound partitions) held by one instance at a time, on either store."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from eventsourcing.persistence import IntegrityError, Tracking

from ctilink.adapters.nats.publisher import TRACKING_NAME
from ctilink.adapters.store.roles import PUBLISHER, open_roles, partition_role


def test_a_role_is_held_by_one_instance_at_a_time_and_passes_on_release(store_path):
    first, second = open_roles(store_path), open_roles(store_path)
    try:
        assert first.take(PUBLISHER)
        assert not second.take(PUBLISHER)
        assert first.holds(PUBLISHER) and not second.holds(PUBLISHER)
        # Other roles are independent of the one held.
        assert second.take(partition_role(3))
        assert not first.take(partition_role(3))

        first.give_up(PUBLISHER)
        assert not first.holds(PUBLISHER)
        assert second.take(PUBLISHER)
    finally:
        first.close()
        second.close()


def test_a_killed_instance_releases_its_roles_at_once(store_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from ctilink.adapters.store.roles import PUBLISHER, open_roles\n"
            f"roles = open_roles({store_path!r})\n"
            "assert roles.take(PUBLISHER)\n"
            "print('held', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    roles = open_roles(store_path)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert not roles.take(PUBLISHER)
        holder.kill()
        holder.wait(10)
        assert roles.take(PUBLISHER)  # no timeout to wait out
    finally:
        holder.kill()
        roles.close()


def test_running_instances_are_counted_on_postgresql_but_not_their_publishers(
    store_path, store_kind
):
    instances = [open_roles(store_path) for _ in range(3)]
    publisher = open_roles(store_path, member=False)
    try:
        expected = 3 if store_kind == "postgresql" else 1  # SQLite: one instance per store
        assert [roles.members() for roles in instances] == [expected] * 3
        instances.pop().close()
        # The server ends a closed session's backend, and its locks, a moment later.
        deadline = time.monotonic() + 10
        while instances[0].members() != expected - (store_kind == "postgresql"):
            assert time.monotonic() < deadline, "a stopped instance is still counted"
            time.sleep(0.05)
    finally:
        for roles in [*instances, publisher]:
            roles.close()


def test_a_stale_publisher_cannot_record_a_position_behind_the_recorded_one(service):
    # A holder that lost the role meanwhile fails to record; it republishes nothing
    # new, and what both holders sent JetStream deduplicates by Nats-Msg-Id.
    tracking = service.factory.tracking_recorder()
    tracking.insert_tracking(Tracking(TRACKING_NAME, 10))
    with pytest.raises(IntegrityError):
        tracking.insert_tracking(Tracking(TRACKING_NAME, 5))
    assert tracking.max_tracking_id(TRACKING_NAME) == 10
