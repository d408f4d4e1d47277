"""Event traffic for the fault tests, and the checks that nothing was lost or doubled."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from ctilink.adapters.nats.publisher import REJECTIONS_TRACKING_NAME, TRACKING_NAME
from ctilink.adapters.store.maintenance.verification import head
from ctilink.adapters.store.queries.log import heads
from ctilink.adapters.store.queries.rejections import rejections
from ctilink.adapters.store.selection import open_service
from ctilink.projections.status import status
from tests.e2e.conftest import ROOT, network_of, stream_messages, wait_for


async def publish_all(nc, lines: list[bytes]) -> None:
    """Publish each line to ctilink.in.<network> and wait for JetStream's ack."""
    js = nc.jetstream()
    for line in lines:
        await js.publish(f"ctilink.in.{network_of(line)}", line)


async def event_ids(nc) -> Counter:
    """How many times each Nats-Msg-Id stands in CTILINK_OUT's event subjects."""
    return Counter(
        m.headers["Nats-Msg-Id"]
        for m in await stream_messages(nc, "CTILINK_OUT", "ctilink.events.>")
    )


def publisher_caught_up(store: Path | str) -> bool:
    """Whether the publisher has recorded the log's last position (0 while the store is away)."""
    try:
        service = open_service(str(store))
    except Exception:  # a store restarting in a fault test
        return False
    try:
        tracking = service.factory.tracking_recorder()
        last = service.recorder.max_notification_id() or 0
        done = tracking.max_tracking_id(TRACKING_NAME) or 0
        rejections_done = tracking.max_tracking_id(REJECTIONS_TRACKING_NAME) or 0
        unsent = rejections(service.recorder, after=rejections_done, limit=1)
        return last > 0 and done >= last and not unsent
    except Exception:
        return False
    finally:
        service.close()


async def settled_event_ids(nc, store: Path | str, events: int, timeout: float = 60) -> Counter:
    """CTILINK_OUT's event ids once `events` are out and the publisher has nothing left.

    A position is recorded only after JetStream acknowledged all its messages, so
    once the last one is recorded, whatever was sent twice is in the count already.
    """

    async def settled() -> bool:
        if sum((await event_ids(nc)).values()) < events:
            return False
        return await asyncio.to_thread(publisher_caught_up, store)

    await wait_for(settled, timeout=timeout, every=0.3)
    return await event_ids(nc)


def many_events(count: int, networks: int, seed: int) -> list[bytes]:
    """Valid events over several networks: installs, then link changes and restarts."""
    rng = random.Random(seed)
    lines = []
    for n in range(networks):
        net = f"net-{n}"
        lines.append(
            json.dumps(
                {
                    "type": "portal_installed",
                    "id": f"{net}-0",
                    "network": net,
                    "platform": "linux_server_edition",
                }
            ).encode()
        )
        lines.append(
            json.dumps(
                {
                    "type": "system_added",
                    "id": f"{net}-1",
                    "network": net,
                    "system": "pri",
                    "role": "primary",
                    "platform": "linux",
                    "address": "10.0.0.1",
                }
            ).encode()
        )
    for i in range(count - len(lines)):
        net = f"net-{rng.randrange(networks)}"
        if rng.random() < 0.9:
            event = {
                "type": "link_changed",
                "id": f"{net}-e{i}",
                "network": net,
                "system": "pri",
                "component": rng.choice(["csta", "dsml"]),
                "up": rng.random() < 0.5,
            }
        else:
            event = {"type": "portal_restarted", "id": f"{net}-e{i}", "network": net}
        lines.append(json.dumps(event).encode())
    return lines


def check_exactly_once(store: Path, lines: list[bytes], ids: Counter) -> None:
    """Every event in the log once, positions contiguous, each position in CTILINK_OUT once."""
    wanted: dict[str, list[str]] = {}
    for line in lines:
        event = json.loads(line)
        wanted.setdefault(event["network"], []).append(event["id"])
    service = open_service(str(store))
    try:
        expected_ids = set()
        for network, event_ids_sent in wanted.items():
            log = list(service.log(network))
            assert [e.originator_version for e in log] == list(range(1, len(log) + 1))
            assert [e.message.id for e in log] == event_ids_sent  # once each, in order (I4)
            expected_ids |= {f"{network}:{p}" for p in range(1, len(log) + 1)}
            state, position = service.state_at(network)
            assert status(state, position).position == len(event_ids_sent)
    finally:
        service.close()
    assert set(ids) == expected_ids
    assert set(ids.values()) == {1}, [k for k, v in ids.items() if v > 1][:5]


def logs_and_heads(store: Path | str) -> dict[str, tuple[list[str], str]]:
    """Every network's logged ids, and the hash at its head."""
    service = open_service(str(store))
    try:
        recorder: Any = service.recorder
        return {
            name: ([e.message.id for e in service.log(name)], head(service, name).hash)
            for name, _ in heads(recorder)
        }
    finally:
        service.close()


def uninterrupted(lines: list[bytes], folder: Path) -> tuple[list[dict[str, Any]], dict]:
    """What one `ctilink ingest` of the lines, in order, reports and logs."""
    events_file = folder / "events.jsonl"
    events_file.write_bytes(b"\n".join(lines) + b"\n")
    store = folder / "reference.db"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ctilink.adapters.cli",
            "ingest",
            str(events_file),
            "--json",
            "--store",
            str(store),
        ],
        capture_output=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()], logs_and_heads(store)


def right_after_a_commit(store: Path | str, timeout: float = 3.0) -> None:
    """Return as soon as a service commits a batch (the moment before it acks it), or in time."""
    service = open_service(str(store))
    recorder: Any = service.recorder
    sql = f"SELECT SUM(position) FROM {recorder.table('ctilink_inbound')}"

    def positions() -> int:
        try:
            return int(recorder.query(sql, ())[0][0] or 0)
        except Exception:  # busy, or not created yet
            return -1

    try:
        start, deadline = positions(), time.monotonic() + timeout
        while positions() in (start, -1) and time.monotonic() < deadline:
            time.sleep(0.0005)
    finally:
        service.close()
