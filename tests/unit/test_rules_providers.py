"""SPEC §5 provider rules P1–P6, written given-when-then over a real store."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import configure, ev, installed, remove, same_but_position, system

SE = "linux_server_edition"


def provider_list(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The providers of a status document as (kind, target, origin)."""
    return [(p["kind"], p["target"], p["origin"]) for p in doc["providers"]]


# One installation per effective mode.
MODES = {
    "central": [installed(SE)],
    "manual": [installed(SE, upgraded_from="10.0")],
    "legacy_auto": [installed(SE, upgraded_from="9.1")],
    "legacy_manual": [installed(SE, upgraded_from="9.1", auto_provisioning=False)],
}


# --- P1: central ---------------------------------------------------------------


def test_central_holds_csta_and_dsml_for_the_primary_only_p1(net):
    net.given(installed(SE), system("p1", role="primary"), system("x1"), system("x2"))

    doc = net.status()

    assert doc["providers"] == [
        {"kind": "csta", "target": "p1", "origin": "central"},
        {"kind": "dsml", "target": "p1", "origin": "central"},
    ]


def test_central_adds_the_secondary_pair_while_resilience_is_enabled_p1(net):
    net.given(
        installed(SE), system("p1", role="primary"), system("b1", role="secondary"), system("x1")
    )

    net.when(ev("resilience_set", enabled=True))

    assert provider_list(net.status()) == [
        ("csta", "b1", "central"),
        ("csta", "p1", "central"),
        ("dsml", "b1", "central"),
        ("dsml", "p1", "central"),
    ]


def test_central_without_resilience_ignores_the_secondary_p1(net):
    net.given(installed(SE), system("p1", role="primary"), system("b1", role="secondary"))

    doc = net.status()

    assert provider_list(doc) == [("csta", "p1", "central"), ("dsml", "p1", "central")]


def test_central_drops_the_secondary_pair_when_resilience_is_disabled_p1(net):
    net.given(
        installed(SE),
        system("p1", role="primary"),
        system("b1", role="secondary"),
        ev("resilience_set", enabled=True),
    )

    net.when(ev("resilience_set", enabled=False))

    assert provider_list(net.status()) == [("csta", "p1", "central"), ("dsml", "p1", "central")]


def test_central_with_resilience_but_no_secondary_holds_only_the_primary_pair_p1(net):
    net.given(installed(SE), system("p1", role="primary"), ev("resilience_set", enabled=True))

    doc = net.status()

    assert provider_list(doc) == [("csta", "p1", "central"), ("dsml", "p1", "central")]


def test_secondary_added_while_resilience_enabled_gets_its_pair_p1(net):
    net.given(installed(SE), system("p1", role="primary"), ev("resilience_set", enabled=True))

    net.when(system("b1", role="secondary"))

    assert provider_list(net.status()) == [
        ("csta", "b1", "central"),
        ("csta", "p1", "central"),
        ("dsml", "b1", "central"),
        ("dsml", "p1", "central"),
    ]


def test_secondary_removed_loses_its_pair_p1(net):
    net.given(
        installed(SE),
        system("p1", role="primary"),
        system("b1", role="secondary"),
        ev("resilience_set", enabled=True),
    )

    net.when(ev("system_removed", system="b1"))

    assert provider_list(net.status()) == [("csta", "p1", "central"), ("dsml", "p1", "central")]


def test_central_providers_do_not_change_on_failover_p1(net):
    net.given(
        installed(SE),
        system("p1", role="primary"),
        system("b1", role="secondary"),
        ev("resilience_set", enabled=True),
    )
    before = net.status()["providers"]

    net.when(ev("failover", system="p1"))

    assert net.status()["providers"] == before


def test_central_keeps_manual_records_but_not_active_p1(net):
    net.given(installed(SE), system("p1", role="primary"), system("x1"))

    net.when(configure("csta", "x1"))

    assert provider_list(net.status()) == [("csta", "p1", "central"), ("dsml", "p1", "central")]


def test_central_manual_record_for_primary_is_not_a_second_provider_p1(net):
    net.given(installed(SE), system("p1", role="primary"))

    net.when(configure("csta", "p1"))

    assert provider_list(net.status()) == [("csta", "p1", "central"), ("dsml", "p1", "central")]


