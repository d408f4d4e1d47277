"""The latest state that queries read is held and caught up, never stale (SPEC §8)."""

from __future__ import annotations

from ctilink.adapters.store.selection import open_service
from tests.support import Harness, ev, installed, system


def test_the_latest_status_follows_events_another_writer_commits(store_path, service):
    reader = Harness(service)
    Harness(service).given(installed(), system("se-primary", role="primary"))
    assert reader.status()["position"] == 2  # now held by the reader's service

    other = open_service(store_path)  # a second instance on the same store
    try:
        Harness(other).given(ev("link_changed", system="se-primary", component="csta", up=True))
    finally:
        other.close()

    latest = reader.status()
    assert latest["position"] == 3
    assert latest == reader.status(at=3)  # the same as read from the log afresh


def test_a_state_read_earlier_keeps_its_position_when_more_events_arrive(net):
    net.given(installed(), system("se-primary", role="primary"))
    earlier, position = net.service.state_at("acme")
    systems_then = len(earlier.systems)

    net.given(system("exp-1"))
    later, later_position = net.service.state_at("acme")

    assert (position, later_position) == (2, 3)
    assert len(earlier.systems) == systems_then  # caught up on a copy
    assert len(later.systems) == systems_then + 1


def test_only_the_most_recently_asked_networks_are_held(net, monkeypatch):
    monkeypatch.setattr(net.service, "max_held_for_reads", 2)
    for name in ("a", "b", "c"):
        net.given(installed(network=name))
        net.status(name)
    net.status("a")  # not held any more: read afresh, and held again

    assert list(net.service._latest_held) == ["c", "a"]
    assert net.status("b")["position"] == 1


def test_reading_every_network_once_keeps_the_held_ones(net, monkeypatch):
    monkeypatch.setattr(net.service, "max_held_for_reads", 2)
    for name in ("a", "b", "c", "d"):
        net.given(installed(network=name))
    net.status("a")

    for name in ("b", "c", "d"):  # as ctilink.api.networks sweeps them
        net.service.state_at(name, hold=False)

    assert list(net.service._latest_held) == ["a"]
