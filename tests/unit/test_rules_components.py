"""SPEC §6 component status rules C1–C4, written given-when-then over a real store."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import configure, ev, installed, same_but_position, system

SE = "linux_server_edition"


def row(name: str, role: str, component: str, state: str, via: str | None) -> dict[str, Any]:
    """One expected component row."""
    return {"system": name, "role": role, "component": component, "state": state, "via": via}


def vias(doc: dict[str, Any]) -> dict[tuple[str, str], str | None]:
    """(system, component) -> via of every row."""
    return {(r["system"], r["component"]): r["via"] for r in doc["components"]}


def states(doc: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(system, component) -> state of every row."""
    return {(r["system"], r["component"]): r["state"] for r in doc["components"]}


def link(name: str, component: str, up: bool) -> dict[str, Any]:
    """A link_changed event."""
    return ev("link_changed", system=name, component=component, up=up)


CENTRAL_TRIO = [
    installed(SE),
    system("p1", role="primary"),
    system("b1", role="secondary"),
    system("x1"),
]
MANUAL_TRIO = [
    installed(SE, upgraded_from="10.0"),
    system("p1", role="primary"),
    system("b1", role="secondary"),
    system("x1"),
]


# --- C1: one row per system and component --------------------------------------


def test_central_has_one_row_per_system_and_component_sorted_c1(net):
    net.given(
        installed(SE),
        system("zeta"),
        system("p1", role="primary"),
        system("alpha"),
        system("b1", role="secondary"),
    )

    doc = net.status()

    assert [list(r) for r in doc["components"]] == [
        ["system", "role", "component", "state", "via"]
    ] * 8
    assert doc["components"] == [
        row("alpha", "expansion", "csta", "unavailable", "p1"),
        row("alpha", "expansion", "dsml", "unavailable", "p1"),
        row("b1", "secondary", "csta", "unavailable", "p1"),
        row("b1", "secondary", "dsml", "unavailable", "p1"),
        row("p1", "primary", "csta", "unavailable", "p1"),
        row("p1", "primary", "dsml", "unavailable", "p1"),
        row("zeta", "expansion", "csta", "unavailable", "p1"),
        row("zeta", "expansion", "dsml", "unavailable", "p1"),
    ]


@pytest.mark.parametrize(
    "install",
    [
        installed(SE, upgraded_from="10.0"),
        installed(SE, upgraded_from="9.1", auto_provisioning=False),
    ],
    ids=["manual", "legacy_manual"],
)
def test_manual_modes_have_rows_even_without_providers_c1(net, install):
    net.given(install, system("x2"), system("x1"))

    doc = net.status()

    assert doc["components"] == [
        row("x1", "expansion", "csta", "not_configured", None),
        row("x1", "expansion", "dsml", "not_configured", None),
        row("x2", "expansion", "csta", "not_configured", None),
        row("x2", "expansion", "dsml", "not_configured", None),
    ]


def test_legacy_auto_has_one_row_per_system_and_component_c1(net):
    net.given(installed(SE, upgraded_from="9.1"), system("x2"), system("p1", role="primary"))

    doc = net.status()

    assert doc["components"] == [
        row("p1", "primary", "csta", "unavailable", "p1"),
        row("p1", "primary", "dsml", "unavailable", "p1"),
        row("x2", "expansion", "csta", "unavailable", "x2"),
        row("x2", "expansion", "dsml", "unavailable", "x2"),
    ]


def test_no_systems_no_rows_c1(net):
    given = installed(SE)

    net.given(given)

    assert net.status()["components"] == []


def test_removed_system_has_no_rows_c1(net):
    net.given(installed(SE), system("p1", role="primary"), system("x1"))

    net.when(ev("system_removed", system="x1"))

    assert [(r["system"], r["component"]) for r in net.status()["components"]] == [
        ("p1", "csta"),
        ("p1", "dsml"),
    ]


# --- C2: via, central ----------------------------------------------------------


def test_central_every_row_is_served_via_the_primary_c2(net):
    net.given(*CENTRAL_TRIO)

    net.when(ev("resilience_set", enabled=True))

    assert set(vias(net.status()).values()) == {"p1"}
    assert len(net.status()["components"]) == 6


def test_central_primary_failed_over_with_resilience_serves_via_secondary_c2(net):
    net.given(*CENTRAL_TRIO, ev("resilience_set", enabled=True))

    net.when(ev("failover", system="p1"))

    assert set(vias(net.status()).values()) == {"b1"}


def test_central_primary_failed_over_without_resilience_has_no_via_c2(net):
    net.given(*CENTRAL_TRIO)

    net.when(ev("failover", system="p1"))

    assert set(vias(net.status()).values()) == {None}


