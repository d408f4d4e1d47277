"""Event streams for the crash tests: valid events whose verdicts depend on their order."""

from __future__ import annotations

import random
from typing import Any

NETWORKS = 12


def order_dependent_events(seed: int, count: int, networks: int = NETWORKS) -> list[dict[str, Any]]:
    """Events whose verdicts depend on their order: shuffled, with repeats and conflicts."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for n in range(networks):
        net = f"net-{n:02d}"
        legacy = n % 3 == 0
        install = {"type": "portal_installed", "platform": "linux_server_edition"}
        if legacy:
            install["upgraded_from"] = "9.1"
        events.append({**install, "network": net})
        for role, name in (("primary", "pri"), ("secondary", "sec"), ("primary", "pri2")):
            events.append(
                {
                    "type": "system_added",
                    "network": net,
                    "system": name,
                    "role": role,
                    "platform": "linux",
                    "address": "10.0.0.1",
                }
            )
    while len(events) < count:
        net = f"net-{rng.randrange(networks):02d}"
        roll = rng.random()
        if roll < 0.5:
            event = {
                "type": "link_changed",
                "system": rng.choice(("pri", "sec", "pri2", "gone")),
                "component": rng.choice(("csta", "dsml")),
                "up": rng.random() < 0.5,
            }
        elif roll < 0.6:
            event = {"type": rng.choice(("failover", "failback")), "system": "pri"}
        elif roll < 0.7:
            event = {"type": "converted_to_central"}
        elif roll < 0.8:
            event = {
                "type": rng.choice(("central_cti_link_set", "auto_provisioning_set")),
                "enabled": rng.random() < 0.5,
            }
        elif roll < 0.9:
            event = {"type": "system_removed", "system": rng.choice(("pri", "sec", "pri2"))}
        else:
            event = {"type": "portal_restarted"}
        events.append({**event, "network": net})
    rng.shuffle(events)  # installs and systems land anywhere: order decides
    lines = []
    for serial, event in enumerate(events, 1):
        # Every event has its `at`, so that the hash chains of two runs can be equal.
        stamped = {**event, "id": f"e{serial}", "at": f"2024-01-01T00:00:{serial % 60:02d}Z"}
        lines.append(stamped)
        if rng.random() < 0.03:  # the same id again: a duplicate, or with other content
            again = dict(stamped) if rng.random() < 0.5 else {**stamped, "actor": "other"}
            lines.append(again)
    return lines
