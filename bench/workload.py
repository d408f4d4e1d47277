"""Generated, valid event streams for the benchmarks."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import msgspec

_encode = msgspec.json.Encoder().encode


def network_events(name: str, systems: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    """An endless, valid event stream for one Server Edition network."""
    seq = 0

    def ev(type_: str, **fields: Any) -> dict[str, Any]:
        nonlocal seq
        seq += 1
        return {"type": type_, "id": f"{name}-{seq}", "network": name, **fields}

    yield ev("portal_installed", platform="linux_server_edition", actor="admin")
    names = [f"ipo-{i:02d}" for i in range(systems)]
    roles = ["primary", "secondary"] + ["expansion"] * (systems - 2)
    for system, role in zip(names, roles, strict=True):
        yield ev(
            "system_added",
            system=system,
            role=role,
            platform="linux",
            address=f"10.{len(name) % 250}.0.{names.index(system) + 1}",
        )
    yield ev("resilience_set", enabled=True, actor="admin")
    users = [f"user-{i}" for i in range(systems * 4)]
    for i, user in enumerate(users):
        yield ev("user_homed", user=user, system=names[i % systems])
    while True:
        roll = rng.random()
        system = rng.choice(names)
        if roll < 0.70:
            yield ev(
                "link_changed",
                system=system,
                component=rng.choice(("csta", "dsml")),
                up=rng.random() < 0.8,
            )
        elif roll < 0.80:
            entries = [{"name": f"Ext {system} {n}", "number": str(200 + n)} for n in range(5)]
            yield ev("directory_changed", system=system, entries=entries)
        elif roll < 0.88:
            i = rng.randrange(len(users))
            entries = [{"name": f"Contact {n}", "number": f"0{n:04d}"} for n in range(3)]
            yield ev(
                "personal_directory_changed",
                system=names[i % systems],
                user=users[i],
                entries=entries,
            )
        elif roll < 0.93:
            yield ev(rng.choice(("failover", "failback")), system=names[rng.randrange(2)])
        elif roll < 0.96:
            yield ev(
                "voicemail_discovered", address=f"10.9.9.{rng.randrange(1, 250)}", system=names[0]
            )
        elif roll < 0.98:
            yield ev("central_cti_link_set", enabled=rng.random() < 0.7, actor="admin")
        else:
            yield ev("portal_restarted")


def interleaved_lines(total: int, networks: int, systems: int, seed: int = 7) -> list[bytes]:
    """`total` JSON lines over `networks` networks, interleaved at random."""
    rng = random.Random(seed)
    streams = [network_events(f"net-{n:04d}", systems, rng) for n in range(networks)]
    lines = [_encode(next(s)) for s in streams]  # every network is installed first
    while len(lines) < total:
        lines.append(_encode(next(rng.choice(streams))))
    return lines


def single_network_lines(total: int, systems: int, seed: int = 11) -> list[bytes]:
    """`total` JSON lines of one network."""
    rng = random.Random(seed)
    stream = network_events("big", systems, rng)
    return [_encode(next(stream)) for _ in range(total)]
