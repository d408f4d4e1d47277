"""Replay: every answer as of any position equals a fresh fold of the log up to there.

Seeded, realistic event sequences over a few networks are ingested in batches of
random size, with snapshots every few positions. Then, at every position of every
network, the status and directory documents from `state_at` (snapshot plus the
events after it) must equal the documents of `fold` over the log prefix as read
back, which must itself be exactly the accepted inputs, kept aside in order (§8,
I4). The same must hold after the store is closed and reopened.
"""

from __future__ import annotations

import itertools
import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ctilink.adapters.store.selection import open_service
from ctilink.domain import messages as m
from ctilink.domain.application import NetworkService
from ctilink.domain.errors import PositionOutOfRange
from ctilink.domain.state import NetworkState
from ctilink.projections.directory import directory
from ctilink.projections.log import fold
from ctilink.projections.status import status

NETWORKS = ("acme", "globex", "initech")
SYSTEMS = ("sys-1", "sys-2", "sys-3", "sys-4", "sys-5")
USERS = ("ann", "bob", "cy", "dee")
PLATFORMS = ("linux_server_edition", "linux_server_edition", "windows", "ucm")
VERSIONS = (None, None, "9.1", "10.0", "11.1.2", "8.1")
ATS = ("2024-05-01T10:00:00Z", "2024-05-01T13:00:00+02:00", "2024-06-01T08:15:30.5-04:00")

Docs = tuple[dict[str, Any], dict[str, Any]]

# Relative frequency of each event type once a network is installed.
WEIGHTS = {
    "portal_restarted": 4,
    "central_cti_link_set": 3,
    "auto_provisioning_set": 3,
    "converted_to_central": 2,
    "provider_configured": 4,
    "provider_removed": 2,
    "system_added": 6,
    "system_removed": 2,
    "resilience_set": 3,
    "failover": 3,
    "failback": 3,
    "link_changed": 10,
    "voicemail_discovered": 2,
    "user_homed": 4,
    "user_removed": 1,
    "directory_changed": 4,
    "personal_directory_changed": 4,
    "portal_installed": 1,  # rejected: already installed
}


@dataclass
class Sketch:
    """What the generator believes about a network, so most events make sense."""

    installed: bool = False
    systems: list[str] = field(default_factory=list)
    users: dict[str, str] = field(default_factory=dict)


