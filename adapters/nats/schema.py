"""The JSON Schema (2020-12) of every message ctilink takes and sends, from the wire types.

msgspec writes the schemas of the Structs themselves. This module adds what the
SPEC states and a schema can say but msgspec does not emit (I1: no null as a
value, no U+0000 in a string, an `at` that is a real date with at most
microseconds), writes its patterns as JSON Schema's ECMA-262 expressions, and
marks the outbound times as date-times. What no schema can state is listed in
docs/schema.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import msgspec

from ctilink.adapters.errors import UserError
from ctilink.adapters.nats.wire import (
    IngestReply,
    NetworksQuery,
    NetworkSummary,
    Omitted,
    ProvidersChanged,
    PublishedEvent,
    Query,
    RejectionMessage,
    StatusChanged,
)
from ctilink.domain import messages as m
from ctilink.domain.decoding import MAX_ENTRY_CHARS
from ctilink.projections.directory import Directory
from ctilink.projections.status import Status

DIALECT = "https://json-schema.org/draft/2020-12/schema"
DEFS = "#/$defs/"

# The messages of each part, by their names in `$defs`, in the document's order.
PARTS: dict[str, dict[str, Any]] = {
    "inbound": {"Event": m.Message},
    "outbound": {
        "PublishedEvent": PublishedEvent,
        "ProvidersChanged": ProvidersChanged,
        "StatusChanged": StatusChanged,
        "RejectionMessage": RejectionMessage,
        "Omitted": Omitted,
    },
    "api": {
        "Query": Query,
        "Status": Status,
        "Directory": Directory,
        "NetworksQuery": NetworksQuery,
        "NetworkList": list[NetworkSummary],
        "Event": m.Message,  # the request of ctilink.api.ingest
        "IngestReply": IngestReply,
    },
}
TITLES = {
    "all": "ctilink: every message it takes and sends",
    "inbound": "ctilink: an inbound network event (SPEC §2)",
    "outbound": "ctilink: a message of the stream CTILINK_OUT",
    "api": "ctilink: a request or answer of the micro service ctilink.api.*",
}
# The roots msgspec gives no name of their own.
DESCRIPTIONS = {
    "Event": "One inbound network event (SPEC §2), tagged by `type`.",
    "NetworkList": "A page of networks, sorted by name (the answer of ctilink.api.networks).",
}
# msgspec names two Structs of one name by their full paths; these read better.
RENAMED = {
    "ctilink.domain.messages.PersonalEntry": "PersonalEntry",
    "ctilink.projections.directory.PersonalEntry": "DirectoryPersonalEntry",
}

# I1 (v1.1): no string holds U+0000. `\x00` is read alike by ECMA-262, RE2, Python,
# Java and .NET; the class takes line breaks too, so `$` can only be the end.
NO_NUL = r"^[^\x00]*$"
ENTRIES = ("Entry", "PersonalEntry")  # the inbound directory entries' definitions
# SPEC §2's `at` as the decoder takes it: RFC 3339 with an offset (also `t`, a space,
# `z` and an offset without its colon), a real calendar date from year 1, at most
# microseconds (I1). No lookaround, so that RE2 (Go) compiles it too.
_YEAR = r"(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
_LEAP_YEAR = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
_DATE = (
    rf"(?:{_YEAR}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    r"|02-(?:0[1-9]|1[0-9]|2[0-8]))"
    rf"|{_LEAP_YEAR}-02-29)"
)
_TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
_OFFSET = r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):?[0-5][0-9])"
DATE_TIME = rf"^{_DATE}[Tt ]{_TIME}{_OFFSET}$"
AT_DESCRIPTION = (
    "When it happened: an RFC 3339 date-time with an offset, at most microseconds, "
    "between years 1 and 9999 in UTC; default: when received."
)


class UnknownSchema(UserError):
    """`ctilink schema` was asked for something it has no schema of."""


def document(what: str = "all") -> dict[str, Any]:
    """The schema document of a part (all, inbound, outbound, api) or of one named message."""
    defs = definitions()
    if what == "all":
        names = list(dict.fromkeys(name for part in PARTS.values() for name in part))
    elif what in PARTS:
        names = list(PARTS[what])
    elif what in defs:
        names = [what]
    else:
        known = ", ".join(["all", *PARTS, *defs])
        raise UnknownSchema(f"no schema named {what!r}; these are: {known}")
    doc: dict[str, Any] = {"$schema": DIALECT, "title": TITLES.get(what, what)}
    if len(names) == 1:
        doc["$ref"] = DEFS + names[0]
    else:
        doc["anyOf"] = [{"$ref": DEFS + name} for name in names]
    if what == "all":
        doc["x-ctilink-parts"] = {part: list(roots) for part, roots in PARTS.items()}
    reached = reachable(names, defs)
    doc["$defs"] = {name: schema for name, schema in defs.items() if name in reached}
    return doc


def rendered(what: str = "all") -> bytes:
    """The document as `ctilink schema` prints it (and docs/schema.json holds it)."""
    return (json.dumps(document(what), indent=2, ensure_ascii=False) + "\n").encode()


def definitions() -> dict[str, Any]:
    """Every message's schema and those they refer to, by name, as the wire has them."""
    roots = {name: kind for part in PARTS.values() for name, kind in part.items()}
    tops, defs = msgspec.json.schema_components(roots.values(), ref_template=DEFS + "{name}")
    _mark_times(roots.values(), defs)
    named = {}
    for name, top in zip(roots, tops, strict=True):
        if top != {"$ref": DEFS + name}:  # a union, a list: a definition of its own
            named[name] = {"title": name, "description": DESCRIPTIONS[name], **top}
            # Where msgspec wrote it out in place (the event a PublishedEvent holds).
            defs = _replaced(defs, top, {"$ref": DEFS + name})
    defs = _renamed({**named, **defs})
    for name in reachable(list(PARTS["inbound"]), defs):
        defs[name] = _as_decoded(defs[name])
    for name in ENTRIES:  # I1 (v1.1): checked by decoding, so that older logs still read
        for part in ("name", "number"):
            defs[name]["properties"][part].update(minLength=1, maxLength=MAX_ENTRY_CHARS)
    for schema in defs.values():
        for node in _nodes(schema):
            if "pattern" in node:
                node["pattern"] = ecma(node["pattern"])
    return defs


