"""I1 at the one decode path: whatever the bytes, an event or the reason it is invalid.

Every entry point (a file's line, a NATS message, an API request) decodes with
`ctilink.domain.decoding.decode`, so these hold for all of them.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ctilink.domain import messages as m
from ctilink.domain.decoding import MAX_EVENT_BYTES, Invalid, decode

VALID = {"type": "portal_restarted", "id": "r1", "network": "acme"}


def raw(**fields: Any) -> bytes:
    """A portal_restarted event with some fields changed, as JSON bytes."""
    return json.dumps({**VALID, **fields}).encode()


def invalid(data: bytes | str) -> Invalid:
    """The decode of bytes that must be invalid."""
    found = decode(data)
    assert isinstance(found, Invalid), found
    return found


# --- the classes of input that once stalled a partition or crashed ingest --------------


def test_invalid_utf8_inside_a_string_is_invalid_not_an_exception_i1():
    found = invalid(b'{"type":"portal_restarted","id":"\xff","network":"pa"}')

    assert found.message == "not UTF-8: byte 0xff at offset 33"


@pytest.mark.parametrize(
    "at", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"], ids=["after", "before"]
)
def test_an_at_outside_years_1_to_9999_in_utc_is_invalid_i1(at):
    found = invalid(raw(at=at))

    assert found.message.startswith("field `at`:") and "between years 1 and 9999" in found.message
    assert found.id == "r1"


def test_json_nested_thousands_deep_is_invalid_and_names_no_id_i1():
    found = invalid(b'{"id":' + b"[" * 5000 + b"]" * 5000 + b"}")

    assert found.id is None


@pytest.mark.parametrize(
    "data, field",
    [
        (b'{"type":"portal_restarted","id":"a","id":"b","network":"n"}', "id"),
        (b'{"type":"portal_restarted","type":"failover","id":"a","network":"n"}', "type"),
        (
            b'{"type":"directory_changed","id":"a","network":"n","system":"s",'
            b'"entries":[{"name":"x","name":"y","number":"1"}]}',
            "name",
        ),
        (b'{"type":"portal_restarted","id":"a","id":"b\\u0022","network":"n"}', "id"),
        (b'{"type":"portal_restarted","i\\u0064":"a","id":"b","network":"n"}', "id"),
    ],
    ids=["top", "type", "nested", "escaped-value", "escaped-key"],
)
def test_a_key_given_twice_in_one_object_is_invalid_naming_it_i1(data, field):
    assert invalid(data).message == f"field `{field}`: given twice in one object"


@pytest.mark.parametrize(
    "field, value",
    [("at", None), ("actor", None), ("upgraded_from", None)],
)
def test_null_is_invalid_for_every_field_one_rule_for_nulls_i1(field, value):
    event = {**VALID, "type": "portal_installed", "platform": "windows", field: value}

    found = invalid(json.dumps(event).encode())

    assert found.message.startswith(f"field `{field}`")


@pytest.mark.parametrize(
    "at",
    [
        "2024-03-04T08:01:00.1234567Z",
        "2024-03-04 08:01:00.1234567Z",
        "2024-03-04T08:01:00.123456\\u00375Z",
    ],
    ids=["T", "space", "escaped"],
)
def test_an_at_finer_than_a_microsecond_is_invalid_so_two_ats_never_merge_i1_i3(at):
    data = b'{"type":"portal_restarted","id":"a","network":"n","at":"' + at.encode() + b'"}'

    assert "more precise than a microsecond" in invalid(data).message


def test_an_at_to_the_microsecond_is_kept_exactly_i3():
    found = decode(raw(at="2024-03-04T08:01:00.123456+02:00"))

    assert isinstance(found, m.PortalRestarted) and found.at is not None
    assert found.at.microsecond == 123456


def test_a_leading_byte_order_mark_is_named_i1():
    assert "byte order mark" in invalid(b"\xef\xbb\xbf" + raw()).message


def test_anything_after_the_one_object_is_invalid_i1():
    assert "trailing characters" in invalid(raw() + b" {}").message


@pytest.mark.parametrize(
    "field, value",
    [("network", "ab\n"), ("network", "a.b"), ("network", "*"), ("network", ">")],
)
def test_a_name_that_is_no_single_subject_token_is_invalid_s1(field, value):
    assert invalid(raw(**{field: value})).message.startswith(f"field `{field}`")


def test_a_version_of_thousands_of_digits_is_invalid_not_a_crash_i8():
    event = {**VALID, "type": "portal_installed", "platform": "ucm", "upgraded_from": "9" * 5000}

    assert invalid(json.dumps(event).encode()).message.startswith("field `upgraded_from`")


def test_an_event_over_the_limit_is_invalid_without_being_parsed_i1():
    big = raw(actor="a" * MAX_EVENT_BYTES)

    assert invalid(big).message == f"event is longer than {MAX_EVENT_BYTES} bytes"


def test_an_event_of_exactly_the_limit_plus_its_line_break_is_decoded_i1():
    exactly = raw() + b" " * (MAX_EVENT_BYTES - len(raw()))  # JSON may end in blanks

    assert len(exactly) == MAX_EVENT_BYTES
    assert isinstance(decode(exactly + b"\r\n"), m.PortalRestarted)
    assert isinstance(decode(exactly + b"  "), Invalid)


# --- fuzzing: no input raises, every outcome is an event or names a reason ------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text()
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome_is_sound(found: m.Message | Invalid) -> None:
    """An event that re-encodes and decodes to itself, or an invalid with a reason."""
    if isinstance(found, Invalid):
        assert found.message and isinstance(found.message, str)
        assert found.id is None or isinstance(found.id, str)
    else:
        assert decode(m.encode(found)) == found


@FUZZ
@given(st.binary(max_size=300))
@example(b"\xff")
@example(b"\xed\xa0\x80")  # a UTF-8 encoded surrogate
@example(b'"\\ud800"')
def test_any_bytes_decode_to_an_event_or_a_reason_never_an_exception_i1(data):
    outcome_is_sound(decode(data))


@FUZZ
@given(JSON_VALUES)
def test_any_json_value_decodes_to_an_event_or_a_reason_i1(value):
    outcome_is_sound(decode(json.dumps(value).encode()))


VALID_EVENTS = [
    {
        **VALID,
        "type": "portal_installed",
        "platform": "linux_server_edition",
        "upgraded_from": "9.1",
    },
    {
        **VALID,
        "type": "system_added",
        "system": "p",
        "role": "primary",
        "platform": "linux",
        "address": "10.0.0.1",
        "at": "2024-01-01T00:00:00+05:30",
        "actor": "admin",
    },
    {
        **VALID,
        "type": "directory_changed",
        "system": "p",
        "entries": [{"name": "A", "number": "1", "ex_directory": True}],
    },
    {**VALID, "type": "link_changed", "system": "p", "component": "csta", "up": True},
]


@FUZZ
@given(
    st.sampled_from(VALID_EVENTS),
    st.sampled_from(["type", "id", "network", "at", "actor", "system", "entries", "x"]),
    JSON_VALUES,
)
def test_a_valid_event_with_one_field_mutated_decodes_to_an_event_or_a_reason_i1(
    event, field, value
):
    outcome_is_sound(decode(json.dumps({**event, field: value}).encode()))


@FUZZ
@given(
    st.sampled_from(VALID_EVENTS), st.integers(min_value=0, max_value=400), st.binary(max_size=4)
)
def test_a_valid_event_with_bytes_spliced_in_decodes_to_an_event_or_a_reason_i1(event, at, junk):
    data = json.dumps(event).encode()
    at = at % (len(data) + 1)
    outcome_is_sound(decode(data[:at] + junk + data[at:]))


@FUZZ
@given(st.datetimes(timezones=st.timezones()), st.sampled_from(["T", "t", " "]))
def test_any_datetime_with_any_offset_is_an_event_or_a_reason_i1(moment, separator):
    text = moment.isoformat(sep=separator)

    outcome_is_sound(decode(raw(at=text)))


def test_decoding_accepts_text_and_refuses_other_types_in_words():
    assert isinstance(decode(raw().decode()), m.PortalRestarted)
    assert invalid(None).message == "not bytes but NoneType"  # type: ignore[arg-type]
    assert isinstance(msgspec.json.decode(raw()), dict)


# --- v1.1: U+0000 anywhere, and directory entry bounds ---------------------------------


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b'{"type":"portal_restarted","id":"a\\u0000b","network":"pgn"}', "id"),
        (b'{"type":"portal_restarted\\u0000","id":"a","network":"pgn"}', "type"),
        (b'{"type":"portal_restarted","id":"a","network":"p\\u0000"}', "network"),
        (b'{"type":"portal_restarted","id":"a","network":"pgn","x\\u0000y":1}', "x\\u0000y"),
        (
            b'{"type":"directory_changed","id":"a","network":"n","system":"s",'
            b'"entries":[{"name":"ok","number":"1"},{"name":"b\\u0000","number":"2"}]}',
            "entries[1].name",
        ),
    ],
    ids=["id", "type", "network", "unknown-key", "entry-name"],
)
def test_a_string_holding_u0000_is_invalid_and_named_without_it_i1(data, field):
    found = invalid(data)

    assert found.message == f"field `{field}`: holds U+0000 (NUL), which no string may hold"
    assert "\x00" not in found.message and (found.id is None or "\x00" not in found.id)


def test_an_escaped_backslash_before_u0000_is_no_nul_i1():
    found = decode(b'{"type":"portal_restarted","id":"a\\\\u0000b","network":"pgn"}')

    assert isinstance(found, m.PortalRestarted) and found.id == "a\\u0000b"


@pytest.mark.parametrize("text", [s for s in ("", "x" * 257)], ids=["empty", "257"])
@pytest.mark.parametrize("part", ["name", "number"])
@pytest.mark.parametrize("kind", ["directory_changed", "personal_directory_changed"])
def test_a_directory_entry_empty_or_longer_than_256_is_invalid_i1(kind, part, text):
    entry = {"name": "Ann", "number": "1", part: text}
    event = {**VALID, "type": kind, "system": "s1", "entries": [entry]}
    if kind == "personal_directory_changed":
        event["user"] = "ann"

    found = invalid(json.dumps(event).encode())

    assert found.message.startswith(f"field `entries[0].{part}`: Expected `str` of length")


def test_a_directory_entry_of_256_characters_is_valid_i1():
    entry = {"name": "n" * 256, "number": "9" * 256}
    event = {**VALID, "type": "directory_changed", "system": "s1", "entries": [entry]}

    assert isinstance(decode(json.dumps(event).encode()), m.DirectoryChanged)


def test_a_reason_quoting_a_megabyte_is_cut_and_says_so_i1():
    found = invalid(json.dumps({**VALID, "type": "x" * 500_000}).encode())

    assert found.message.startswith("field `type`: Invalid value 'xxx")
    assert len(found.message) <= 1000 and found.message.endswith("[cut: 500,030 characters]")


@given(st.text(min_size=1, max_size=20).map(lambda s: s[:10] + "\x00" + s[10:]))
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_any_id_holding_u0000_is_invalid_whatever_else_it_holds_i1(text):
    found = invalid(raw(id=text))

    assert "U+0000" in found.message and "\x00" not in found.message
