"""SPEC §4 mode rules M1–M6, written given-when-then over a real store."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import ev, installed, same_but_position, system

SE = "linux_server_edition"
OTHER_PLATFORMS = ["application_server_ip500v2", "windows", "ucm"]


def mode_block(
    setting: str,
    configured: str,
    effective: str | None = None,
    *,
    converted: bool = False,
    central_available: bool = True,
) -> dict[str, Any]:
    """The status document's `mode` object."""
    effective = effective or configured
    return {
        "setting": setting,
        "configured": configured,
        "effective": effective,
        "restart_pending": configured != effective,
        "converted": converted,
        "central_available": central_available,
    }


def provider_list(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The providers of a status document as (kind, target, origin)."""
    return [(p["kind"], p["target"], p["origin"]) for p in doc["providers"]]


# --- M1: the initial mode ------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "configured", "setting"),
    [
        pytest.param({"platform": SE}, "central", "central_cti_link", id="new-se"),
        pytest.param(
            {"platform": SE, "auto_provisioning": False},
            "central",
            "central_cti_link",
            id="new-se-ap-off-ignored",
        ),
        pytest.param(
            {"platform": "application_server_ip500v2"},
            "manual",
            "central_cti_link",
            id="new-application-server",
        ),
        pytest.param({"platform": "windows"}, "manual", "central_cti_link", id="new-windows"),
        pytest.param({"platform": "ucm"}, "manual", "central_cti_link", id="new-ucm"),
        pytest.param(
            {"platform": SE, "upgraded_from": "10.0"},
            "manual",
            "central_cti_link",
            id="se-upgrade-from-10.0",
        ),
        pytest.param(
            {"platform": SE, "upgraded_from": "11.1.2", "auto_provisioning": False},
            "manual",
            "central_cti_link",
            id="se-upgrade-from-11.1.2-ap-off",
        ),
        pytest.param(
            {"platform": "windows", "upgraded_from": "10.0"},
            "manual",
            "central_cti_link",
            id="windows-upgrade-from-10.0",
        ),
        pytest.param(
            {"platform": SE, "upgraded_from": "9.1"},
            "legacy_auto",
            "auto_provisioning",
            id="se-upgrade-from-9.1-ap-default",
        ),
        pytest.param(
            {"platform": SE, "upgraded_from": "9.1", "auto_provisioning": True},
            "legacy_auto",
            "auto_provisioning",
            id="se-upgrade-from-9.1-ap-on",
        ),
        pytest.param(
            {"platform": SE, "upgraded_from": "9.1", "auto_provisioning": False},
            "legacy_manual",
            "auto_provisioning",
            id="se-upgrade-from-9.1-ap-off",
        ),
        pytest.param(
            {"platform": "windows", "upgraded_from": "9.0", "auto_provisioning": False},
            "legacy_manual",
            "auto_provisioning",
            id="windows-upgrade-from-9.0-ap-off",
        ),
        pytest.param(
            {"platform": "ucm", "upgraded_from": "8.1"},
            "legacy_auto",
            "auto_provisioning",
            id="ucm-upgrade-from-8.1",
        ),
    ],
)
def test_initial_mode_follows_platform_upgrade_and_auto_provisioning_m1(
    net, fields, configured, setting
):
    given = installed(**fields)

    net.given(given)

    assert net.status()["mode"] == mode_block(
        setting, configured, central_available=fields["platform"] == SE
    )


# --- M2: Central CTI Link only on Server Edition -------------------------------


@pytest.mark.parametrize("platform", OTHER_PLATFORMS)
def test_enabling_central_off_server_edition_is_rejected_central_not_available_m2(net, platform):
    net.given(installed(platform))

    outcome = net.when(ev("central_cti_link_set", enabled=True))

    assert (outcome.outcome, outcome.code) == ("rejected", "central_not_available")
    assert net.status()["mode"] == mode_block("central_cti_link", "manual", central_available=False)


@pytest.mark.parametrize("platform", OTHER_PLATFORMS)
def test_converting_off_server_edition_is_rejected_central_not_available_m2(net, platform):
    net.given(installed(platform, upgraded_from="9.1"))

    outcome = net.when(ev("converted_to_central"))

    assert (outcome.outcome, outcome.code) == ("rejected", "central_not_available")
    assert net.status()["mode"] == mode_block(
        "auto_provisioning", "legacy_auto", central_available=False
    )


def test_central_not_available_comes_before_wrong_setting_m2_m3(net):
    net.given(installed("windows", upgraded_from="9.1"))

    outcome = net.when(ev("central_cti_link_set", enabled=True))

    assert (outcome.outcome, outcome.code) == ("rejected", "central_not_available")


def test_converting_while_central_shown_off_server_edition_is_central_not_available_m2_m4(net):
    net.given(installed("windows"))

    outcome = net.when(ev("converted_to_central"))

    assert (outcome.outcome, outcome.code) == ("rejected", "central_not_available")


def test_disabling_central_off_server_edition_is_accepted_and_changes_nothing_m2_m6(net):
    net.given(installed("windows"))
    before = net.status()

    outcome = net.when(ev("central_cti_link_set", enabled=False))

    assert (outcome.outcome, outcome.position) == ("accepted", 2)
    assert same_but_position(before, net.status())


def test_enabling_central_on_server_edition_is_accepted_m2(net):
    net.given(installed(SE, upgraded_from="10.0"))

    outcome = net.when(ev("central_cti_link_set", enabled=True))

    assert (outcome.outcome, outcome.position) == ("accepted", 2)
    assert net.status()["mode"] == mode_block("central_cti_link", "central", "manual")


# --- M3: the setting shown -----------------------------------------------------


@pytest.mark.parametrize("enabled", [True, False])
@pytest.mark.parametrize("ap", [True, False])
def test_central_setting_while_auto_provisioning_shown_is_wrong_setting_m3(net, enabled, ap):
    net.given(installed(SE, upgraded_from="9.1", auto_provisioning=ap))

    outcome = net.when(ev("central_cti_link_set", enabled=enabled))

    assert (outcome.outcome, outcome.code) == ("rejected", "wrong_setting")
    assert net.status()["position"] == 1


@pytest.mark.parametrize("enabled", [True, False])
@pytest.mark.parametrize(
    "install",
    [{"platform": SE}, {"platform": SE, "upgraded_from": "10.0"}, {"platform": "windows"}],
    ids=["central", "manual-se", "manual-windows"],
)
def test_auto_provisioning_setting_while_central_shown_is_wrong_setting_m3(net, install, enabled):
    net.given(installed(**install))

    outcome = net.when(ev("auto_provisioning_set", enabled=enabled))

    assert (outcome.outcome, outcome.code) == ("rejected", "wrong_setting")
    assert net.status()["position"] == 1


def test_disabling_central_while_auto_provisioning_shown_off_se_is_wrong_setting_m3(net):
    net.given(installed("windows", upgraded_from="9.1"))

    outcome = net.when(ev("central_cti_link_set", enabled=False))

    assert (outcome.outcome, outcome.code) == ("rejected", "wrong_setting")


def test_status_mode_block_has_exactly_the_spec_keys_m3(net):
    given = installed(SE)

    net.given(given)

    assert list(net.status()) == ["network", "position", "mode", "providers", "components"]
    assert list(net.status()["mode"]) == [
        "setting",
        "configured",
        "effective",
        "restart_pending",
        "converted",
        "central_available",
    ]


def test_auto_provisioning_off_while_shown_configures_legacy_manual_m3(net):
    net.given(installed(SE, upgraded_from="9.1"))

    outcome = net.when(ev("auto_provisioning_set", enabled=False))

    assert outcome.outcome == "accepted"
    assert net.status()["mode"] == mode_block("auto_provisioning", "legacy_manual", "legacy_auto")


def test_auto_provisioning_on_while_shown_configures_legacy_auto_m3(net):
    net.given(installed("windows", upgraded_from="9.1", auto_provisioning=False))

    outcome = net.when(ev("auto_provisioning_set", enabled=True))

    assert outcome.outcome == "accepted"
    assert net.status()["mode"] == mode_block(
        "auto_provisioning", "legacy_auto", "legacy_manual", central_available=False
    )


def test_central_off_while_shown_configures_manual_m3(net):
    net.given(installed(SE))

    outcome = net.when(ev("central_cti_link_set", enabled=False))

    assert outcome.outcome == "accepted"
    assert net.status()["mode"] == mode_block("central_cti_link", "manual", "central")


# --- M4: conversion ------------------------------------------------------------


@pytest.mark.parametrize(("ap", "legacy"), [(True, "legacy_auto"), (False, "legacy_manual")])
def test_conversion_while_auto_provisioning_shown_configures_central_at_once_m4(net, ap, legacy):
    net.given(installed(SE, upgraded_from="9.1", auto_provisioning=ap))

    outcome = net.when(ev("converted_to_central"))

    assert (outcome.outcome, outcome.position) == ("accepted", 2)
    assert net.status()["mode"] == mode_block("central_cti_link", "central", legacy, converted=True)


def test_conversion_after_auto_provisioning_change_pending_is_accepted_m4(net):
    net.given(installed(SE, upgraded_from="9.1"), ev("auto_provisioning_set", enabled=False))

    outcome = net.when(ev("converted_to_central"))

    assert outcome.outcome == "accepted"
    assert net.status()["mode"] == mode_block(
        "central_cti_link", "central", "legacy_auto", converted=True
    )


def test_auto_provisioning_is_never_shown_again_after_conversion_m4(net):
    net.given(
        installed(SE, upgraded_from="9.1"),
        ev("converted_to_central"),
        ev("portal_restarted"),
        ev("central_cti_link_set", enabled=False),
        ev("portal_restarted"),
    )

    outcome = net.when(ev("auto_provisioning_set", enabled=True))

    assert (outcome.outcome, outcome.code) == ("rejected", "wrong_setting")
    assert net.status()["mode"] == mode_block("central_cti_link", "manual", converted=True)


def test_second_conversion_is_rejected_already_converted_m4(net):
    net.given(installed(SE, upgraded_from="9.1"), ev("converted_to_central"))

    outcome = net.when(ev("converted_to_central"))

    assert (outcome.outcome, outcome.code) == ("rejected", "already_converted")
    assert net.status()["position"] == 2


def test_already_converted_is_checked_before_wrong_setting_m4(net):
    net.given(
        installed(SE, upgraded_from="9.1"),
        ev("converted_to_central"),
        ev("portal_restarted"),
        ev("central_cti_link_set", enabled=False),
        ev("portal_restarted"),
    )

    outcome = net.when(ev("converted_to_central"))

    assert (outcome.outcome, outcome.code) == ("rejected", "already_converted")


def test_conversion_of_a_network_that_never_showed_auto_provisioning_is_wrong_setting_m4(net):
    net.given(installed(SE))

    outcome = net.when(ev("converted_to_central"))

    assert (outcome.outcome, outcome.code) == ("rejected", "wrong_setting")
    assert net.status()["mode"]["converted"] is False


def test_conversion_of_an_upgrade_from_10_is_wrong_setting_m4(net):
    net.given(installed(SE, upgraded_from="10.0"))

    outcome = net.when(ev("converted_to_central"))

    assert (outcome.outcome, outcome.code) == ("rejected", "wrong_setting")


def test_after_conversion_before_restart_only_central_setting_applies_m4(net):
    net.given(installed(SE, upgraded_from="9.1"), ev("converted_to_central"))

    rejected = net.when(ev("auto_provisioning_set", enabled=False))
    accepted = net.when(ev("central_cti_link_set", enabled=False))

    assert (rejected.outcome, rejected.code) == ("rejected", "wrong_setting")
    assert (accepted.outcome, accepted.position) == ("accepted", 3)
    assert net.status()["mode"] == mode_block(
        "central_cti_link", "manual", "legacy_auto", converted=True
    )


def test_converted_network_restarted_into_manual_m4_m5(net):
    net.given(
        installed(SE, upgraded_from="9.1"),
        ev("converted_to_central"),
        ev("central_cti_link_set", enabled=False),
    )

    net.when(ev("portal_restarted"))

    assert net.status()["mode"] == mode_block("central_cti_link", "manual", converted=True)


# --- M5: configured now, effective at the next restart -------------------------


def test_central_setting_changes_configured_mode_but_not_effective_until_restart_m5(net):
    net.given(
        installed(SE),
        system("p1", role="primary"),
        ev("provider_configured", kind="csta", system="p1"),
    )

    net.when(ev("central_cti_link_set", enabled=False))

    doc = net.status()
    assert doc["mode"] == mode_block("central_cti_link", "manual", "central")
    assert doc["mode"]["restart_pending"] is True
    assert provider_list(doc) == [("csta", "p1", "central"), ("dsml", "p1", "central")]


def test_restart_makes_configured_mode_effective_m5(net):
    net.given(
        installed(SE),
        system("p1", role="primary"),
        ev("provider_configured", kind="csta", system="p1"),
        ev("central_cti_link_set", enabled=False),
    )

    outcome = net.when(ev("portal_restarted"))

    doc = net.status()
    assert outcome.outcome == "accepted"
    assert doc["mode"] == mode_block("central_cti_link", "manual")
    assert doc["mode"]["restart_pending"] is False
    assert provider_list(doc) == [("csta", "p1", "manual")]


def test_setting_back_before_restart_clears_restart_pending_m5(net):
    net.given(installed(SE), ev("central_cti_link_set", enabled=False))

    net.when(ev("central_cti_link_set", enabled=True))

    assert net.status()["mode"] == mode_block("central_cti_link", "central")


def test_auto_provisioning_change_waits_for_restart_m5(net):
    net.given(installed(SE, upgraded_from="9.1"), system("s1"))

    net.when(ev("auto_provisioning_set", enabled=False))

    doc = net.status()
    assert doc["mode"] == mode_block("auto_provisioning", "legacy_manual", "legacy_auto")
    assert provider_list(doc) == [("csta", "s1", "auto"), ("dsml", "s1", "auto")]


def test_auto_provisioning_change_applies_at_restart_m5(net):
    net.given(
        installed(SE, upgraded_from="9.1"), system("s1"), ev("auto_provisioning_set", enabled=False)
    )

    net.when(ev("portal_restarted"))

    doc = net.status()
    assert doc["mode"] == mode_block("auto_provisioning", "legacy_manual")
    assert provider_list(doc) == []


def test_conversion_waits_for_restart_then_central_providers_m5(net):
    net.given(
        installed(SE, upgraded_from="9.1"), system("p1", role="primary"), ev("converted_to_central")
    )
    pending = net.status()

    net.when(ev("portal_restarted"))

    doc = net.status()
    assert pending["mode"]["restart_pending"] is True
    assert provider_list(pending) == [("csta", "p1", "auto"), ("dsml", "p1", "auto")]
    assert doc["mode"] == mode_block("central_cti_link", "central", converted=True)
    assert provider_list(doc) == [("csta", "p1", "central"), ("dsml", "p1", "central")]


def test_component_rows_follow_effective_not_configured_mode_m5(net):
    net.given(installed(SE, upgraded_from="10.0"), system("p1", role="primary"))

    net.when(ev("central_cti_link_set", enabled=True))

    assert [(r["state"], r["via"]) for r in net.status()["components"]] == [
        ("not_configured", None),
        ("not_configured", None),
    ]


def test_restart_with_nothing_pending_is_accepted_and_changes_nothing_m5(net):
    net.given(installed(SE), system("p1", role="primary"))
    before = net.status()

    outcome = net.when(ev("portal_restarted"))

    assert (outcome.outcome, outcome.position) == ("accepted", 3)
    assert same_but_position(before, net.status())


def test_status_as_of_before_restart_still_shows_restart_pending_m5(net):
    net.given(installed(SE), ev("central_cti_link_set", enabled=False), ev("portal_restarted"))

    earlier = net.status(at=2)

    assert earlier["mode"] == mode_block("central_cti_link", "manual", "central")
    assert net.status()["mode"] == mode_block("central_cti_link", "manual")


# --- M6: settings that change nothing ------------------------------------------


@pytest.mark.parametrize(
    ("install", "setting"),
    [
        pytest.param({"platform": SE}, ev("central_cti_link_set", enabled=True), id="central-on"),
        pytest.param(
            {"platform": SE, "upgraded_from": "10.0"},
            ev("central_cti_link_set", enabled=False),
            id="manual-off",
        ),
        pytest.param(
            {"platform": SE, "upgraded_from": "9.1"},
            ev("auto_provisioning_set", enabled=True),
            id="legacy-auto-on",
        ),
        pytest.param(
            {"platform": SE, "upgraded_from": "9.1", "auto_provisioning": False},
            ev("auto_provisioning_set", enabled=False),
            id="legacy-manual-off",
        ),
    ],
)
def test_setting_that_leaves_configured_mode_is_accepted_and_changes_nothing_m6(
    net, install, setting
):
    net.given(installed(**install), system("p1", role="primary"))
    before = net.status()

    outcome = net.when(setting)

    assert (outcome.outcome, outcome.position) == ("accepted", 3)
    assert same_but_position(before, net.status())


def test_repeating_a_pending_setting_keeps_restart_pending_m6(net):
    net.given(installed(SE), ev("central_cti_link_set", enabled=False))
    before = net.status()

    outcome = net.when(ev("central_cti_link_set", enabled=False))

    assert (outcome.outcome, outcome.position) == ("accepted", 3)
    assert same_but_position(before, net.status())
    assert net.status()["mode"]["restart_pending"] is True