def test_central_primary_and_secondary_failed_over_has_no_via_c2(net):
    net.given(*CENTRAL_TRIO, ev("resilience_set", enabled=True), ev("failover", system="b1"))

    net.when(ev("failover", system="p1"))

    assert set(vias(net.status()).values()) == {None}


def test_central_primary_failed_over_with_resilience_but_no_secondary_has_no_via_c2(net):
    net.given(
        installed(SE),
        system("p1", role="primary"),
        system("x1"),
        ev("resilience_set", enabled=True),
    )

    net.when(ev("failover", system="p1"))

    assert set(vias(net.status()).values()) == {None}


def test_central_primary_failed_over_after_secondary_removed_has_no_via_c2(net):
    net.given(*CENTRAL_TRIO, ev("resilience_set", enabled=True), ev("system_removed", system="b1"))

    net.when(ev("failover", system="p1"))

    assert set(vias(net.status()).values()) == {None}


def test_central_secondary_failed_over_changes_nothing_while_primary_serves_c2(net):
    net.given(*CENTRAL_TRIO, ev("resilience_set", enabled=True))

    net.when(ev("failover", system="b1"))

    assert set(vias(net.status()).values()) == {"p1"}


def test_central_expansion_failed_over_is_still_served_via_primary_c2(net):
    net.given(*CENTRAL_TRIO)

    net.when(ev("failover", system="x1"))

    assert set(vias(net.status()).values()) == {"p1"}


def test_central_failback_of_primary_serves_via_primary_again_c2(net):
    net.given(*CENTRAL_TRIO, ev("resilience_set", enabled=True), ev("failover", system="p1"))

    net.when(ev("failback", system="p1"))

    assert set(vias(net.status()).values()) == {"p1"}


def test_central_disabling_resilience_while_primary_failed_drops_the_via_c2(net):
    net.given(*CENTRAL_TRIO, ev("resilience_set", enabled=True), ev("failover", system="p1"))

    net.when(ev("resilience_set", enabled=False))

    assert set(vias(net.status()).values()) == {None}


def test_central_without_a_primary_has_no_via_c2(net):
    net.given(installed(SE), system("b1", role="secondary"), system("x1"))

    net.when(ev("resilience_set", enabled=True))

    assert net.status()["components"] == [
        row("b1", "secondary", "csta", "unavailable", None),
        row("b1", "secondary", "dsml", "unavailable", None),
        row("x1", "expansion", "csta", "unavailable", None),
        row("x1", "expansion", "dsml", "unavailable", None),
    ]


# --- C2: via, other modes ------------------------------------------------------


def test_manual_row_without_active_provider_has_no_via_c2(net):
    net.given(*MANUAL_TRIO)

    net.when(configure("csta", "x1"))

    assert vias(net.status()) == {
        ("b1", "csta"): None,
        ("b1", "dsml"): None,
        ("p1", "csta"): None,
        ("p1", "dsml"): None,
        ("x1", "csta"): "x1",
        ("x1", "dsml"): None,
    }


def test_manual_row_with_active_provider_is_served_via_itself_c2(net):
    net.given(*MANUAL_TRIO, configure("csta", "p1"), configure("dsml", "p1"))

    net.when(configure("dsml", "x1"))

    assert vias(net.status()) == {
        ("b1", "csta"): None,
        ("b1", "dsml"): None,
        ("p1", "csta"): "p1",
        ("p1", "dsml"): "p1",
        ("x1", "csta"): None,
        ("x1", "dsml"): "x1",
    }


def test_manual_failed_over_with_resilient_secondary_provider_serves_via_secondary_c2(net):
    net.given(
        *MANUAL_TRIO,
        ev("resilience_set", enabled=True),
        configure("csta", "x1"),
        configure("dsml", "x1"),
        configure("csta", "b1"),
    )

    net.when(ev("failover", system="x1"))

    doc = vias(net.status())
    assert (doc[("x1", "csta")], doc[("x1", "dsml")]) == ("b1", None)
    assert (doc[("b1", "csta")], doc[("b1", "dsml")]) == ("b1", None)


def test_manual_failed_over_secondary_without_provider_of_that_kind_has_no_via_c2(net):
    net.given(
        *MANUAL_TRIO,
        ev("resilience_set", enabled=True),
        configure("dsml", "x1"),
        configure("csta", "b1"),
    )

    net.when(ev("failover", system="x1"))

    doc = net.status()
    assert [r for r in doc["components"] if r["system"] == "x1"] == [
        row("x1", "expansion", "csta", "not_configured", None),
        row("x1", "expansion", "dsml", "unavailable", None),
    ]


def test_manual_failed_over_without_resilience_has_no_via_c2(net):
    net.given(*MANUAL_TRIO, configure("csta", "p1"), configure("csta", "b1"))

    net.when(ev("failover", system="p1"))

    assert vias(net.status())[("p1", "csta")] is None
    assert vias(net.status())[("b1", "csta")] == "b1"