def test_central_without_primary_holds_no_call_or_directory_provider_p1(net):
    net.given(installed(SE), system("x1"))

    doc = net.status()

    assert doc["providers"] == []


def test_central_without_primary_but_resilient_secondary_holds_the_secondary_pair_p1(net):
    net.given(installed(SE), system("b1", role="secondary"), ev("resilience_set", enabled=True))

    doc = net.status()

    assert provider_list(doc) == [("csta", "b1", "central"), ("dsml", "b1", "central")]


# --- P2: manual and legacy_manual ----------------------------------------------


@pytest.mark.parametrize("mode", ["manual", "legacy_manual"])
def test_manual_modes_hold_exactly_the_manual_records_p2(net, mode):
    net.given(*MODES[mode], system("p1", role="primary"), system("x1"), system("x2"))

    net.given(configure("csta", "x1"), configure("dsml", "p1"))

    assert net.status()["mode"]["effective"] == mode
    assert net.status()["providers"] == [
        {"kind": "csta", "target": "x1", "origin": "manual"},
        {"kind": "dsml", "target": "p1", "origin": "manual"},
    ]


@pytest.mark.parametrize("mode", ["manual", "legacy_manual"])
def test_manual_modes_hold_nothing_without_records_p2(net, mode):
    net.given(*MODES[mode], system("p1", role="primary"), system("x1"))

    doc = net.status()

    assert doc["providers"] == []


@pytest.mark.parametrize("mode", ["manual", "legacy_manual"])
def test_manual_modes_skip_records_whose_system_is_not_in_the_network_p2(net, mode):
    net.given(
        *MODES[mode], system("x1"), system("x2"), configure("csta", "x1"), configure("csta", "x2")
    )

    net.when(ev("system_removed", system="x2"))

    assert provider_list(net.status()) == [("csta", "x1", "manual")]


def test_manual_providers_are_sorted_by_kind_then_target_p2(net):
    net.given(installed("windows"), system("zz"), system("aa"), system("mm"))

    net.given(
        configure("dsml", "mm"),
        configure("csta", "zz"),
        configure("dsml", "aa"),
        configure("csta", "aa"),
    )

    assert provider_list(net.status()) == [
        ("csta", "aa", "manual"),
        ("csta", "zz", "manual"),
        ("dsml", "aa", "manual"),
        ("dsml", "mm", "manual"),
    ]


# --- P3: legacy_auto -----------------------------------------------------------


def test_legacy_auto_fills_every_system_and_kind_with_auto_providers_p3(net):
    net.given(installed(SE, upgraded_from="9.1"), system("p1", role="primary"), system("x1"))

    doc = net.status()

    assert provider_list(doc) == [
        ("csta", "p1", "auto"),
        ("csta", "x1", "auto"),
        ("dsml", "p1", "auto"),
        ("dsml", "x1", "auto"),
    ]


def test_legacy_auto_manual_record_replaces_the_auto_provider_of_that_kind_p3(net):
    net.given(installed(SE, upgraded_from="9.1"), system("p1", role="primary"), system("x1"))

    net.when(configure("csta", "x1"))

    assert provider_list(net.status()) == [
        ("csta", "p1", "auto"),
        ("csta", "x1", "manual"),
        ("dsml", "p1", "auto"),
        ("dsml", "x1", "auto"),
    ]


def test_legacy_auto_removing_manual_record_brings_the_auto_provider_back_p3(net):
    net.given(installed(SE, upgraded_from="9.1"), system("x1"), configure("dsml", "x1"))

    net.when(remove("dsml", "x1"))

    assert provider_list(net.status()) == [("csta", "x1", "auto"), ("dsml", "x1", "auto")]


def test_legacy_auto_added_system_gets_auto_providers_p3(net):
    net.given(installed(SE, upgraded_from="9.1"), system("x1"))

    net.when(system("x2"))

    assert provider_list(net.status()) == [
        ("csta", "x1", "auto"),
        ("csta", "x2", "auto"),
        ("dsml", "x1", "auto"),
        ("dsml", "x2", "auto"),
    ]


