"""`ctilink schema`: the JSON Schema of every message, generated from the wire types.

The schema and the decoder must agree: valid by the schema ⇔ not `invalid` (I1),
on the examples and on a fuzzed corpus, except for the rules docs/schema.md lists
as ones no schema can state (EXCEPTIONS below, each shown with an example).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
import regress
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from nats.micro.request import ServiceError

from ctilink.adapters.nats import api
from ctilink.adapters.nats.schema import DATE_TIME, DEFS, NO_NUL, PARTS, document, rendered
from ctilink.domain import messages as m
from ctilink.domain.decoding import MAX_EVENT_BYTES, MAX_PUBLISHED_BYTES, Invalid, decode
from tests.schemas import EcmaValidator, as_json, corpus, problems, validator
from tests.support import ROOT

CTILINK = Path(sys.executable).parent / "ctilink"
INBOUND = document("inbound")
DEFINED = document("all")["$defs"]


def refs(value: Any) -> list[str]:
    """Every `$ref` within a JSON value."""
    if isinstance(value, dict):
        own = [value["$ref"]] if "$ref" in value else []
        return own + [r for v in value.values() for r in refs(v)]
    if isinstance(value, list):
        return [r for item in value for r in refs(item)]
    return []


def patterns(value: Any) -> list[str]:
    """Every `pattern` within a JSON value."""
    if isinstance(value, dict):
        own = [value["pattern"]] if isinstance(value.get("pattern"), str) else []
        return own + [p for v in value.values() for p in patterns(v)]
    if isinstance(value, list):
        return [p for item in value for p in patterns(item)]
    return []


# --- the documents ---------------------------------------------------------------------


@pytest.mark.parametrize("what", ["all", *PARTS, "Status"])
def test_every_document_is_a_2020_12_schema_whose_refs_all_resolve_within_it(what):
    doc = document(what)

    Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    missing = {r for r in refs(doc) if r.removeprefix(DEFS) not in doc["$defs"]}
    assert missing == set()


def test_the_inbound_schema_names_every_event_type_of_the_domain():
    event = INBOUND["$defs"]["Event"]

    assert list(event["discriminator"]["mapping"]) == list(m.EVENT_TYPES)
    for tag, target in event["discriminator"]["mapping"].items():
        assert INBOUND["$defs"][target.removeprefix(DEFS)]["properties"]["type"] == {"enum": [tag]}
    assert len(event["anyOf"]) == len(m.EVENT_TYPES)


def test_each_part_holds_its_messages_and_only_what_they_refer_to():
    outbound = document("outbound")

    assert [r["$ref"] for r in outbound["anyOf"]] == [DEFS + name for name in PARTS["outbound"]]
    assert "Query" not in outbound["$defs"] and "Status" not in outbound["$defs"]
    assert "PublishedEvent" not in INBOUND["$defs"]
    assert set(document("all")["x-ctilink-parts"]) == {"inbound", "outbound", "api"}


def test_every_definition_has_a_plain_name_two_structs_of_one_name_included():
    assert [name for name in DEFINED if not re.fullmatch(r"[A-Z][A-Za-z]*", name)] == []
    # domain PersonalEntry (inbound) and the directory document's, told apart.
    assert DEFINED["PersonalEntry"]["properties"]["name"]["maxLength"] == 256
    assert "maxLength" not in DEFINED["DirectoryPersonalEntry"]["properties"]["name"]


def test_every_pattern_reads_alike_as_ecma_262_python_and_re2():
    found = sorted(set(patterns(DEFINED)))

    assert NO_NUL in found and DATE_TIME in found and len(found) >= 4
    for pattern in found:
        regress.Regex(pattern, "u")  # JSON Schema's dialect, as a unicode-mode RegExp
        re.compile(pattern)
        # RE2 (Go) has no lookaround or backreference; \Z and \A are Python's alone.
        assert not re.search(r"\(\?[=!<]|\\[1-9ZAz]", pattern), pattern


def test_ctilink_schema_writes_docs_schema_json_exactly():
    # docs/asyncapi.yaml refers to this copy; regenerate it with
    # `ctilink schema > docs/schema.json` when the wire types change.
    assert (ROOT / "docs" / "schema.json").read_bytes() == rendered("all")


# --- I1 rules the schema states that msgspec does not emit -------------------------------


def restarted(**fields: Any) -> dict[str, Any]:
    """A portal_restarted event with fields changed."""
    return {"type": "portal_restarted", "id": "r1", "network": "acme", **fields}


STATED = {
    "null as a value": restarted(at=None),
    "U+0000 in a string": restarted(id="a\x00b"),
    "U+0000 in a directory entry": {
        "type": "directory_changed",
        "id": "d1",
        "network": "acme",
        "system": "s",
        "entries": [{"name": "a\x00", "number": "1"}],
    },
    "a finer `at` than microseconds": restarted(at="2024-01-01T00:00:00.1234567Z"),
    "an `at` on a day no calendar has": restarted(at="2023-02-29T00:00:00Z"),
}


@pytest.mark.parametrize("event", STATED.values(), ids=list(STATED))
def test_what_msgspec_alone_lets_through_the_schema_refuses_as_the_decoder_does_i1(event):
    bare = Draft202012Validator(msgspec.json.schema(m.Message))

    assert bare.is_valid(event)  # why the generator adds to msgspec's schema
    assert not validator("Event").is_valid(event)
    assert isinstance(decode(json.dumps(event)), Invalid)


def test_names_end_as_in_the_decoder_where_msgspecs_pattern_would_not():
    network = DEFINED["PortalRestarted"]["properties"]["network"]["pattern"]
    python = msgspec.json.schema(m.PortalRestarted)["$defs"]["PortalRestarted"]

    # msgspec writes Python's `\Z`: an error in a unicode-mode ECMA-262 RegExp, and
    # a literal "Z" without the u flag; JSON Schema's `$` is the end of the string.
    assert python["properties"]["network"]["pattern"].endswith("\\Z")
    with pytest.raises(regress.RegressError):
        regress.Regex(python["properties"]["network"]["pattern"], "u")
    assert network == "^[A-Za-z0-9_-]{1,64}$"
    assert not validator("Event").is_valid(restarted(network="acme\n"))
    assert isinstance(decode(json.dumps(restarted(network="acme\n"))), Invalid)


# --- what no schema can state -------------------------------------------------------------


def big(size: int) -> bytes:
    """A valid directory_changed of `size` bytes, give or take an entry."""
    event = {"type": "directory_changed", "id": "d", "network": "acme", "system": "s"}
    entry = {"name": "xxxxxxxx", "number": "1"}
    count = (size - 80) // (len(json.dumps(entry, separators=(",", ":"))) + 1)
    return json.dumps({**event, "entries": [entry] * count}, separators=(",", ":")).encode()


# Bytes a JSON parser turns into a value the schema takes, which I1 rejects, and
# the reason it gives. docs/schema.md lists each under the same bold label.
EXCEPTIONS = {
    "Repeated keys": (
        b'{"type":"portal_restarted","id":"a","id":"b","network":"acme"}',
        "field `id`: given twice in one object",
    ),
    "A byte order mark": (
        b'\xef\xbb\xbf{"type":"portal_restarted","id":"a","network":"acme"}',
        "starts with a UTF-8 byte order mark",
    ),
    "Lone surrogates": (
        b'{"type":"portal_restarted","id":"\\ud800","network":"acme"}',
        "surrogate",
    ),
    "The size limits": (big(MAX_EVENT_BYTES + 100), "event is longer than 1048576 bytes"),
    "The size as published": (big(MAX_PUBLISHED_BYTES + 2000), "as ctilink publishes it"),
    "The range in UTC": (
        json.dumps(restarted(at="0001-01-01T00:30:00+01:00")).encode(),
        "not an instant between years 1 and 9999 in UTC",
    ),
}


def test_the_size_examples_are_what_they_say():
    assert len(EXCEPTIONS["The size limits"][0]) > MAX_EVENT_BYTES
    assert MAX_PUBLISHED_BYTES < len(EXCEPTIONS["The size as published"][0]) < MAX_EVENT_BYTES


@pytest.mark.parametrize(("raw", "reason"), EXCEPTIONS.values(), ids=list(EXCEPTIONS))
def test_what_no_schema_can_state_is_rejected_by_the_decoder_alone(raw, reason):
    parsed = json.loads(raw)  # what a consumer's parser makes of the bytes

    decided = decode(raw)

    assert Draft202012Validator(INBOUND).is_valid(parsed)
    assert isinstance(decided, Invalid) and reason in decided.message


@pytest.mark.parametrize("query", [{"network": "acme", "at": 1.0}, {"limit": 1e2}])
def test_an_integer_written_with_a_fraction_is_an_integer_to_the_schema_and_a_400_to_the_api(
    query,
):
    name = "Query" if "network" in query else "NetworksQuery"

    assert validator(name).is_valid(query)
    assert not answer(REQUESTS[name], json.dumps(query).encode())


def test_docs_schema_md_lists_exactly_the_rules_no_schema_can_state():
    page = (ROOT / "docs" / "schema.md").read_text()
    section = page.split("## What no schema can state", 1)[1].split("\n## ", 1)[0]

    listed = re.findall(r"^- \*\*(.+?)\*\*", section, re.MULTILINE)

    assert listed == [*EXCEPTIONS, "Integers written with a fraction"]


# --- the fuzzed corpus: valid by the schema ⇔ not invalid ---------------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)


def instances(schema: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid by a schema, drawn from its own shape (the keywords ctilink's use)."""
    if "$ref" in schema:
        return st.deferred(lambda: instances(defs[schema["$ref"].removeprefix(DEFS)], defs))
    if "anyOf" in schema:
        return st.one_of([instances(choice, defs) for choice in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema["type"]
    if kind == "object":
        properties = {k: instances(v, defs) for k, v in schema["properties"].items()}
        required = {k: v for k, v in properties.items() if k in schema["required"]}
        optional = {k: v for k, v in properties.items() if k not in schema["required"]}
        return st.fixed_dictionaries(required, optional=optional)
    if kind == "array":
        return st.lists(instances(schema["items"], defs), max_size=3)
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        low, high = schema.get("minimum"), schema.get("maximum")
        return st.integers(low, high)
    if kind == "null":
        return st.none()
    assert kind == "string", schema
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    if schema.get("pattern", NO_NUL) == NO_NUL:
        return st.text(
            st.characters(codec="utf-8", exclude_characters="\x00"), min_size=low, max_size=high
        )
    pattern = schema["pattern"]
    # Python's `$` also matches before a last line break; fullmatch does not.
    return st.from_regex(pattern, fullmatch=True).filter(lambda t: low <= len(t) <= (high or 1e9))


def paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place within a JSON value (the value itself first)."""
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*path, index))
    return found


def two(low: int, high: int) -> st.SearchStrategy[str]:
    """A two-digit field from low to high."""
    return st.integers(low, high).map("{:02d}".format)


# Times around the edges of the rules: years 0, 1, leap or not, and 9999; months 0
# and 13; Feb 29 and 30, day 31 of short months; hour 24, second 60; fractions to 9
# digits; every offset form, and none.
LOOSE_TIMES = st.tuples(
    st.sampled_from(["0000", "0001", "1900", "2000", "2023", "2024", "9999"])
    | st.from_regex(r"[0-9]{4}", fullmatch=True),
    st.sampled_from(["00", "01", "02", "04", "06", "09", "11", "12", "13"]),
    st.sampled_from(["00", "01", "28", "29", "30", "31", "32"]),
    st.sampled_from("Tt _"),
    two(0, 24),
    two(0, 60),
    two(0, 61),
    st.sampled_from(["", "."]) | st.integers(1, 9).map(lambda n: "." + "1234567890"[:n]),
    st.sampled_from(["Z", "z", "", "+00:00", "-00:00", "+24:00", "+01:60"])
    | st.from_regex(r"[+-][0-9]{2}:?[0-9]{2}", fullmatch=True),
).map(lambda p: f"{p[0]}-{p[1]}-{p[2]}{p[3]}{p[4]}:{p[5]}:{p[6]}{p[7]}{p[8]}")


def near_misses(text: str) -> st.SearchStrategy[str]:
    """Strings close to a valid one: cut, grown, a character changed, a line break, U+0000."""
    spots = st.integers(0, len(text))
    odd = st.sampled_from("0123456789:-+.TtZz \n\x00é") | st.characters(codec="utf-8")
    return st.one_of(
        LOOSE_TIMES,
        spots.map(lambda i: text[:i]),
        st.tuples(spots, odd).map(lambda p: text[: p[0]] + p[1] + text[p[0] + 1 :]),
        st.tuples(spots, odd).map(lambda p: text[: p[0]] + p[1] + text[p[0] :]),
        st.sampled_from([text + "\n", text + "\x00", text * 3, "x" * 65, "x" * 129, "x" * 257]),
    )


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[Any]) -> Any:
    """A valid instance (drawn from `valid`), left so or mutated at one place."""
    value = draw(valid)
    mutation = draw(
        st.sampled_from(["none", "drop", "add", "null", "replace", "near", "tag", "at"])
    )
    if mutation == "none":
        return value
    if mutation == "at" and isinstance(value, dict):
        value["at"] = draw(LOOSE_TIMES)
        return value
    path = draw(st.sampled_from(paths(value)))
    if not path:
        return draw(JSON) if mutation == "replace" else value
    *parent_path, last = path
    parent = value
    for step in parent_path:
        parent = parent[step]
    if mutation == "drop" and isinstance(parent, dict):
        del parent[last]
    elif mutation == "add" and isinstance(parent, dict):
        parent[draw(st.text(max_size=8))] = draw(JSON)
    elif mutation == "null":
        parent[last] = None
    elif mutation == "replace":
        parent[last] = draw(JSON)
    elif mutation == "near" and isinstance(parent[last], str):
        parent[last] = draw(near_misses(parent[last]))
    elif mutation == "tag" and isinstance(value, dict):
        value["type"] = draw(st.sampled_from(m.EVENT_TYPES) | st.text(max_size=8))
    return value


def beyond_utc_range(decided: Invalid, event: Any) -> bool:
    """The documented exception the fuzz can reach: an `at` that leaves years 1–9999 in UTC."""
    if "between years 1 and 9999 in UTC" not in decided.message:
        return False
    assert event["at"][:4] in ("0001", "9999"), event  # only at the range's two edges
    return True


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=mutated(instances(INBOUND, INBOUND["$defs"])), ascii_only=st.booleans())
@example(event=restarted(at="9999-12-31T23:59:59-00:01"), ascii_only=True)
@example(event=restarted(at="2024-02-29t23:59:59.999999+2359"), ascii_only=False)
@example(event=restarted(actor="x" * 256), ascii_only=False)
@example(event={**restarted(), "id\x00": "r1"}, ascii_only=True)  # U+0000 in a key
def test_valid_by_the_inbound_schema_exactly_when_the_decoder_does_not_say_invalid_i1(
    event, ascii_only
):
    raw = json.dumps(event, ensure_ascii=ascii_only).encode()

    by_schema = validator("Event").is_valid(event)
    decided = decode(raw)

    if by_schema and isinstance(decided, Invalid) and beyond_utc_range(decided, event):
        return  # EXCEPTIONS["The range in UTC"]
    assert by_schema == (not isinstance(decided, Invalid)), (event, decided)


@settings(max_examples=1000, deadline=None)
@given(at=LOOSE_TIMES)
@example(at="2024-02-29T00:00:00Z")
@example(at="1900-02-29T00:00:00Z")
@example(at="2000-02-29T00:00:00Z")
def test_an_at_is_valid_by_the_schema_exactly_when_the_decoder_takes_it_i1(at):
    event = restarted(at=at)

    by_schema = validator("Event").is_valid(event)
    decided = decode(json.dumps(event))

    if by_schema and isinstance(decided, Invalid) and beyond_utc_range(decided, event):
        return  # EXCEPTIONS["The range in UTC"]
    assert by_schema == (not isinstance(decided, Invalid)), (at, decided)


AT = EcmaValidator(DEFINED["PortalRestarted"]["properties"]["at"])


def agree_on(at: str) -> tuple[bool, bool]:
    """(valid by the schema's `at`, taken by the decoder) for a portal_restarted at `at`."""
    return AT.is_valid(at), not isinstance(decode(json.dumps(restarted(at=at))), Invalid)


def test_the_at_pattern_knows_every_year_and_day_of_the_calendar_as_the_decoder_does_i1():
    leap_days = [f"{year:04d}-02-29T12:00:00Z" for year in range(10_000)]
    days = [
        f"{year}-{month:02d}-{day:02d}T12:00:00Z"
        for year in ("2023", "2024")
        for month in range(14)
        for day in range(33)
    ]

    verdicts = {at: agree_on(at) for at in leap_days + days}

    assert [at for at, (schema, decoder) in verdicts.items() if schema != decoder] == []
    assert sum(verdicts[at][0] for at in leap_days) == 2424  # the leap years from 4 to 9996
    assert sum(verdicts[at][0] for at in days) == 365 + 366


@pytest.mark.parametrize("digits", range(10))
def test_the_at_pattern_takes_fractions_to_the_microsecond_as_the_decoder_does_i1(digits):
    at = "2024-01-01T00:00:00" + ("." + "123456789"[:digits] if digits else "") + "Z"

    assert agree_on(at) == (digits <= 6, digits <= 6)


def answer(decoder: Any, raw: bytes) -> bool:
    """Whether the API takes a request (else it answers 400)."""
    try:
        api._decode(decoder, raw)
    except ServiceError as error:
        assert error.code == "400"
        return False
    return True


def fraction_written(value: Any) -> bool:
    """A float that is a whole number: an integer to JSON Schema, not to ctilink."""
    if isinstance(value, dict):
        return any(fraction_written(item) for item in value.values())
    return isinstance(value, float) and value.is_integer()


REQUESTS = {"Query": api._query, "NetworksQuery": api._networks_query}
REQUEST_VALUES = {name: instances(document(name), document(name)["$defs"]) for name in REQUESTS}


@settings(max_examples=600, deadline=None)
@given(
    request=st.sampled_from(list(REQUESTS)).flatmap(
        lambda name: st.tuples(st.just(name), mutated(REQUEST_VALUES[name]))
    ),
)
def test_valid_by_a_request_schema_exactly_when_the_api_does_not_answer_400(request):
    name, query = request
    decoder = REQUESTS[name]
    raw = json.dumps(query).encode()

    by_schema = validator(name).is_valid(query)
    taken = answer(decoder, raw)

    if by_schema and not taken and fraction_written(query):
        return  # docs/schema.md: "Integers written with a fraction"
    assert by_schema == taken, (query, raw)


# --- the examples and what the code sends ---------------------------------------------------


def test_every_event_of_the_example_scenario_is_valid_by_the_inbound_schema():
    lines = corpus().inbound

    assert len(lines) == 53
    assert [problems("Event", as_json(line)) for line in lines] == [[]] * len(lines)
    assert all(not isinstance(decode(line), Invalid) for line in lines)


OUTBOUND_BY_SUBJECT = {
    "events": "PublishedEvent",
    "providers": "ProvidersChanged",
    "status": "StatusChanged",
    "rejected": "RejectionMessage",
}


def test_every_message_the_publisher_sends_for_the_scenario_is_valid_by_its_schema():
    sent = corpus().outgoing
    outbound = EcmaValidator(document("outbound"))

    named = [
        ("Omitted" if b'"omitted"' in payload[:12] else OUTBOUND_BY_SUBJECT[subject.split(".")[1]])
        for subject, payload, _ in sent
    ]

    assert {name: named.count(name) for name in set(named)} == {
        "PublishedEvent": 53,
        "ProvidersChanged": 13,
        "StatusChanged": 30,
        "RejectionMessage": 5,
        "Omitted": 1,
    }
    wrong = {
        (subject, problem)
        for (subject, payload, _), name in zip(sent, named, strict=True)
        for problem in problems(name, as_json(payload))
    }
    assert wrong == set()
    assert all(outbound.is_valid(as_json(payload)) for _, payload, _ in sent)


def test_every_answer_of_the_api_for_the_scenario_is_valid_by_its_schema():
    answers = corpus().answers

    wrong = {
        (name, problem)
        for name, payloads in answers.items()
        for payload in payloads
        for problem in problems(name, as_json(payload))
    }

    assert wrong == set()
    outcomes = {as_json(reply)["outcome"] for reply in answers["IngestReply"]}
    assert outcomes == {"accepted", "duplicate", "rejected"}
    assert len(answers["Status"]) == len(answers["Directory"]) == 53


def test_a_published_time_that_is_no_date_time_is_caught():
    published = as_json(corpus().outgoing[0][1])

    assert problems("PublishedEvent", published) == []
    assert problems("PublishedEvent", {**published, "at": "yesterday"}) != []
    assert problems("PublishedEvent", {**published, "event": {"type": "nope"}}) != []


# --- the command ---------------------------------------------------------------------------


def run(*args: str) -> subprocess.CompletedProcess[bytes]:
    """`ctilink` as a process."""
    return subprocess.run([str(CTILINK), *args], capture_output=True, timeout=60, check=False)


def test_ctilink_schema_prints_every_message_as_one_json_document():
    done = run("schema")

    assert done.returncode == 0 and done.stderr == b""
    doc = json.loads(done.stdout)
    assert done.stdout == (ROOT / "docs" / "schema.json").read_bytes()
    assert {r["$ref"].removeprefix(DEFS) for r in doc["anyOf"]} == {
        name for part in PARTS.values() for name in part
    }


def test_ctilink_schema_inbound_is_the_event_union_naming_every_event_type():
    done = run("schema", "inbound")

    doc = json.loads(done.stdout)
    assert done.returncode == 0
    assert doc["$ref"] == DEFS + "Event"
    assert sorted(doc["$defs"]["Event"]["discriminator"]["mapping"]) == sorted(m.EVENT_TYPES)
    assert Draft202012Validator(doc).is_valid(json.loads(corpus().inbound[0]))


def test_ctilink_schema_of_one_message_and_of_an_unknown_name():
    status = run("schema", "Status")
    unknown = run("schema", "Stat")

    assert json.loads(status.stdout)["$ref"] == DEFS + "Status"
    assert unknown.returncode == 2 and unknown.stdout == b""
    assert unknown.stderr.decode().count("\n") == 1
    assert "no schema named 'Stat'; these are: all, inbound, outbound, api, Event" in (
        unknown.stderr.decode()
    )