def test_manual_failed_over_with_failed_secondary_has_no_via_c2(net):
    net.given(
        *MANUAL_TRIO,
        ev("resilience_set", enabled=True),
        configure("csta", "p1"),
        configure("csta", "b1"),
        ev("failover", system="b1"),
    )

    net.when(ev("failover", system="p1"))

    assert vias(net.status())[("p1", "csta")] is None
    assert vias(net.status())[("b1", "csta")] is None


def test_manual_failed_over_with_no_secondary_in_network_has_no_via_c2(net):
    net.given(
        installed("windows"),
        system("p1", role="primary"),
        ev("resilience_set", enabled=True),
        configure("csta", "p1"),
    )

    net.when(ev("failover", system="p1"))

    assert vias(net.status()) == {("p1", "csta"): None, ("p1", "dsml"): None}


def test_manual_failover_via_inactive_central_provider_is_not_used_c2(net):
    net.given(
        installed(SE),
        system("p1", role="primary"),
        system("b1", role="secondary"),
        ev("resilience_set", enabled=True),
        configure("csta", "p1"),
        ev("central_cti_link_set", enabled=False),
        ev("portal_restarted"),
    )

    net.when(ev("failover", system="p1"))

    assert vias(net.status())[("p1", "csta")] is None


def test_manual_failover_follows_when_secondary_gets_its_provider_c2(net):
    net.given(
        *MANUAL_TRIO,
        ev("resilience_set", enabled=True),
        configure("csta", "p1"),
        ev("failover", system="p1"),
    )

    net.when(configure("csta", "b1"))

    assert vias(net.status())[("p1", "csta")] == "b1"


def test_manual_failback_serves_via_itself_again_c2(net):
    net.given(*MANUAL_TRIO, configure("csta", "x1"), ev("failover", system="x1"))

    net.when(ev("failback", system="x1"))

    assert vias(net.status())[("x1", "csta")] == "x1"


def test_legacy_auto_rows_are_served_via_themselves_c2(net):
    net.given(
        installed(SE, upgraded_from="9.1"),
        system("p1", role="primary"),
        system("b1", role="secondary"),
    )

    net.when(system("x1"))

    assert vias(net.status()) == {
        ("b1", "csta"): "b1",
        ("b1", "dsml"): "b1",
        ("p1", "csta"): "p1",
        ("p1", "dsml"): "p1",
        ("x1", "csta"): "x1",
        ("x1", "dsml"): "x1",
    }


def test_legacy_auto_failed_over_with_resilience_serves_via_secondary_c2(net):
    net.given(
        installed(SE, upgraded_from="9.1"),
        system("p1", role="primary"),
        system("b1", role="secondary"),
        system("x1"),
        ev("resilience_set", enabled=True),
    )

    net.when(ev("failover", system="x1"))

    assert vias(net.status())[("x1", "csta")] == "b1"
    assert vias(net.status())[("x1", "dsml")] == "b1"
    assert vias(net.status())[("p1", "csta")] == "p1"


def test_legacy_manual_follows_manual_records_c2(net):
    net.given(
        installed(SE, upgraded_from="9.1", auto_provisioning=False),
        system("p1", role="primary"),
        system("b1", role="secondary"),
        ev("resilience_set", enabled=True),
        configure("dsml", "p1"),
        configure("dsml", "b1"),
    )

    net.when(ev("failover", system="p1"))

    assert vias(net.status()) == {
        ("b1", "csta"): None,
        ("b1", "dsml"): "b1",
        ("p1", "csta"): None,
        ("p1", "dsml"): "b1",
    }


# --- C3: state -----------------------------------------------------------------


def test_central_row_is_available_when_via_link_is_up_c3(net):
    net.given(*CENTRAL_TRIO)

    net.when(link("p1", "csta", True))

    assert states(net.status()) == {
        ("b1", "csta"): "available",
        ("b1", "dsml"): "unavailable",
        ("p1", "csta"): "available",
        ("p1", "dsml"): "unavailable",
        ("x1", "csta"): "available",
        ("x1", "dsml"): "unavailable",
    }


def test_central_row_ignores_links_of_the_row_system_itself_c3(net):
    net.given(*CENTRAL_TRIO, link("x1", "csta", True))

    net.when(link("x1", "dsml", True))

    assert set(states(net.status()).values()) == {"unavailable"}


def test_link_never_reported_is_unavailable_c3(net):
    given = CENTRAL_TRIO

    net.given(*given)

    assert set(states(net.status()).values()) == {"unavailable"}


def test_last_link_change_wins_up_then_down_is_unavailable_c3(net):
    net.given(*CENTRAL_TRIO, link("p1", "dsml", True))

    net.when(link("p1", "dsml", False))

    assert states(net.status())[("x1", "dsml")] == "unavailable"


