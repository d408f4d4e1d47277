"""Two instances writing the same networks: each decides on the store's latest state."""

from __future__ import annotations

from ctilink.adapters.store.selection import open_service
from tests.support import Harness, decode, ev, installed, system


def test_an_event_valid_after_another_instances_write_is_accepted_not_rejected_i2(store_path):
    first, second = open_service(store_path), open_service(store_path)
    try:
        Harness(first).given(installed())  # first holds acme at position 1
        Harness(second).given(system("se1", role="primary"))  # second moves it to 2

        # On first's held copy se1 is unknown; the store knows better.
        outcome = Harness(first).when(ev("link_changed", system="se1", component="csta", up=True))

        assert (outcome.outcome, outcome.position) == ("accepted", 3)
    finally:
        first.close()
        second.close()


def test_a_network_another_instance_installed_is_not_rejected_as_not_installed_i2(store_path):
    first, second = open_service(store_path), open_service(store_path)
    try:
        assert Harness(first).when(ev("portal_restarted")).code == "not_installed"
        Harness(second).given(installed())

        outcome = Harness(first).when(ev("portal_restarted"))

        assert (outcome.outcome, outcome.position) == ("accepted", 2)
    finally:
        first.close()
        second.close()


def test_a_rejection_on_an_up_to_date_copy_stands_i2(net):
    net.given(installed())
    outcome = net.when(ev("link_changed", system="nowhere", component="csta", up=True))
    assert (outcome.outcome, outcome.code) == ("rejected", "unknown_system")


def test_a_batch_over_many_networks_moved_on_elsewhere_is_decided_in_one_call_i2(store_path):
    names = [f"n{k}" for k in range(15)]  # more stale networks than max_attempts
    first, second = open_service(store_path), open_service(store_path)
    try:
        Harness(first).given(*(installed(network=n) for n in names))
        Harness(second).given(*(system("se1", role="primary", network=n) for n in names))
        links = [
            ev("link_changed", network=n, system="se1", component="csta", up=True) for n in names
        ]

        outcomes = first.ingest([decode(e) for e in links])

        assert [(o.outcome, o.position) for o in outcomes] == [("accepted", 3)] * len(names)
    finally:
        first.close()
        second.close()
