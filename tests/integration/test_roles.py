"""Roles (publisher, sweeper, a file's ingest) held by one process at a time, on either store."""

from __future__ import annotations

import subprocess
import sys
import uuid

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, Tracking

from ctilink.adapters.nats.publisher import TRACKING_NAME
from ctilink.adapters.store.coordination.roles import PUBLISHER, SWEEPER, open_roles
from tests.stores import SERVER


def test_a_role_is_held_by_one_instance_at_a_time_and_passes_on_release(store_path):
    first, second = open_roles(store_path), open_roles(store_path)
    try:
        assert first.take(PUBLISHER)
        assert not second.take(PUBLISHER)
        assert first.holds(PUBLISHER) and not second.holds(PUBLISHER)
        # Other roles are independent of the one held.
        assert second.take(SWEEPER)
        assert not first.take(SWEEPER)

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
            "from ctilink.adapters.store.coordination.roles import PUBLISHER, open_roles\n"
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


def test_stores_in_two_databases_with_one_schema_name_each_have_their_own_roles(
    store_path, store_kind, new_store, tmp_path
):
    if store_kind == "postgresql":
        # The same schema name in a second database of the same server.
        other_db = f"ctilink_roles_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{other_db}"')
        schema = store_path.rsplit("schema=", 1)[1]
        other = f"{SERVER}/{other_db}?schema={schema}"
    else:
        other = str(tmp_path / "other.db")
    here, there = open_roles(store_path), open_roles(other)
    try:
        assert here.take(PUBLISHER) and there.take(PUBLISHER)
        assert here.holds(PUBLISHER) and there.holds(PUBLISHER)
    finally:
        here.close()
        there.close()
        if store_kind == "postgresql":
            with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
                admin.execute(f'DROP DATABASE "{other_db}" WITH (FORCE)')


def test_a_stale_publisher_cannot_record_a_position_behind_the_recorded_one(service):
    # A holder that lost the role meanwhile fails to record; it republishes nothing
    # new, and what both holders sent JetStream deduplicates by Nats-Msg-Id.
    tracking = service.factory.tracking_recorder()
    tracking.insert_tracking(Tracking(TRACKING_NAME, 10))
    with pytest.raises(IntegrityError):
        tracking.insert_tracking(Tracking(TRACKING_NAME, 5))
    assert tracking.max_tracking_id(TRACKING_NAME) == 10