def test_legacy_auto_removed_system_loses_its_auto_providers_p3(net):
    net.given(installed(SE, upgraded_from="9.1"), system("x1"), system("x2"))

    net.when(ev("system_removed", system="x1"))

    assert provider_list(net.status()) == [("csta", "x2", "auto"), ("dsml", "x2", "auto")]


def test_legacy_auto_manual_record_of_removed_system_is_not_held_p3(net):
    net.given(
        installed(SE, upgraded_from="9.1"),
        system("x1"),
        system("x2"),
        configure("csta", "x2"),
    )

    net.when(ev("system_removed", system="x2"))

    assert provider_list(net.status()) == [("csta", "x1", "auto"), ("dsml", "x1", "auto")]


def test_legacy_auto_with_no_systems_holds_nothing_p3(net):
    given = installed(SE, upgraded_from="9.1")

    net.given(given)

    assert net.status()["providers"] == []


# --- P4: voicemail -------------------------------------------------------------


@pytest.mark.parametrize("mode", list(MODES))
def test_no_voicemail_provider_before_discovery_p4(net, mode):
    net.given(*MODES[mode])

    doc = net.status()

    assert doc["providers"] == []


@pytest.mark.parametrize("mode", list(MODES))
def test_voicemail_provider_for_the_discovered_address_in_every_mode_p4(net, mode):
    net.given(*MODES[mode], system("x1"))

    net.when(ev("voicemail_discovered", address="10.0.0.9", system="x1"))

    voicemail = [p for p in net.status()["providers"] if p["kind"] == "voicemail"]
    assert voicemail == [{"kind": "voicemail", "target": "10.0.0.9", "origin": "auto"}]


def test_voicemail_provider_follows_the_last_discovered_address_p4(net):
    net.given(
        installed(SE),
        system("x1"),
        system("x2"),
        ev("voicemail_discovered", address="10.0.0.9", system="x1"),
    )

    net.when(ev("voicemail_discovered", address="10.0.0.7", system="x2"))

    assert net.status()["providers"] == [
        {"kind": "voicemail", "target": "10.0.0.7", "origin": "auto"}
    ]


def test_voicemail_rediscovered_at_same_address_is_one_provider_p4(net):
    net.given(
        installed(SE), system("x1"), ev("voicemail_discovered", address="10.0.0.9", system="x1")
    )

    net.when(ev("voicemail_discovered", address="10.0.0.9", system="x1"))

    assert provider_list(net.status()) == [("voicemail", "10.0.0.9", "auto")]


def test_voicemail_sorts_after_call_and_directory_providers_p4(net):
    net.given(installed(SE), system("p1", role="primary"))

    net.when(ev("voicemail_discovered", address="1.1.1.1", system="p1"))

    assert provider_list(net.status()) == [
        ("csta", "p1", "central"),
        ("dsml", "p1", "central"),
        ("voicemail", "1.1.1.1", "auto"),
    ]


def test_voicemail_provider_survives_mode_change_p4(net):
    net.given(
        installed(SE),
        system("x1"),
        ev("voicemail_discovered", address="10.0.0.9", system="x1"),
        ev("central_cti_link_set", enabled=False),
    )

    net.when(ev("portal_restarted"))

    assert provider_list(net.status()) == [("voicemail", "10.0.0.9", "auto")]


def test_voicemail_provider_stays_when_reporting_system_is_removed_p4(net):
    net.given(
        installed(SE), system("x1"), ev("voicemail_discovered", address="10.0.0.9", system="x1")
    )

    net.when(ev("system_removed", system="x1"))

    assert provider_list(net.status()) == [("voicemail", "10.0.0.9", "auto")]


# --- P5: manual records survive ------------------------------------------------


def test_manual_record_is_inactive_in_central_and_comes_back_in_manual_p5(net):
    net.given(
        installed(SE, upgraded_from="10.0"),
        system("p1", role="primary"),
        system("x1"),
        configure("csta", "x1"),
        ev("central_cti_link_set", enabled=True),
        ev("portal_restarted"),
    )
    in_central = net.status()
    net.given(ev("central_cti_link_set", enabled=False))

    net.when(ev("portal_restarted"))

    assert provider_list(in_central) == [("csta", "p1", "central"), ("dsml", "p1", "central")]
    assert provider_list(net.status()) == [("csta", "x1", "manual")]