def test_last_link_change_wins_down_then_up_is_available_c3(net):
    net.given(*CENTRAL_TRIO, link("p1", "dsml", False))

    net.when(link("p1", "dsml", True))

    assert states(net.status())[("x1", "dsml")] == "available"


def test_central_with_no_via_is_unavailable_even_with_links_up_c3(net):
    net.given(*CENTRAL_TRIO, link("p1", "csta", True), link("b1", "csta", True))

    net.when(ev("failover", system="p1"))

    assert set(states(net.status()).values()) == {"unavailable"}


def test_central_failed_over_to_secondary_uses_secondary_links_c3(net):
    net.given(
        *CENTRAL_TRIO,
        ev("resilience_set", enabled=True),
        link("p1", "csta", True),
        link("b1", "dsml", True),
    )

    net.when(ev("failover", system="p1"))

    assert states(net.status()) == {
        ("b1", "csta"): "unavailable",
        ("b1", "dsml"): "available",
        ("p1", "csta"): "unavailable",
        ("p1", "dsml"): "available",
        ("x1", "csta"): "unavailable",
        ("x1", "dsml"): "available",
    }


def test_manual_row_without_active_provider_is_not_configured_even_with_link_up_c3(net):
    net.given(*MANUAL_TRIO, link("x1", "csta", True))

    net.when(configure("dsml", "x1"))

    assert net.status()["components"][-2:] == [
        row("x1", "expansion", "csta", "not_configured", None),
        row("x1", "expansion", "dsml", "unavailable", "x1"),
    ]


def test_manual_row_with_provider_and_link_up_is_available_c3(net):
    net.given(*MANUAL_TRIO, configure("csta", "x1"))

    net.when(link("x1", "csta", True))

    assert net.status()["components"][-2:] == [
        row("x1", "expansion", "csta", "available", "x1"),
        row("x1", "expansion", "dsml", "not_configured", None),
    ]


def test_manual_failed_over_without_standby_is_unavailable_not_not_configured_c3(net):
    net.given(*MANUAL_TRIO, configure("csta", "x1"), link("x1", "csta", True))

    net.when(ev("failover", system="x1"))

    assert net.status()["components"][-2] == row("x1", "expansion", "csta", "unavailable", None)


def test_manual_failed_over_to_secondary_is_available_on_secondary_link_c3(net):
    net.given(
        *MANUAL_TRIO,
        ev("resilience_set", enabled=True),
        configure("csta", "x1"),
        configure("csta", "b1"),
        link("b1", "csta", True),
    )

    net.when(ev("failover", system="x1"))

    assert net.status()["components"][-2] == row("x1", "expansion", "csta", "available", "b1")


def test_legacy_auto_row_state_follows_own_link_c3(net):
    net.given(installed(SE, upgraded_from="9.1"), system("x1"), link("x1", "csta", True))

    net.when(link("x1", "dsml", False))

    assert net.status()["components"] == [
        row("x1", "expansion", "csta", "available", "x1"),
        row("x1", "expansion", "dsml", "unavailable", "x1"),
    ]


def test_central_never_reports_not_configured_c3(net):
    net.given(installed(SE), system("x1"))

    doc = net.status()

    assert doc["components"] == [
        row("x1", "expansion", "csta", "unavailable", None),
        row("x1", "expansion", "dsml", "unavailable", None),
    ]


# --- C4: repeated failover and failback ----------------------------------------


def test_second_failover_is_accepted_and_changes_nothing_c4(net):
    net.given(*CENTRAL_TRIO, ev("resilience_set", enabled=True), ev("failover", system="p1"))
    before = net.status()

    outcome = net.when(ev("failover", system="p1"))

    assert (outcome.outcome, outcome.position) == ("accepted", 7)
    assert same_but_position(before, net.status())


def test_one_failback_undoes_repeated_failovers_c4(net):
    net.given(*CENTRAL_TRIO, ev("failover", system="p1"), ev("failover", system="p1"))

    net.when(ev("failback", system="p1"))

    assert set(vias(net.status()).values()) == {"p1"}


def test_failback_of_a_system_not_failed_over_is_accepted_and_changes_nothing_c4(net):
    net.given(*CENTRAL_TRIO, link("p1", "csta", True))
    before = net.status()

    outcome = net.when(ev("failback", system="p1"))

    assert (outcome.outcome, outcome.position) == ("accepted", 6)
    assert same_but_position(before, net.status())


def test_second_failback_is_accepted_and_changes_nothing_c4(net):
    net.given(
        *MANUAL_TRIO,
        configure("csta", "x1"),
        ev("failover", system="x1"),
        ev("failback", system="x1"),
    )
    before = net.status()

    outcome = net.when(ev("failback", system="x1"))

    assert outcome.outcome == "accepted"
    assert same_but_position(before, net.status())
