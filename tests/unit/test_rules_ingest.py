"""SPEC §3 ingest rules I1–I8, written given-when-then over a real store."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from ctilink.adapters.ingest.lines import LineReport, ingest
from ctilink.domain.errors import UnknownNetwork
from ctilink.domain.mode import version_key
from ctilink.projections.log import entry
from tests.support import decode, ev, installed, same_but_position, system


def feed(service: Any, *lines: dict[str, Any] | str | bytes) -> list[LineReport]:
    """Ingest JSON lines as the CLI does (dicts are encoded, text is sent as is)."""
    raw = []
    for line in lines:
        if isinstance(line, dict):
            raw.append(msgspec.json.encode(line))
        elif isinstance(line, str):
            raw.append(line.encode())
        else:
            raw.append(line)
    reports: list[LineReport] = []
    ingest(service, io.BytesIO(b"\n".join(raw) + b"\n"), reports.append)
    return reports


def schema_error(event: dict[str, Any]) -> str:
    """The validation error that decoding `event` raises."""
    with pytest.raises(msgspec.ValidationError) as caught:
        decode(event)
    return str(caught.value)


# --- I1: validation ----------------------------------------------------------

SCHEMA_VIOLATIONS = [
    pytest.param(
        {"type": "bogus", "id": "a", "network": "acme"}, "type", "Invalid value", id="unknown-type"
    ),
    pytest.param({"id": "a", "network": "acme"}, "type", "missing", id="missing-type"),
    pytest.param(
        {"type": "portal_restarted", "id": "a", "network": "acme", "colour": "red"},
        "colour",
        "unknown field",
        id="unknown-field",
    ),
    pytest.param(
        {"type": "central_cti_link_set", "id": "a", "network": "acme"},
        "enabled",
        "missing",
        id="missing-field",
    ),
    pytest.param(
        {"type": "central_cti_link_set", "id": "a", "network": "acme", "enabled": "yes"},
        "enabled",
        "Expected `bool`",
        id="wrong-json-type",
    ),
    pytest.param(
        {"type": "portal_restarted", "id": "", "network": "acme"}, "id", "length", id="empty-id"
    ),
    pytest.param(
        {"type": "portal_restarted", "id": "x" * 129, "network": "acme"},
        "id",
        "length",
        id="id-longer-than-128",
    ),
    pytest.param(
        {"type": "portal_restarted", "id": 7, "network": "acme"},
        "id",
        "Expected `str`",
        id="id-int",
    ),
    pytest.param(
        {"type": "portal_restarted", "id": "a", "network": "ac.me"},
        "network",
        "regex",
        id="network-pattern",
    ),
    pytest.param(
        {"type": "portal_restarted", "id": "a", "network": "n" * 65},
        "network",
        "regex",
        id="network-too-long",
    ),
    pytest.param(
        {"type": "portal_restarted", "id": "a", "network": "acme", "at": "yesterday"},
        "at",
        "RFC3339",
        id="at-not-rfc3339",
    ),
    pytest.param(
        {"type": "portal_restarted", "id": "a", "network": "acme", "at": "2024-05-01T10:00:00"},
        "at",
        "timezone",
        id="at-without-offset",
    ),
    pytest.param(
        {"type": "portal_installed", "id": "a", "network": "acme", "platform": "macos"},
        "platform",
        "Invalid enum value",
        id="platform-enum",
    ),
    pytest.param(
        {
            "type": "provider_configured",
            "id": "a",
            "network": "acme",
            "kind": "voicemail",
            "system": "s1",
        },
        "kind",
        "Invalid enum value",
        id="provider-kind-enum",
    ),
    pytest.param(
        {
            "type": "system_added",
            "id": "a",
            "network": "acme",
            "system": "s1",
            "role": "boss",
            "platform": "linux",
            "address": "10.0.0.1",
        },
        "role",
        "Invalid enum value",
        id="role-enum",
    ),
    pytest.param(
        {
            "type": "system_added",
            "id": "a",
            "network": "acme",
            "system": "s 1",
            "role": "expansion",
            "platform": "linux",
            "address": "10.0.0.1",
        },
        "system",
        "regex",
        id="system-name-pattern",
    ),
    pytest.param(
        {
            "type": "link_changed",
            "id": "a",
            "network": "acme",
            "system": "s1",
            "component": "voicemail",
            "up": True,
        },
        "component",
        "Invalid enum value",
        id="component-enum",
    ),
    pytest.param(
        {
            "type": "directory_changed",
            "id": "a",
            "network": "acme",
            "system": "s1",
            "entries": [{"name": "Ann", "number": "201", "extra": 1}],
        },
        "extra",
        "unknown field",
        id="unknown-field-in-entry",
    ),
    pytest.param(
        {
            "type": "personal_directory_changed",
            "id": "a",
            "network": "acme",
            "system": "s1",
            "user": "ann",
            "entries": [{"name": "Bob", "number": "1", "ex_directory": True}],
        },
        "ex_directory",
        "unknown field",
        id="ex-directory-in-personal-entry",
    ),
    pytest.param(
        {"type": "user_removed", "id": "a", "network": "acme", "user": ""},
        "user",
        "length",
        id="empty-user",
    ),
    pytest.param(
        {"type": "portal_restarted", "id": "a", "network": "acme", "actor": ""},
        "actor",
        "length",
        id="empty-actor",
    ),
    pytest.param(
        {
            "type": "voicemail_discovered",
            "id": "a",
            "network": "acme",
            "system": "s1",
            "address": "a" * 257,
        },
        "address",
        "length",
        id="address-longer-than-256",
    ),
]


@pytest.mark.parametrize(("event", "field", "reason"), SCHEMA_VIOLATIONS)
def test_schema_violation_is_invalid_with_error_naming_field_and_reason_i1(event, field, reason):
    given = event

    error = schema_error(given)

    assert field in error
    assert reason in error


def test_malformed_json_is_rejected_invalid_and_nothing_is_appended_i1(net):
    net.given(installed())

    reports = feed(net.service, '{"type": "portal_restarted", "id": "x", "network": "acme"')

    assert [(r.outcome, r.code) for r in reports] == [("rejected", "invalid")]
    assert "JSON" in reports[0].message
    assert net.status()["position"] == 1


def test_unknown_field_line_is_rejected_invalid_naming_field_nothing_appended_i1(net):
    net.given(installed())

    reports = feed(net.service, ev("resilience_set", enabled=True, enabeld=True))

    assert [(r.outcome, r.code) for r in reports] == [("rejected", "invalid")]
    assert "enabeld" in reports[0].message
    assert net.status()["position"] == 1
    assert net.status()["components"] == []


def test_invalid_field_value_line_names_the_field_i1(net):
    net.given(installed())

    reports = feed(net.service, ev("resilience_set", enabled="on"))

    assert [(r.outcome, r.code) for r in reports] == [("rejected", "invalid")]
    assert "enabled" in reports[0].message
    assert "bool" in reports[0].message
    assert net.status()["position"] == 1


def test_unknown_type_line_is_rejected_invalid_naming_type_i1(net):
    net.given(installed())

    reports = feed(net.service, ev("portal_rebooted"))

    assert [(r.outcome, r.code) for r in reports] == [("rejected", "invalid")]
    assert "type" in reports[0].message
    assert net.status()["position"] == 1


def test_invalid_event_id_stays_free_i1_i3(net):
    net.given(installed())

    reports = feed(
        net.service,
        ev("resilience_set", id="r1", enabled=True, colour="red"),
        ev("resilience_set", id="r1", enabled=True),
    )

    assert [(r.outcome, r.code, r.position) for r in reports] == [
        ("rejected", "invalid", None),
        ("accepted", None, 2),
    ]


def test_invalid_line_between_valid_lines_takes_no_position_i1_i4(net):
    given = installed()

    reports = feed(net.service, given, "not json", system("s1", role="primary"))

    assert [(r.line, r.outcome, r.code, r.position) for r in reports] == [
        (1, "accepted", None, 1),
        (2, "rejected", "invalid", None),
        (3, "accepted", None, 2),
    ]


# --- I2: error codes and their order ------------------------------------------

SE = "linux_server_edition"
REJECTIONS = [
    pytest.param([], ev("portal_restarted"), "not_installed", id="not_installed"),
    pytest.param([installed()], installed(), "already_installed", id="already_installed"),
    pytest.param(
        [installed("windows")],
        ev("central_cti_link_set", enabled=True),
        "central_not_available",
        id="central_not_available",
    ),
    pytest.param(
        [installed(SE)],
        ev("auto_provisioning_set", enabled=True),
        "wrong_setting",
        id="wrong_setting",
    ),
    pytest.param(
        [installed(SE, upgraded_from="9.1"), ev("converted_to_central")],
        ev("converted_to_central"),
        "already_converted",
        id="already_converted",
    ),
    pytest.param(
        [installed()], ev("failover", system="ghost"), "unknown_system", id="unknown_system"
    ),
    pytest.param(
        [installed(), system("s1")], system("s1"), "duplicate_system", id="duplicate_system"
    ),
    pytest.param(
        [installed(), system("p1", role="primary")],
        system("p2", role="primary"),
        "role_taken",
        id="role_taken",
    ),
    pytest.param([installed()], ev("user_removed", user="ann"), "unknown_user", id="unknown_user"),
    pytest.param(
        [installed(), system("s1"), system("s2"), ev("user_homed", user="ann", system="s1")],
        ev("personal_directory_changed", system="s2", user="ann", entries=[]),
        "not_host_system",
        id="not_host_system",
    ),
    pytest.param(
        [installed(), system("s1"), ev("user_homed", user="ann", system="s1")],
        ev(
            "personal_directory_changed",
            system="s1",
            user="ann",
            entries=[{"name": f"n{i:03}", "number": str(i)} for i in range(251)],
        ),
        "too_many_entries",
        id="too_many_entries",
    ),
    pytest.param(
        [installed(), ev("resilience_set", id="same", enabled=True)],
        ev("resilience_set", id="same", enabled=False),
        "id_conflict",
        id="id_conflict",
    ),
]


@pytest.mark.parametrize(("history", "event", "code"), REJECTIONS)
def test_each_error_code_rejects_with_a_sentence_and_appends_nothing_i2(net, history, event, code):
    net.given(*history)
    before = net.status() if history else None

    outcome = net.when(event)

    assert (outcome.outcome, outcome.code, outcome.position) == ("rejected", code, None)
    assert isinstance(outcome.message, str)
    assert len(outcome.message) > 10
    if history:
        assert net.status() == before
    else:
        with pytest.raises(UnknownNetwork):
            net.status()


def test_invalid_wins_over_id_conflict_i2(net):
    net.given(installed(), ev("resilience_set", id="r1", enabled=True))

    reports = feed(net.service, ev("resilience_set", id="r1", enabled=False, colour="red"))

    assert [(r.outcome, r.code) for r in reports] == [("rejected", "invalid")]
    assert net.status()["position"] == 2


def test_invalid_wins_over_not_installed_i2(net):
    given = ev("portal_restarted", network="nowhere", colour="red")

    reports = feed(net.service, given)

    assert [(r.outcome, r.code) for r in reports] == [("rejected", "invalid")]


def test_id_conflict_wins_over_already_installed_i2(net):
    net.given(installed(id="inst"))

    outcome = net.when(installed("windows", id="inst"))

    assert (outcome.outcome, outcome.code) == ("rejected", "id_conflict")


def test_id_conflict_wins_over_unknown_system_i2(net):
    net.given(installed(), system("s1", id="add"))

    outcome = net.when(ev("failover", id="add", system="ghost"))

    assert (outcome.outcome, outcome.code) == ("rejected", "id_conflict")


def test_id_conflict_wins_over_the_rules_own_check_i2(net):
    net.given(installed(SE), ev("central_cti_link_set", id="c", enabled=False))

    outcome = net.when(ev("auto_provisioning_set", id="c", enabled=True))

    assert (outcome.outcome, outcome.code) == ("rejected", "id_conflict")


def test_not_installed_wins_over_unknown_system_i2(net):
    given = ev("failover", network="nowhere", system="ghost")

    outcome = net.when(given)

    assert (outcome.outcome, outcome.code) == ("rejected", "not_installed")


def test_not_installed_wins_over_unknown_user_i2(net):
    given = ev("user_removed", network="nowhere", user="ann")

    outcome = net.when(given)

    assert (outcome.outcome, outcome.code) == ("rejected", "not_installed")


def test_unknown_system_wins_over_unknown_user_i2(net):
    net.given(installed())

    outcome = net.when(ev("personal_directory_changed", system="ghost", user="nobody", entries=[]))

    assert (outcome.outcome, outcome.code) == ("rejected", "unknown_system")


def test_unknown_system_wins_over_too_many_entries_i2(net):
    net.given(installed(), system("s1"), ev("user_homed", user="ann", system="s1"))

    outcome = net.when(
        ev(
            "personal_directory_changed",
            system="ghost",
            user="ann",
            entries=[{"name": f"n{i}", "number": str(i)} for i in range(300)],
        )
    )

    assert (outcome.outcome, outcome.code) == ("rejected", "unknown_system")


# --- I3: idempotency -----------------------------------------------------------


def test_same_id_same_content_is_duplicate_and_appends_nothing_i3(net):
    net.given(installed(), system("s1", id="add-s1", address="10.0.0.1"))
    before = net.status()

    outcome = net.when(system("s1", id="add-s1", address="10.0.0.1"))

    assert outcome.outcome == "duplicate"
    assert outcome.code is None
    assert net.status() == before


def test_duplicate_reports_the_original_position_i3(net):
    net.given(installed(), ev("resilience_set", id="r", enabled=True), system("s1"))

    outcome = net.when(ev("resilience_set", id="r", enabled=True))

    assert (outcome.outcome, outcome.position) == ("duplicate", 2)


def test_duplicate_portal_installed_is_duplicate_not_already_installed_i3(net):
    net.given(installed(id="inst"))

    outcome = net.when(installed(id="inst"))

    assert (outcome.outcome, outcome.position) == ("duplicate", 1)


def test_duplicate_system_added_is_duplicate_not_duplicate_system_i3(net):
    net.given(installed(), system("s1", id="add", address="10.0.0.1"))

    outcome = net.when(system("s1", id="add", address="10.0.0.1"))

    assert (outcome.outcome, outcome.position) == ("duplicate", 2)


def test_same_id_different_content_is_rejected_id_conflict_i3(net):
    net.given(installed(), system("s1", id="add", address="10.0.0.1"))
    before = net.status()

    outcome = net.when(system("s1", id="add", address="10.0.0.2"))

    assert (outcome.outcome, outcome.code) == ("rejected", "id_conflict")
    assert net.status() == before


def test_same_id_different_type_is_id_conflict_i3(net):
    net.given(installed(), ev("portal_restarted", id="x"))

    outcome = net.when(ev("resilience_set", id="x", enabled=True))

    assert (outcome.outcome, outcome.code) == ("rejected", "id_conflict")


def test_at_with_different_offsets_for_same_instant_is_duplicate_i3(net):
    net.given(installed(), ev("portal_restarted", id="r", at="2024-05-01T12:00:00+02:00"))

    outcome = net.when(ev("portal_restarted", id="r", at="2024-05-01T10:00:00Z"))

    assert (outcome.outcome, outcome.position) == ("duplicate", 2)


def test_at_with_negative_offset_for_same_instant_is_duplicate_i3(net):
    net.given(installed(), ev("portal_restarted", id="r", at="2024-05-01T10:00:00Z"))

    outcome = net.when(ev("portal_restarted", id="r", at="2024-05-01T05:30:00-04:30"))

    assert outcome.outcome == "duplicate"


def test_at_with_z_and_plus_zero_offset_is_duplicate_i3(net):
    net.given(installed(), ev("portal_restarted", id="r", at="2024-05-01T10:00:00+00:00"))

    outcome = net.when(ev("portal_restarted", id="r", at="2024-05-01T10:00:00Z"))

    assert outcome.outcome == "duplicate"


def test_at_with_zero_fraction_is_the_same_instant_duplicate_i3(net):
    net.given(installed(), ev("portal_restarted", id="r", at="2024-05-01T10:00:00.000Z"))

    outcome = net.when(ev("portal_restarted", id="r", at="2024-05-01T12:00:00+02:00"))

    assert outcome.outcome == "duplicate"


def test_at_for_a_different_instant_is_id_conflict_i3(net):
    net.given(installed(), ev("portal_restarted", id="r", at="2024-05-01T12:00:00+02:00"))

    outcome = net.when(ev("portal_restarted", id="r", at="2024-05-01T12:00:00Z"))

    assert (outcome.outcome, outcome.code) == ("rejected", "id_conflict")


def test_at_present_versus_absent_is_id_conflict_i3(net):
    net.given(installed(), ev("portal_restarted", id="r"))

    outcome = net.when(ev("portal_restarted", id="r", at="2024-05-01T12:00:00Z"))

    assert (outcome.outcome, outcome.code) == ("rejected", "id_conflict")


def test_actor_absent_and_actor_system_are_the_same_content_i3(net):
    net.given(installed(), ev("resilience_set", id="r", enabled=True))

    outcome = net.when(ev("resilience_set", id="r", enabled=True, actor="system"))

    assert (outcome.outcome, outcome.position) == ("duplicate", 2)


def test_actor_system_then_absent_is_duplicate_i3(net):
    net.given(installed(), ev("resilience_set", id="r", enabled=True, actor="system"))

    outcome = net.when(ev("resilience_set", id="r", enabled=True))

    assert outcome.outcome == "duplicate"


def test_different_actor_is_id_conflict_i3(net):
    net.given(installed(), ev("resilience_set", id="r", enabled=True))

    outcome = net.when(ev("resilience_set", id="r", enabled=True, actor="alice"))

    assert (outcome.outcome, outcome.code) == ("rejected", "id_conflict")


def test_defaulted_field_absent_versus_default_value_is_duplicate_i3(net):
    net.given(installed(SE, id="inst"))

    outcome = net.when(installed(SE, id="inst", auto_provisioning=True))

    assert outcome.outcome == "duplicate"


def test_ex_directory_absent_versus_false_is_duplicate_i3(net):
    net.given(
        installed(),
        system("s1"),
        ev("directory_changed", id="d", system="s1", entries=[{"name": "A", "number": "1"}]),
    )

    outcome = net.when(
        ev(
            "directory_changed",
            id="d",
            system="s1",
            entries=[{"name": "A", "number": "1", "ex_directory": False}],
        )
    )

    assert outcome.outcome == "duplicate"


def test_field_order_in_json_does_not_change_content_i3(net):
    net.given(installed(), ev("resilience_set", id="r", enabled=True))

    reports = feed(
        net.service, '{"enabled": true, "network": "acme", "id": "r", "type": "resilience_set"}'
    )

    assert [(r.outcome, r.position) for r in reports] == [("duplicate", 2)]


def test_rejected_event_id_stays_free_i3(net):
    net.given(installed())
    rejected = net.when(ev("failover", id="x", system="ghost"))

    outcome = net.when(ev("resilience_set", id="x", enabled=True))

    assert rejected.code == "unknown_system"
    assert (outcome.outcome, outcome.position) == ("accepted", 2)


def test_not_installed_event_id_stays_free_i3(net):
    rejected = net.when(ev("portal_restarted", id="first"))

    outcome = net.when(installed(id="first"))

    assert rejected.code == "not_installed"
    assert (outcome.outcome, outcome.position) == ("accepted", 1)


def test_id_conflict_leaves_the_original_event_in_place_i3(net):
    net.given(installed(), ev("resilience_set", id="r", enabled=True))
    net.when(ev("resilience_set", id="r", enabled=False))

    outcome = net.when(ev("resilience_set", id="r", enabled=True))

    assert (outcome.outcome, outcome.position) == ("duplicate", 2)


def test_ids_are_unique_per_network_only_i3(net):
    net.given(installed(network="east", id="inst"), installed(network="west", id="other"))

    outcome = net.when(ev("portal_restarted", network="west", id="inst"))

    assert (outcome.outcome, outcome.position) == ("accepted", 2)


def test_duplicate_within_one_batch_i3(net):
    first = installed(id="inst")

    outcomes = net.service.ingest([decode(first), decode(first)])

    assert [(o.outcome, o.position) for o in outcomes] == [("accepted", 1), ("duplicate", 1)]


def test_reordered_list_field_is_different_content_id_conflict_i3(net):
    net.given(
        installed(),
        system("s1"),
        ev(
            "directory_changed",
            id="d",
            system="s1",
            entries=[{"name": "A", "number": "1"}, {"name": "B", "number": "2"}],
        ),
    )

    outcome = net.when(
        ev(
            "directory_changed",
            id="d",
            system="s1",
            entries=[{"name": "B", "number": "2"}, {"name": "A", "number": "1"}],
        )
    )

    assert (outcome.outcome, outcome.code) == ("rejected", "id_conflict")


def test_rejected_id_is_free_again_within_the_same_batch_i3(net):
    net.given(installed())

    outcomes = net.service.ingest(
        [
            decode(ev("failover", id="x", system="ghost")),
            decode(ev("resilience_set", id="x", enabled=True)),
        ]
    )

    assert [(o.outcome, o.code, o.position) for o in outcomes] == [
        ("rejected", "unknown_system", None),
        ("accepted", None, 2),
    ]


def test_same_id_different_content_within_one_batch_is_id_conflict_i3(net):
    net.given(installed())

    outcomes = net.service.ingest(
        [
            decode(ev("resilience_set", id="x", enabled=True)),
            decode(ev("resilience_set", id="x", enabled=False)),
        ]
    )

    assert [(o.outcome, o.code) for o in outcomes] == [
        ("accepted", None),
        ("rejected", "id_conflict"),
    ]
    assert net.status()["position"] == 2


# --- I4: positions -------------------------------------------------------------


def test_positions_are_contiguous_including_events_that_change_nothing_i4(net):
    net.given(installed(SE), system("p1", role="primary"))

    outcomes = [
        net.when(ev("central_cti_link_set", enabled=True)),  # M6: no change
        net.when(ev("provider_removed", kind="csta", system="p1")),  # P6: no change
        net.when(ev("failback", system="p1")),  # C4: no change
        net.when(ev("portal_restarted")),  # nothing pending
        net.when(ev("resilience_set", enabled=False)),  # already off
    ]

    assert [(o.outcome, o.position) for o in outcomes] == [
        ("accepted", 3),
        ("accepted", 4),
        ("accepted", 5),
        ("accepted", 6),
        ("accepted", 7),
    ]
    assert net.status()["position"] == 7
    assert same_but_position(net.status(at=2), net.status())


def test_rejected_and_duplicate_events_take_no_position_i4(net):
    net.given(installed(), ev("resilience_set", id="r", enabled=True))
    net.when(ev("failover", system="ghost"))
    net.when(ev("resilience_set", id="r", enabled=True))

    outcome = net.when(ev("portal_restarted"))

    assert (outcome.outcome, outcome.position) == ("accepted", 3)


def test_each_network_has_its_own_positions_i4(net):
    net.given(installed(network="east"), system("s1", network="east"))

    outcome = net.when(installed(network="west"))

    assert (outcome.outcome, outcome.position) == ("accepted", 1)
    assert net.status("east")["position"] == 2
    assert net.status("west")["position"] == 1


def test_at_is_recorded_but_never_reorders_i4(net):
    net.given(installed(), system("s1"))
    net.when(ev("voicemail_discovered", address="10.0.0.8", system="s1", at="2024-06-02T00:00:00Z"))

    outcome = net.when(
        ev("voicemail_discovered", address="10.0.0.9", system="s1", at="2024-06-01T00:00:00Z")
    )

    assert outcome.position == 4
    assert net.status()["providers"] == [
        {"kind": "voicemail", "target": "10.0.0.9", "origin": "auto"}
    ]
    log = [entry(e) for e in net.service.log("acme")]
    assert [(e.position, e.type) for e in log] == [
        (1, "portal_installed"),
        (2, "system_added"),
        (3, "voicemail_discovered"),
        (4, "voicemail_discovered"),
    ]
    assert log[2].at == datetime(2024, 6, 2, tzinfo=UTC)
    assert log[3].at == datetime(2024, 6, 1, tzinfo=UTC)


def test_status_as_of_earlier_position_is_exactly_what_it_was_then_i4(net):
    net.given(installed(), system("p1", role="primary"))
    then = net.status()
    net.given(ev("link_changed", system="p1", component="csta", up=True), system("x1"))

    earlier = net.status(at=2)

    assert earlier == then
    assert earlier["position"] == 2
    assert net.status()["position"] == 4


def test_status_as_of_any_position_across_snapshots_is_exactly_what_it_was_i4(net):
    net.given(installed("windows"), system("s1"))
    seen = {2: net.status()}
    for i in range(3, 131):
        net.given(ev("link_changed", system="s1", component="csta", up=i % 2 == 0))
        seen[i] = net.status()

    earlier = {i: net.status(at=i) for i in (2, 49, 50, 51, 99, 100, 101, 130)}

    assert earlier == {i: seen[i] for i in earlier}
    assert net.status(at=1)["components"] == []


# --- I5: installation ----------------------------------------------------------

NON_INSTALL_EVENTS = [
    ev("portal_restarted"),
    ev("central_cti_link_set", enabled=True),
    ev("auto_provisioning_set", enabled=True),
    ev("converted_to_central"),
    ev("provider_configured", kind="csta", system="s1"),
    ev("provider_removed", kind="dsml", system="s1"),
    system("s1", role="primary"),
    ev("system_removed", system="s1"),
    ev("resilience_set", enabled=True),
    ev("failover", system="s1"),
    ev("failback", system="s1"),
    ev("link_changed", system="s1", component="csta", up=True),
    ev("voicemail_discovered", address="10.0.0.9", system="s1"),
    ev("user_homed", user="ann", system="s1"),
    ev("user_removed", user="ann"),
    ev("directory_changed", system="s1", entries=[]),
    ev("personal_directory_changed", system="s1", user="ann", entries=[]),
]


@pytest.mark.parametrize("event", NON_INSTALL_EVENTS, ids=lambda e: e["type"])
def test_every_event_but_portal_installed_needs_an_installed_network_i5(net, event):
    given = event

    outcome = net.when(given)

    assert (outcome.outcome, outcome.code) == ("rejected", "not_installed")
    with pytest.raises(UnknownNetwork):
        net.status()


def test_portal_installed_is_accepted_once_i5(net):
    net.given(installed("windows"))

    outcome = net.when(installed(SE))

    assert (outcome.outcome, outcome.code) == ("rejected", "already_installed")
    assert net.status()["mode"]["configured"] == "manual"
    assert net.status()["mode"]["central_available"] is False
    assert net.status()["position"] == 1


def test_installing_one_network_does_not_install_another_i5(net):
    net.given(installed(network="east"))

    outcome = net.when(ev("portal_restarted", network="west"))

    assert (outcome.outcome, outcome.code) == ("rejected", "not_installed")


# --- I6: systems ---------------------------------------------------------------

NAMING_A_SYSTEM = [
    ev("provider_configured", kind="csta", system="ghost"),
    ev("system_removed", system="ghost"),
    ev("failover", system="ghost"),
    ev("failback", system="ghost"),
    ev("link_changed", system="ghost", component="dsml", up=True),
    ev("voicemail_discovered", address="10.0.0.9", system="ghost"),
    ev("user_homed", user="ann", system="ghost"),
    ev("directory_changed", system="ghost", entries=[{"name": "A", "number": "1"}]),
    ev("personal_directory_changed", system="ghost", user="ann", entries=[]),
]


@pytest.mark.parametrize("event", NAMING_A_SYSTEM, ids=lambda e: e["type"])
def test_event_naming_a_system_not_in_the_network_is_rejected_unknown_system_i6(net, event):
    net.given(installed(), system("s1"), ev("user_homed", user="ann", system="s1"))

    outcome = net.when(event)

    assert (outcome.outcome, outcome.code) == ("rejected", "unknown_system")
    assert "ghost" in outcome.message
    assert net.status()["position"] == 3


def test_provider_removed_for_unknown_system_is_accepted_i6(net):
    net.given(installed("windows"))

    outcome = net.when(ev("provider_removed", kind="csta", system="ghost"))

    assert (outcome.outcome, outcome.position) == ("accepted", 2)


def test_system_added_for_a_new_name_is_accepted_i6(net):
    net.given(installed())

    outcome = net.when(system("s1"))

    assert (outcome.outcome, outcome.position) == ("accepted", 2)


def test_adding_a_name_twice_is_rejected_duplicate_system_i6(net):
    net.given(installed(), system("s1", role="expansion"))

    outcome = net.when(system("s1", role="secondary", platform="ip500v2"))

    assert (outcome.outcome, outcome.code) == ("rejected", "duplicate_system")
    assert [r["role"] for r in net.status()["components"]] == ["expansion", "expansion"]


def test_second_primary_is_rejected_role_taken_i6(net):
    net.given(installed(), system("p1", role="primary"))

    outcome = net.when(system("p2", role="primary"))

    assert (outcome.outcome, outcome.code) == ("rejected", "role_taken")
    assert "p1" in outcome.message


def test_second_secondary_is_rejected_role_taken_i6(net):
    net.given(installed(), system("b1", role="secondary"))

    outcome = net.when(system("b2", role="secondary"))

    assert (outcome.outcome, outcome.code) == ("rejected", "role_taken")


def test_many_expansions_are_allowed_i6(net):
    net.given(
        installed(),
        system("p1", role="primary"),
        system("b1", role="secondary"),
        system("x1"),
        system("x2"),
    )

    outcome = net.when(system("x3"))

    assert (outcome.outcome, outcome.position) == ("accepted", 6)


def test_duplicate_system_is_checked_before_role_taken_i6(net):
    net.given(installed(), system("p1", role="primary"))

    outcome = net.when(system("p1", role="primary"))

    assert (outcome.outcome, outcome.code) == ("rejected", "duplicate_system")


def test_removed_primary_frees_the_role_i6(net):
    net.given(installed(), system("p1", role="primary"), ev("system_removed", system="p1"))

    outcome = net.when(system("p2", role="primary"))

    assert outcome.outcome == "accepted"


def test_removed_system_is_unknown_afterwards_i6(net):
    net.given(installed(), system("s1"), ev("system_removed", system="s1"))

    outcome = net.when(ev("failover", system="s1"))

    assert (outcome.outcome, outcome.code) == ("rejected", "unknown_system")


# --- I7: removing a system -----------------------------------------------------


def test_removing_a_system_forgets_its_links_i7(net):
    net.given(
        installed(SE),
        system("p1", role="primary", address="10.0.0.1"),
        ev("link_changed", system="p1", component="csta", up=True),
        ev("link_changed", system="p1", component="dsml", up=True),
        ev("system_removed", system="p1"),
    )

    net.when(system("p1", role="primary", address="10.0.0.1"))

    assert net.status()["components"] == [
        {
            "system": "p1",
            "role": "primary",
            "component": "csta",
            "state": "unavailable",
            "via": "p1",
        },
        {
            "system": "p1",
            "role": "primary",
            "component": "dsml",
            "state": "unavailable",
            "via": "p1",
        },
    ]


def test_removing_a_system_forgets_its_failover_i7(net):
    net.given(
        installed(SE),
        system("p1", role="primary", address="10.0.0.1"),
        ev("failover", system="p1"),
        ev("system_removed", system="p1"),
    )

    net.when(system("p1", role="primary", address="10.0.0.1"))

    assert [r["via"] for r in net.status()["components"]] == ["p1", "p1"]


def test_removing_a_system_forgets_its_directory_entries_i7(net):
    net.given(
        installed(SE),
        system("p1", role="primary"),
        system("x1", address="10.0.0.5"),
        ev("directory_changed", system="x1", entries=[{"name": "Ann", "number": "201"}]),
        ev("system_removed", system="x1"),
    )

    net.when(system("x1", address="10.0.0.5"))

    assert net.directory()["system"] == []


def test_removing_a_system_keeps_its_manual_provider_records_i7(net):
    net.given(
        installed("windows"),
        system("s1", address="10.0.0.1"),
        ev("provider_configured", kind="csta", system="s1"),
        ev("system_removed", system="s1"),
    )

    net.when(system("s1", address="10.0.0.1"))

    assert net.status()["providers"] == [{"kind": "csta", "target": "s1", "origin": "manual"}]


def test_removing_a_system_keeps_users_homed_on_it_and_their_directory_i7(net):
    net.given(
        installed(),
        system("s1"),
        system("s2"),
        ev("user_homed", user="ann", system="s1"),
        ev(
            "personal_directory_changed",
            system="s1",
            user="ann",
            entries=[{"name": "Bob", "number": "300"}],
        ),
    )

    net.when(ev("system_removed", system="s1"))

    assert net.directory()["personal"] == {"ann": [{"name": "Bob", "number": "300"}]}
    assert net.when(ev("user_homed", user="ann", system="s2")).outcome == "accepted"
    assert net.directory()["personal"] == {"ann": [{"name": "Bob", "number": "300"}]}


def test_removing_a_system_leaves_other_systems_links_and_failover_i7(net):
    net.given(
        installed("windows"),
        system("s1"),
        system("s2"),
        ev("provider_configured", kind="csta", system="s1"),
        ev("provider_configured", kind="csta", system="s2"),
        ev("link_changed", system="s1", component="csta", up=True),
        ev("link_changed", system="s2", component="csta", up=True),
        ev("failover", system="s2"),
    )

    net.when(ev("system_removed", system="s1"))

    csta = [r for r in net.status()["components"] if r["component"] == "csta"]
    assert csta == [
        {
            "system": "s2",
            "role": "expansion",
            "component": "csta",
            "state": "unavailable",
            "via": None,
        },
    ]


# --- I8: versions --------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "mode"),
    [
        ("1.0", "legacy_auto"),
        ("9.1", "legacy_auto"),
        ("9.9", "legacy_auto"),
        ("9.10", "legacy_auto"),
        ("9.1.0.1", "legacy_auto"),
        ("9.99.99.99", "legacy_auto"),
        ("10", "manual"),
        ("10.0", "manual"),
        ("10.0.0.0", "manual"),
        ("10.1", "manual"),
        ("11.1.2", "manual"),
        ("11.1.2.4", "manual"),
        ("100.0", "manual"),
    ],
)
def test_upgraded_from_compares_numerically_with_10_0_i8(net, version, mode):
    given = installed(SE, upgraded_from=version)

    net.given(given)

    assert net.status()["mode"]["configured"] == mode


def test_versions_order_numerically_not_as_text_i8():
    versions = ["11.1.2", "9.10", "10.0", "9.9", "9.1", "10.0.0.1", "1.2.3.4"]

    ordered = sorted(versions, key=version_key)

    assert ordered == ["1.2.3.4", "9.1", "9.9", "9.10", "10.0", "10.0.0.1", "11.1.2"]
    assert version_key("9.10") > version_key("9.9")
    assert version_key("9.1") < version_key("10.0") < version_key("11.1.2")


@pytest.mark.parametrize(
    "version",
    [
        "",
        "1.2.3.4.5",
        "10.",
        ".10",
        "10..0",
        "v10",
        "10.x",
        "10 .0",
        "10.0-beta",
        "-1",
        "1e3",
        " 10.0",
    ],
)
def test_bad_upgraded_from_is_rejected_invalid_i8(net, version):
    given = installed(SE, upgraded_from=version)

    reports = feed(net.service, given)

    assert [(r.outcome, r.code) for r in reports] == [("rejected", "invalid")]
    assert "upgraded_from" in reports[0].message
    assert "upgraded_from" in schema_error(given)


def test_numeric_upgraded_from_is_rejected_invalid_i8(net):
    given = installed(SE, upgraded_from=10.0)

    reports = feed(net.service, given)

    assert [(r.outcome, r.code) for r in reports] == [("rejected", "invalid")]
    assert "upgraded_from" in reports[0].message