def realistic_events(seed: int, count: int, prefix: str = "") -> list[dict[str, Any]]:
    """`count` inbound events over NETWORKS: mostly valid, some rejected, a few resent."""
    rng = random.Random(seed)
    sketches = {name: Sketch() for name in NETWORKS}
    kinds = list(WEIGHTS)
    weights = list(WEIGHTS.values())
    serial = itertools.count(1)
    events: list[dict[str, Any]] = []
    while len(events) < count:
        network = rng.choice(NETWORKS)
        sketch = sketches[network]
        if events and rng.random() < 0.04:
            events.append(dict(rng.choice(events)))  # resent as is: a duplicate (I3)
            continue

        def system(sketch: Sketch = sketch) -> str:
            known = sketch.systems
            return rng.choice(known) if known and rng.random() < 0.9 else rng.choice(SYSTEMS)

        kind = "portal_installed" if not sketch.installed else rng.choices(kinds, weights)[0]
        event: dict[str, Any] = {"type": kind, "id": f"{prefix}e{next(serial)}", "network": network}
        if kind == "portal_installed":
            sketch.installed = True
            event["platform"] = rng.choice(PLATFORMS)
            version = rng.choice(VERSIONS)
            if version is not None:
                event["upgraded_from"] = version
                event["auto_provisioning"] = rng.random() < 0.7
        elif kind in ("central_cti_link_set", "auto_provisioning_set", "resilience_set"):
            event["enabled"] = rng.random() < 0.6
        elif kind in ("provider_configured", "provider_removed"):
            event.update(kind=rng.choice(("csta", "dsml")), system=system())
        elif kind == "system_added":
            name = rng.choice(SYSTEMS)
            role = rng.choice(("primary", "secondary", "expansion", "expansion"))
            platform = rng.choice(("linux", "ip500v2"))
            event.update(
                system=name, role=role, platform=platform, address=f"10.2.0.{rng.randrange(1, 250)}"
            )
            if name not in sketch.systems:
                sketch.systems.append(name)
        elif kind == "system_removed":
            event["system"] = system()
            if event["system"] in sketch.systems and rng.random() < 0.8:
                sketch.systems.remove(event["system"])
        elif kind in ("failover", "failback"):
            event["system"] = system()
        elif kind == "link_changed":
            event.update(
                system=system(), component=rng.choice(("csta", "dsml")), up=rng.random() < 0.7
            )
        elif kind == "voicemail_discovered":
            event.update(address=rng.choice(("10.0.0.9", "10.0.0.19")), system=system())
        elif kind == "user_homed":
            user = rng.choice(USERS)
            event.update(user=user, system=system())
            sketch.users[user] = event["system"]
        elif kind == "user_removed":
            event["user"] = rng.choice(USERS)
            sketch.users.pop(event["user"], None)
        elif kind == "directory_changed":
            entries = [
                {"name": rng.choice(("Ann", "Bob", "Cy")), "number": str(rng.randrange(200, 210))}
                for _ in range(rng.randrange(0, 4))
            ]
            for entry in entries:
                if rng.random() < 0.2:
                    entry["ex_directory"] = rng.random() < 0.5
            event.update(system=system(), entries=entries)
        elif kind == "personal_directory_changed":
            user = rng.choice(USERS)
            host = sketch.users.get(user)
            entries = [
                {"name": rng.choice(("Mum", "Dad", "Vet")), "number": str(rng.randrange(100, 999))}
                for _ in range(rng.randrange(0, 4))
            ]
            from_host = host if host is not None and rng.random() < 0.85 else system()
            event.update(system=from_host, user=user, entries=entries)
        if rng.random() < 0.15:
            event["at"] = rng.choice(ATS)
        if rng.random() < 0.1:
            event["actor"] = "admin"
        events.append(event)
    return events


def decode(event: dict[str, Any]) -> m.Message:
    """Decode as a JSON line would be."""
    return m.decode(json.dumps(event).encode())


def documents(state: NetworkState, position: int) -> Docs:
    """The status and directory documents of §8 as plain JSON data."""
    return (
        msgspec.to_builtins(status(state, position)),
        msgspec.to_builtins(directory(state, position)),
    )


def answers(service: NetworkService, network: str, position: int | None = None) -> Docs:
    state, at = service.state_at(network, position)
    if position is not None:
        assert at == position
    return documents(state, at)


@dataclass
class Scenario:
    """A store after ingest, and what was kept aside while ingesting."""

    service: NetworkService
    kept: dict[str, list[m.Message]]  # accepted inputs per network, in order
    live: dict[tuple[str, int], Docs]  # the answer at the head, right after each batch


def ingest_events(
    scenario: Scenario, events: list[dict[str, Any]], seed: int, batch_max: int
) -> None:
    """Ingest in batches of random size, keeping accepted inputs and the live answers."""
    rng = random.Random(seed)
    service = scenario.service
    start = 0
    while start < len(events):
        batch = [decode(e) for e in events[start : start + rng.randint(1, batch_max)]]
        start += len(batch)
        outcomes = service.ingest(batch)
        for message, outcome in zip(batch, outcomes, strict=True):
            if outcome.outcome == "accepted":
                scenario.kept[message.network].append(message)
                # I4: each accepted event gets the next position.
                assert outcome.position == len(scenario.kept[message.network]), outcome
        for network in {message.network for message in batch}:
            if scenario.kept[network]:
                state, head = service.state_at(network)
                scenario.live[(network, head)] = documents(state, head)


def build(path: Path | str, seed: int, count: int, interval: int, batch_max: int) -> Scenario:
    service = open_service(str(path))
    service.writes.snapshot_interval = interval
    scenario = Scenario(service, defaultdict(list), {})
    ingest_events(scenario, realistic_events(seed, count), seed, batch_max)
    return scenario