def test_manual_record_made_in_central_becomes_active_in_manual_p5(net):
    net.given(
        installed(SE),
        system("x1"),
        configure("dsml", "x1"),
        ev("central_cti_link_set", enabled=False),
    )

    net.when(ev("portal_restarted"))

    assert provider_list(net.status()) == [("dsml", "x1", "manual")]


def test_manual_record_comes_back_when_its_system_is_added_again_p5(net):
    net.given(
        installed("windows"),
        system("x1", address="10.0.0.1"),
        configure("csta", "x1"),
        ev("system_removed", system="x1"),
    )
    while_gone = net.status()

    net.when(system("x1", address="10.0.0.1"))

    assert provider_list(while_gone) == []
    assert provider_list(net.status()) == [("csta", "x1", "manual")]


def test_manual_record_for_removed_system_can_be_removed_for_good_p5_p6(net):
    net.given(
        installed("windows"),
        system("x1", address="10.0.0.1"),
        configure("csta", "x1"),
        ev("system_removed", system="x1"),
        remove("csta", "x1"),
    )

    net.when(system("x1", address="10.0.0.1"))

    assert provider_list(net.status()) == []


def test_manual_record_survives_legacy_to_central_to_manual_p5(net):
    net.given(
        installed(SE, upgraded_from="9.1"),
        system("p1", role="primary"),
        system("x1"),
        configure("csta", "x1"),
        ev("converted_to_central"),
        ev("portal_restarted"),
        ev("central_cti_link_set", enabled=False),
    )

    net.when(ev("portal_restarted"))

    assert provider_list(net.status()) == [("csta", "x1", "manual")]


def test_manual_record_keeps_origin_manual_in_legacy_auto_p5(net):
    net.given(
        installed(SE, upgraded_from="9.1", auto_provisioning=False),
        system("x1"),
        configure("dsml", "x1"),
        ev("auto_provisioning_set", enabled=True),
    )

    net.when(ev("portal_restarted"))

    assert provider_list(net.status()) == [("csta", "x1", "auto"), ("dsml", "x1", "manual")]


# --- P6: configuring twice, removing what is not there -------------------------


def test_configuring_an_already_configured_provider_changes_nothing_p6(net):
    net.given(installed("windows"), system("x1"), configure("csta", "x1"))
    before = net.status()

    outcome = net.when(configure("csta", "x1"))

    assert (outcome.outcome, outcome.position) == ("accepted", 4)
    assert same_but_position(before, net.status())
    assert provider_list(net.status()) == [("csta", "x1", "manual")]


def test_configured_twice_then_removed_once_is_gone_p6(net):
    net.given(installed("windows"), system("x1"), configure("csta", "x1"), configure("csta", "x1"))

    net.when(remove("csta", "x1"))

    assert provider_list(net.status()) == []


def test_removing_a_provider_that_is_not_configured_changes_nothing_p6(net):
    net.given(installed("windows"), system("x1"), configure("csta", "x1"))
    before = net.status()

    outcome = net.when(remove("dsml", "x1"))

    assert (outcome.outcome, outcome.position) == ("accepted", 4)
    assert same_but_position(before, net.status())


def test_removing_an_auto_provider_in_legacy_auto_changes_nothing_p6(net):
    net.given(installed(SE, upgraded_from="9.1"), system("x1"))
    before = net.status()

    outcome = net.when(remove("csta", "x1"))

    assert (outcome.outcome, outcome.position) == ("accepted", 3)
    assert same_but_position(before, net.status())


def test_removing_a_provider_in_central_changes_nothing_p6(net):
    net.given(installed(SE), system("p1", role="primary"))
    before = net.status()

    outcome = net.when(remove("csta", "p1"))

    assert (outcome.outcome, outcome.position) == ("accepted", 3)
    assert same_but_position(before, net.status())
