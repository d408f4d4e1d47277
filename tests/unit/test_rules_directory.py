"""SPEC §7 directory rules D1–D4, written given-when-then over a real store."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import configure, ev, installed, system

SE = "linux_server_edition"


def directory_changed(name: str, *entries: tuple[str, str] | tuple[str, str, bool]):
    """A directory_changed event; an entry is (name, number[, ex_directory])."""
    listed = []
    for item in entries:
        entry: dict[str, Any] = {"name": item[0], "number": item[1]}
        if len(item) == 3:
            entry["ex_directory"] = item[2]
        listed.append(entry)
    return ev("directory_changed", system=name, entries=listed)


def personal(name: str, user: str, *entries: tuple[str, str]) -> dict[str, Any]:
    """A personal_directory_changed event."""
    return ev(
        "personal_directory_changed",
        system=name,
        user=user,
        entries=[{"name": n, "number": k} for n, k in entries],
    )


def homed(user: str, name: str) -> dict[str, Any]:
    """A user_homed event."""
    return ev("user_homed", user=user, system=name)


def sys_entry(name: str, number: str, owner: str, via: str) -> dict[str, str]:
    """One expected system-directory entry."""
    return {"name": name, "number": number, "system": owner, "via": via}


CENTRAL_TRIO = [
    installed(SE),
    system("p1", role="primary"),
    system("b1", role="secondary"),
    system("x1"),
]


# --- D1: system directory ------------------------------------------------------


def test_central_directory_holds_every_systems_entries_via_primary_d1(net):
    net.given(
        *CENTRAL_TRIO,
        directory_changed("x1", ("Xena", "301")),
        directory_changed("b1", ("Bob", "201")),
    )

    net.when(directory_changed("p1", ("Pat", "101")))

    assert net.directory() == {
        "network": "acme",
        "position": 7,
        "system": [
            sys_entry("Bob", "201", "b1", "p1"),
            sys_entry("Pat", "101", "p1", "p1"),
            sys_entry("Xena", "301", "x1", "p1"),
        ],
        "personal": {},
    }


def test_directory_entries_appear_whatever_the_link_state_d1(net):
    net.given(*CENTRAL_TRIO, ev("link_changed", system="p1", component="dsml", up=False))

    net.when(directory_changed("x1", ("Xena", "301")))

    assert net.directory()["system"] == [sys_entry("Xena", "301", "x1", "p1")]


def test_central_primary_failed_over_without_standby_hides_all_entries_d1(net):
    net.given(
        *CENTRAL_TRIO,
        directory_changed("x1", ("Xena", "301")),
        directory_changed("p1", ("Pat", "101")),
    )

    net.when(ev("failover", system="p1"))

    assert net.directory()["system"] == []


def test_central_primary_failed_over_with_resilience_entries_via_secondary_d1(net):
    net.given(
        *CENTRAL_TRIO,
        ev("resilience_set", enabled=True),
        directory_changed("x1", ("Xena", "301")),
        directory_changed("p1", ("Pat", "101")),
    )

    net.when(ev("failover", system="p1"))

    assert net.directory()["system"] == [
        sys_entry("Pat", "101", "p1", "b1"),
        sys_entry("Xena", "301", "x1", "b1"),
    ]


def test_central_failback_brings_entries_back_via_primary_d1(net):
    net.given(*CENTRAL_TRIO, directory_changed("x1", ("Xena", "301")), ev("failover", system="p1"))

    net.when(ev("failback", system="p1"))

    assert net.directory()["system"] == [sys_entry("Xena", "301", "x1", "p1")]


def test_manual_directory_holds_only_systems_with_a_dsml_provider_d1(net):
    net.given(
        installed("windows"),
        system("x1"),
        system("x2"),
        system("x3"),
        configure("dsml", "x1"),
        configure("csta", "x2"),
        directory_changed("x1", ("Ann", "1")),
        directory_changed("x2", ("Bea", "2")),
    )

    net.when(directory_changed("x3", ("Cy", "3")))

    assert net.directory()["system"] == [sys_entry("Ann", "1", "x1", "x1")]


def test_manual_failed_over_system_entries_via_secondary_with_dsml_d1(net):
    net.given(
        installed("windows"),
        system("p1", role="primary"),
        system("b1", role="secondary"),
        ev("resilience_set", enabled=True),
        configure("dsml", "p1"),
        configure("dsml", "b1"),
        directory_changed("p1", ("Pat", "101")),
    )

    net.when(ev("failover", system="p1"))

    assert net.directory()["system"] == [sys_entry("Pat", "101", "p1", "b1")]


def test_manual_failed_over_system_entries_vanish_when_secondary_lacks_dsml_d1(net):
    net.given(
        installed("windows"),
        system("p1", role="primary"),
        system("b1", role="secondary"),
        ev("resilience_set", enabled=True),
        configure("dsml", "p1"),
        configure("csta", "b1"),
        directory_changed("p1", ("Pat", "101")),
    )

    net.when(ev("failover", system="p1"))

    assert net.directory()["system"] == []


def test_legacy_auto_directory_entries_via_their_own_system_d1(net):
    net.given(
        installed(SE, upgraded_from="9.1"),
        system("x1"),
        system("x2"),
        directory_changed("x2", ("Bea", "2")),
    )

    net.when(directory_changed("x1", ("Ann", "1")))

    assert net.directory()["system"] == [
        sys_entry("Ann", "1", "x1", "x1"),
        sys_entry("Bea", "2", "x2", "x2"),
    ]


def test_directory_changed_replaces_that_systems_entries_d1(net):
    net.given(
        *CENTRAL_TRIO,
        directory_changed("x1", ("Old", "1"), ("Keep", "2")),
        directory_changed("p1", ("Pat", "101")),
    )

    net.when(directory_changed("x1", ("Keep", "2"), ("New", "3")))

    assert net.directory()["system"] == [
        sys_entry("Pat", "101", "p1", "p1"),
        sys_entry("Keep", "2", "x1", "p1"),
        sys_entry("New", "3", "x1", "p1"),
    ]


def test_empty_directory_changed_clears_that_systems_entries_d1(net):
    net.given(*CENTRAL_TRIO, directory_changed("x1", ("Old", "1")))

    net.when(directory_changed("x1"))

    assert net.directory()["system"] == []


def test_system_entries_sorted_by_system_then_name_then_number_d1(net):
    net.given(*CENTRAL_TRIO, directory_changed("x1", ("Zed", "9"), ("Amy", "7"), ("Amy", "3")))

    net.when(directory_changed("b1", ("Zoe", "1")))

    assert net.directory()["system"] == [
        sys_entry("Zoe", "1", "b1", "p1"),
        sys_entry("Amy", "3", "x1", "p1"),
        sys_entry("Amy", "7", "x1", "p1"),
        sys_entry("Zed", "9", "x1", "p1"),
    ]


def test_directory_as_of_an_earlier_position_d1(net):
    net.given(*CENTRAL_TRIO, directory_changed("x1", ("Old", "1")))
    then = net.directory()
    net.given(directory_changed("x1", ("New", "2")))

    earlier = net.directory(at=5)

    assert earlier == then
    assert earlier["system"] == [sys_entry("Old", "1", "x1", "p1")]


# --- D2: ex-directory ----------------------------------------------------------


def test_ex_directory_entries_never_appear_d2(net):
    net.given(*CENTRAL_TRIO)

    net.when(directory_changed("x1", ("Open", "1", False), ("Secret", "2", True), ("Plain", "3")))

    assert net.directory()["system"] == [
        sys_entry("Open", "1", "x1", "p1"),
        sys_entry("Plain", "3", "x1", "p1"),
    ]


def test_ex_directory_entries_stay_hidden_after_failover_d2(net):
    net.given(
        *CENTRAL_TRIO,
        ev("resilience_set", enabled=True),
        directory_changed("x1", ("Secret", "2", True)),
    )

    net.when(ev("failover", system="p1"))

    assert net.directory()["system"] == []


# --- D3: personal directories --------------------------------------------------


def test_personal_directory_from_host_system_is_accepted_d3(net):
    net.given(*CENTRAL_TRIO, homed("ann", "x1"))

    outcome = net.when(personal("x1", "ann", ("Zed", "9"), ("Bob", "2"), ("Bob", "1")))

    assert (outcome.outcome, outcome.position) == ("accepted", 6)
    assert net.directory()["personal"] == {
        "ann": [
            {"name": "Bob", "number": "1"},
            {"name": "Bob", "number": "2"},
            {"name": "Zed", "number": "9"},
        ]
    }


def test_personal_directory_from_another_system_is_rejected_not_host_system_d3(net):
    net.given(*CENTRAL_TRIO, homed("ann", "x1"))

    outcome = net.when(personal("p1", "ann", ("Bob", "2")))

    assert (outcome.outcome, outcome.code) == ("rejected", "not_host_system")
    assert net.directory()["personal"] == {"ann": []}


def test_personal_directory_with_251_entries_is_rejected_too_many_entries_d3(net):
    net.given(*CENTRAL_TRIO, homed("ann", "x1"))

    outcome = net.when(personal("x1", "ann", *[(f"n{i:03}", str(i)) for i in range(251)]))

    assert (outcome.outcome, outcome.code) == ("rejected", "too_many_entries")
    assert net.directory()["personal"] == {"ann": []}


def test_personal_directory_with_250_entries_is_accepted_d3(net):
    net.given(*CENTRAL_TRIO, homed("ann", "x1"))

    outcome = net.when(personal("x1", "ann", *[(f"n{i:03}", str(i)) for i in range(250)]))

    assert outcome.outcome == "accepted"
    assert len(net.directory()["personal"]["ann"]) == 250


def test_personal_directory_of_unknown_user_is_rejected_unknown_user_d3(net):
    net.given(*CENTRAL_TRIO, homed("ann", "x1"))

    outcome = net.when(personal("x1", "bob", ("Ann", "1")))

    assert (outcome.outcome, outcome.code) == ("rejected", "unknown_user")
    assert net.directory()["personal"] == {"ann": []}


def test_unknown_user_is_checked_before_not_host_system_d3(net):
    net.given(*CENTRAL_TRIO, homed("ann", "x1"))

    outcome = net.when(personal("p1", "bob", ("Ann", "1")))

    assert (outcome.outcome, outcome.code) == ("rejected", "unknown_user")


def test_not_host_system_is_checked_before_too_many_entries_d3(net):
    net.given(*CENTRAL_TRIO, homed("ann", "x1"))

    outcome = net.when(personal("p1", "ann", *[(f"n{i:03}", str(i)) for i in range(251)]))

    assert (outcome.outcome, outcome.code) == ("rejected", "not_host_system")


def test_unknown_user_is_checked_before_too_many_entries_d3(net):
    net.given(*CENTRAL_TRIO)

    outcome = net.when(personal("x1", "bob", *[(f"n{i:03}", str(i)) for i in range(251)]))

    assert (outcome.outcome, outcome.code) == ("rejected", "unknown_user")


def test_personal_directory_replaces_the_previous_one_d3(net):
    net.given(*CENTRAL_TRIO, homed("ann", "x1"), personal("x1", "ann", ("Old", "1")))

    net.when(personal("x1", "ann", ("New", "2")))

    assert net.directory()["personal"] == {"ann": [{"name": "New", "number": "2"}]}


def test_personal_directory_does_not_depend_on_the_dsml_via_d3(net):
    net.given(*CENTRAL_TRIO, homed("ann", "x1"), ev("failover", system="p1"))

    net.when(personal("x1", "ann", ("Bob", "2")))

    assert net.directory()["personal"] == {"ann": [{"name": "Bob", "number": "2"}]}
    assert net.directory()["system"] == []


# --- D4: users ------------------------------------------------------------------


def test_known_user_appears_with_empty_list_until_host_reports_d4(net):
    net.given(*CENTRAL_TRIO, homed("ann", "x1"))

    net.when(homed("bob", "p1"))

    assert net.directory()["personal"] == {"ann": [], "bob": []}


def test_user_homed_again_moves_the_user_and_keeps_personal_directory_d4(net):
    net.given(*CENTRAL_TRIO, homed("ann", "x1"), personal("x1", "ann", ("Bob", "2")))

    outcome = net.when(homed("ann", "p1"))

    assert outcome.outcome == "accepted"
    assert net.directory()["personal"] == {"ann": [{"name": "Bob", "number": "2"}]}


def test_moved_user_reports_only_from_the_new_host_d4(net):
    net.given(*CENTRAL_TRIO, homed("ann", "x1"), homed("ann", "p1"))

    old_host = net.when(personal("x1", "ann", ("Old", "1")))
    new_host = net.when(personal("p1", "ann", ("New", "2")))

    assert (old_host.outcome, old_host.code) == ("rejected", "not_host_system")
    assert new_host.outcome == "accepted"
    assert net.directory()["personal"] == {"ann": [{"name": "New", "number": "2"}]}


def test_user_removed_drops_the_user_and_their_directory_d4(net):
    net.given(
        *CENTRAL_TRIO, homed("ann", "x1"), homed("bob", "x1"), personal("x1", "ann", ("Bob", "2"))
    )

    outcome = net.when(ev("user_removed", user="ann"))

    assert outcome.outcome == "accepted"
    assert net.directory()["personal"] == {"bob": []}


def test_user_homed_after_removal_starts_empty_d4(net):
    net.given(
        *CENTRAL_TRIO,
        homed("ann", "x1"),
        personal("x1", "ann", ("Bob", "2")),
        ev("user_removed", user="ann"),
    )

    net.when(homed("ann", "x1"))

    assert net.directory()["personal"] == {"ann": []}


def test_removed_user_is_unknown_afterwards_d4(net):
    net.given(*CENTRAL_TRIO, homed("ann", "x1"), ev("user_removed", user="ann"))

    outcome = net.when(personal("x1", "ann", ("Bob", "2")))

    assert (outcome.outcome, outcome.code) == ("rejected", "unknown_user")


@pytest.mark.parametrize(
    "history",
    [[], [homed("ann", "x1"), ev("user_removed", user="ann")]],
    ids=["never-homed", "already-removed"],
)
def test_user_removed_of_unknown_user_is_rejected_unknown_user_d4(net, history):
    net.given(*CENTRAL_TRIO, *history)

    outcome = net.when(ev("user_removed", user="ann"))

    assert (outcome.outcome, outcome.code) == ("rejected", "unknown_user")


def test_personal_directory_of_user_whose_host_was_removed_is_kept_d4(net):
    net.given(*CENTRAL_TRIO, homed("ann", "x1"), personal("x1", "ann", ("Bob", "2")))

    net.when(ev("system_removed", system="x1"))

    assert net.directory()["personal"] == {"ann": [{"name": "Bob", "number": "2"}]}


def test_directory_document_shape_d4(net):
    net.given(
        *CENTRAL_TRIO,
        homed("zoe", "x1"),
        homed("ann", "p1"),
        directory_changed("x1", ("Xena", "301")),
    )

    net.when(personal("x1", "zoe", ("Ann", "101")))

    doc = net.directory()
    assert list(doc) == ["network", "position", "system", "personal"]
    assert list(doc["personal"]) == ["ann", "zoe"]
    assert doc == {
        "network": "acme",
        "position": 8,
        "system": [sys_entry("Xena", "301", "x1", "p1")],
        "personal": {"ann": [], "zoe": [{"name": "Ann", "number": "101"}]},
    }


# --- D5 (v1.1): at most 10,000 entries per directory_changed -------------------------


def test_directory_changed_with_10001_entries_is_rejected_too_many_entries_d5(net):
    net.given(*CENTRAL_TRIO, directory_changed("x1", ("Old", "1")))

    outcome = net.when(directory_changed("x1", *[(f"n{i:05}", str(i)) for i in range(10_001)]))

    assert (outcome.outcome, outcome.code) == ("rejected", "too_many_entries")
    assert "10,001" in (outcome.message or "")
    assert [e["name"] for e in net.directory()["system"]] == ["Old"]


def test_directory_changed_with_10000_entries_is_accepted_d5(net):
    net.given(*CENTRAL_TRIO)

    outcome = net.when(directory_changed("x1", *[(f"n{i:05}", str(i)) for i in range(10_000)]))

    assert outcome.outcome == "accepted"
    assert len(net.directory()["system"]) == 10_000


def test_unknown_system_is_checked_before_too_many_entries_d5(net):
    net.given(*CENTRAL_TRIO)

    outcome = net.when(directory_changed("nope", *[(f"n{i:05}", "1") for i in range(10_001)]))

    assert (outcome.outcome, outcome.code) == ("rejected", "unknown_system")