def ecma(pattern: str) -> str:
    """A Python pattern as JSON Schema reads patterns (ECMA-262): `\\Z` is `$` there."""
    # In ECMA-262 `$` (without the m flag) is the end of the input, as `\Z` in Python.
    return pattern.removesuffix(r"\Z") + "$" if pattern.endswith(r"\Z") else pattern


def reachable(names: list[str], defs: dict[str, Any]) -> set[str]:
    """The names given and every definition they refer to, however deep."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += [node["$ref"].removeprefix(DEFS) for node in _nodes(defs[name]) if "$ref" in node]
    return seen


def _as_decoded(schema: dict[str, Any]) -> dict[str, Any]:
    """An inbound definition with I1's rules that a schema can state added to it."""
    if "properties" in schema:
        schema = {
            **schema,
            "properties": {key: _no_null(value) for key, value in schema["properties"].items()},
        }
        if "at" in schema["properties"]:
            schema["properties"]["at"] = {
                **schema["properties"]["at"],
                "description": AT_DESCRIPTION,
            }
    for node in _nodes(schema):
        if node.get("type") != "string":
            continue
        if node.get("format") == "date-time":
            node["pattern"] = DATE_TIME
        elif "pattern" not in node:
            node["pattern"] = NO_NUL
    return schema


