"""The timeline (projections/timeline.py) against the log folded position by position.

Over generated histories of settings, restarts, failovers and link reports: the
runs cover the window's positions in order, each holding the value the state
has at every one of its positions; a mark stands exactly where the configured
mode (a setting, the conversion: M4, M5), the effective mode (a restart, M5),
the systems failed over (C2, C4) or a reported link (C3) changed; and a window
folded from the state before it says what the whole log says of its positions.
"""

from __future__ import annotations

import copy
from contextlib import closing
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctilink.adapters.store.selection import open_service
from ctilink.domain.messages import type_of
from ctilink.domain.state import NetworkState, step
from ctilink.projections.log import entry
from ctilink.projections.timeline import Run, timeline
from tests.support import decode

SYSTEMS = ("pri", "sec", "exp")
EVENTS = st.one_of(
    st.sampled_from(
        [
            {"type": "converted_to_central"},
            {"type": "portal_restarted"},
            {"type": "resilience_set", "enabled": True},
            {"type": "central_cti_link_set", "enabled": False},
            {"type": "central_cti_link_set", "enabled": True},
            {"type": "auto_provisioning_set", "enabled": False},
            {"type": "auto_provisioning_set", "enabled": True},
            {"type": "system_removed", "system": "exp"},
        ]
    ),
    st.builds(lambda s: {"type": "failover", "system": s}, st.sampled_from(SYSTEMS)),
    st.builds(lambda s: {"type": "failback", "system": s}, st.sampled_from(SYSTEMS)),
    st.builds(
        lambda s, c, up: {"type": "link_changed", "system": s, "component": c, "up": up},
        st.sampled_from(SYSTEMS),
        st.sampled_from(["csta", "dsml"]),
        st.booleans(),
    ),
)


def watched(state: NetworkState) -> dict[str, str]:
    """What the timeline's runs say of one state."""
    down = sum(1 for links in state.links.values() for up in links.values() if not up)
    return {
        "configured": state.configured.value,
        "effective": state.effective.value,
        "failed": ", ".join(sorted(state.failed)),
        "down": str(down),
    }


def per_position(runs: list[Run]) -> dict[int, str]:
    """Each position's value, from runs that must follow one another without a gap."""
    values: dict[int, str] = {}
    for before, run in zip([None, *runs], runs, strict=False):
        assert run.first <= run.last
        if before is not None:
            assert run.first == before.last + 1 and run.value != before.value
        values.update(dict.fromkeys(range(run.first, run.last + 1), run.value))
    return values


def logged(history: list[dict[str, Any]], upgraded: bool) -> list[Any]:
    """The accepted log of a network given `history` (the rules drop what they reject)."""
    install = {"type": "portal_installed", "platform": "linux_server_edition"}
    if upgraded:
        install["upgraded_from"] = "9.1"
    systems = [
        {"type": "system_added", "system": name, "role": role, "platform": "linux"}
        | {"address": "10.0.0.1"}
        for name, role in zip(SYSTEMS, ("primary", "secondary", "expansion"), strict=True)
    ]
    with closing(open_service("memory://")) as service:
        events = [install, *systems, *history]
        service.ingest([decode({**e, "network": "n", "id": f"e{i}"}) for i, e in enumerate(events)])
        return [entry(e) for e in service.log("n")]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=st.lists(EVENTS, max_size=40), upgraded=st.booleans(), cut=st.integers(1, 45))
def test_the_timeline_says_what_the_folded_log_says_at_every_position(history, upgraded, cut):
    entries = logged(history, upgraded)
    states: list[NetworkState] = []
    state = None
    for item in entries:
        state = step(state, item.event)
        states.append(copy.deepcopy(state))

    found = timeline(None, entries)

    assert [t.position for t in found.ticks] == list(range(1, len(entries) + 1))
    assert (found.first, found.last) == (1, len(entries))
    for key in ("configured", "effective", "failed", "down"):
        values = per_position(getattr(found, key))
        assert values == {p: watched(states[p - 1])[key] for p in range(1, len(entries) + 1)}
    kinds = {(mark.position, mark.kind) for mark in found.marks}
    for position in range(2, len(entries) + 1):
        old, new = states[position - 2], states[position - 1]
        event = entries[position - 1].event
        configured = old.configured != new.configured
        assert configured == any(k in ("setting", "conversion") for p, k in kinds if p == position)
        assert (old.effective != new.effective) == ((position, "restart") in kinds)
        assert bool(new.failed - old.failed) == ((position, "failover") in kinds)
        was_down = not old.links.get(getattr(event, "system", ""), {}).get(
            getattr(event, "component", ""), True
        )
        went_down = type_of(event) == "link_changed" and not event.up and not was_down
        assert went_down == ((position, "link_down") in kinds)

    start = min(cut, len(entries))  # a window from `start` on, folded from the state before it
    before = states[start - 2] if start > 1 else None
    kept = copy.deepcopy(before)
    window = timeline(before, entries[start - 1 :])
    assert before == kept  # the caller's state is left as it was
    assert window.ticks == found.ticks[start - 1 :]
    assert [m for m in window.marks if m.position > start] == [
        m for m in found.marks if m.position > start
    ]
    for key in ("configured", "effective", "failed", "down"):
        whole = per_position(getattr(found, key))
        assert per_position(getattr(window, key)) == {p: v for p, v in whole.items() if p >= start}