def check_every_position(scenario: Scenario) -> dict[tuple[str, int], Docs]:
    """§8 at every position: as-of answer == fold of the log prefix == live answer."""
    service = scenario.service
    seen = {}
    for network, kept in scenario.kept.items():
        head = service.head(network)
        assert head == len(kept), network
        log = list(service.log(network))
        assert [event.originator_version for event in log] == list(range(1, head + 1))
        assert [event.message for event in log] == kept, network  # the log is the inputs
        for position in range(1, head + 1):
            got = answers(service, network, position)
            prefix = [event.message for event in service.log(network, position)]
            assert prefix == kept[:position], (network, position)
            folded = fold(prefix)
            assert got == documents(folded, position), (network, position)
            if (network, position) in scenario.live:
                assert got == scenario.live[(network, position)], (network, position)
            seen[(network, position)] = got
        for outside in (0, head + 1):
            with pytest.raises(PositionOutOfRange):
                service.state_at(network, outside)
    return seen


def snapshot_versions(service: NetworkService, network: str) -> list[int]:
    assert service.snapshots is not None
    return [snapshot.originator_version for snapshot in service.snapshots.get(network)]


@pytest.mark.parametrize(
    ("seed", "interval", "batch_max"),
    [(1, 5, 8), (2, 13, 30), (3, 50, 12)],
    ids=["every-5", "every-13", "every-50"],
)
def test_status_and_directory_at_every_position_equal_fold_of_log_prefix_s8(
    new_store,  # type: ignore[no-untyped-def]
    seed: int,
    interval: int,
    batch_max: int,
) -> None:
    scenario = build(new_store(), seed, 660, interval, batch_max)
    try:
        heads = {network: len(kept) for network, kept in scenario.kept.items()}
        # The generated logs cross several snapshot boundaries in every network.
        assert min(heads.values()) >= 2 * interval + 10, heads
        for network in heads:
            versions = snapshot_versions(scenario.service, network)
            assert len(versions) >= 2, (network, versions)
            assert max(versions) <= heads[network]
        check_every_position(scenario)
    finally:
        scenario.service.close()


def test_as_of_answer_is_the_answer_right_after_that_position_was_applied_s8(
    new_store,  # type: ignore[no-untyped-def]
) -> None:
    # One event per batch, so the live answer was taken right after every position.
    scenario = build(new_store(), seed=4, count=240, interval=7, batch_max=1)
    try:
        positions = {(n, p) for n, kept in scenario.kept.items() for p in range(1, len(kept) + 1)}
        assert set(scenario.live) == positions
        check_every_position(scenario)
    finally:
        scenario.service.close()


def test_reopened_store_gives_the_same_answers_and_carries_on_from_its_snapshots_s8_i3(
    new_store,  # type: ignore[no-untyped-def]
) -> None:
    path = new_store()
    scenario = build(path, seed=5, count=500, interval=6, batch_max=10)
    before = check_every_position(scenario)
    scenario.service.close()

    # A fresh process: reads come from the stored snapshots and events only.
    scenario.service = open_service(str(path))
    try:
        assert check_every_position(scenario) == before
        # Every accepted event resent is a duplicate at its original position (I3).
        for network, kept in scenario.kept.items():
            outcomes = scenario.service.ingest(kept)
            assert [(o.outcome, o.position) for o in outcomes] == [
                ("duplicate", p) for p in range(1, len(kept) + 1)
            ], network
        # The writer carries on from the latest snapshot: later positions still
        # equal a fold of the whole log, and earlier answers do not change.
        scenario.service.writes.snapshot_interval = 6
        more = realistic_events(seed=6, count=300, prefix="more-")
        ingest_events(scenario, more, seed=6, batch_max=10)
        after = check_every_position(scenario)
        assert {key: after[key] for key in before} == before
        assert len(after) > len(before)
    finally:
        scenario.service.close()