def _no_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A field's schema without its `null` choice: I1 takes no null as a value."""
    choices = schema.get("anyOf", [])
    kept = [choice for choice in choices if choice != {"type": "null"}]
    if len(kept) == len(choices):
        return schema
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    if rest.get("default", 0) is None:
        del rest["default"]  # leaving the field out is how its default is asked for
    return {**(kept[0] if len(kept) == 1 else {"anyOf": kept}), **rest}


def _mark_times(kinds: Any, defs: dict[str, Any]) -> None:
    """Mark every datetime field `format: date-time` (msgspec does only for tz-aware ones)."""
    for info in _structs(msgspec.inspect.multi_type_info(list(kinds))):
        name = _def_name(info.cls, defs)
        for field in info.fields:
            if _is_datetime(field.type):
                property_ = defs[name]["properties"][field.encode_name]
                for node in property_.get("anyOf", [property_]):
                    if node.get("type") == "string":
                        node["format"] = "date-time"


def _is_datetime(kind: msgspec.inspect.Type) -> bool:
    """Whether a field's type is a datetime, or a datetime or None."""
    if isinstance(kind, msgspec.inspect.UnionType):
        return any(_is_datetime(choice) for choice in kind.types)
    return isinstance(kind, msgspec.inspect.DateTimeType)


def _structs(infos: Any) -> Iterator[msgspec.inspect.StructType]:
    """Every Struct type reachable from the type infos given, once each."""
    seen: set[type] = set()
    todo = list(infos)
    while todo:
        info = todo.pop()
        if isinstance(info, msgspec.inspect.StructType):
            if info.cls in seen:
                continue
            seen.add(info.cls)
            yield info
            todo += [field.type for field in info.fields]
        elif isinstance(info, msgspec.inspect.UnionType):
            todo += info.types
        elif isinstance(info, msgspec.inspect.CollectionType):
            todo.append(info.item_type)
        elif isinstance(info, msgspec.inspect.DictType):
            todo.append(info.value_type)


def _def_name(cls: type, defs: dict[str, Any]) -> str:
    """The name msgspec gave a Struct's definition: its own, or its full path if shared."""
    return cls.__name__ if cls.__name__ in defs else f"{cls.__module__}.{cls.__qualname__}"


def _replaced(value: Any, old: Any, new: Any) -> Any:
    """`value` with every part equal to `old` replaced by `new`."""
    if value == old:
        return new
    if isinstance(value, dict):
        return {key: _replaced(item, old, new) for key, item in value.items()}
    if isinstance(value, list):
        return [_replaced(item, old, new) for item in value]
    return value


def _renamed(defs: dict[str, Any]) -> dict[str, Any]:
    """Definitions whose full-path names are replaced by readable ones, refs included."""
    names = {name: RENAMED.get(name, _short(name)) for name in defs if "." in name}
    if not names:
        return defs
    targets = {DEFS + old: DEFS + new for old, new in names.items()}

    def renamed(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: renamed(item) for key, item in value.items()}
        if isinstance(value, list):
            return [renamed(item) for item in value]
        return targets.get(value, value) if isinstance(value, str) else value

    return {names.get(name, name): renamed(schema) for name, schema in defs.items()}


def _short(name: str) -> str:
    """`ctilink.projections.directory.PersonalEntry` as `DirectoryPersonalEntry`."""
    module, _, cls = name.rpartition(".")
    return module.rpartition(".")[2].title() + cls


# Keywords whose value is an object of schemas by name, and those that hold no schema.
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs")
_NOT_SCHEMAS = ("enum", "const", "default", "examples", "discriminator", "required")


def _nodes(schema: Any) -> Iterator[dict[str, Any]]:
    """Every schema within a schema, itself included."""
    if isinstance(schema, list):
        for item in schema:
            yield from _nodes(item)
    elif isinstance(schema, dict):
        yield schema
        for key, value in schema.items():
            if key in _SCHEMA_MAPS:
                yield from _nodes(list(value.values()))
            elif key not in _NOT_SCHEMAS:
                yield from _nodes(value)
