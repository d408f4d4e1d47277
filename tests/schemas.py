"""For the schema tests: a validator that reads patterns as JSON Schema does (ECMA-262),
and the messages the real code sends for the example scenario and a few rejected lines."""

from __future__ import annotations

import io
from contextlib import closing
from dataclasses import dataclass, field
from functools import cache, lru_cache
from types import SimpleNamespace
from typing import Any

import msgspec
import regress
from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from jsonschema.validators import extend

from ctilink.adapters.ingest.lines import ingest
from ctilink.adapters.nats.publisher import Outgoing, Publisher
from ctilink.adapters.nats.schema import DATE_TIME, DEFS, document
from ctilink.adapters.nats.wire import IngestReply, NetworkSummary, encode
from ctilink.adapters.store.queries.listing import network_lines
from ctilink.adapters.store.queries.log import network_heads
from ctilink.adapters.store.queries.networks import Filters
from ctilink.adapters.store.selection import MEMORY, open_service
from ctilink.projections.directory import directory
from ctilink.projections.status import status
from tests.support import ROOT

SCENARIO = ROOT / "examples" / "scenario.jsonl"
# Lines the scenario lacks: a rule's rejection, bytes that are no JSON (naming no
# network: `ctilink.rejected.~`), bad UTF-8 (payload_base64), a name that is no
# name, an id with a control character (its header escaped).
REJECTED = [
    b'{"type":"failover","id":"acme-x1","network":"acme","system":"nope"}',
    b"not json",
    b'{"type":"portal_restarted","id":"\xff","network":"acme"}',
    b'{"type":"portal_restarted","id":"x","network":"bad name"}',
    b'{"type":"portal_restarted","id":"\\u001b[31m","network":"nowhere"}',
]


@lru_cache(maxsize=64)
def _ecma(pattern: str) -> regress.Regex:
    return regress.Regex(pattern, "u")


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    """JSON Schema's `pattern`, read as ECMA-262 (where `$` is only the end)."""
    if validator.is_type(instance, "string") and _ecma(pattern).find(instance) is None:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


EcmaValidator = extend(Draft202012Validator, {"pattern": _pattern})
# For what ctilink sends: its times must be date-times as ctilink reads them.
DATES = FormatChecker(formats=())
DATES.checks("date-time")(
    lambda text: not isinstance(text, str) or bool(_ecma(DATE_TIME).find(text))
)


@cache
def validator(name: str, formats: bool = False) -> Any:
    """A validator for one message of `ctilink schema`'s `$defs`, by name."""
    schema = {**document("all"), "$ref": DEFS + name}
    schema.pop("anyOf")
    return EcmaValidator(schema, format_checker=DATES if formats else None)


def problems(name: str, instance: Any) -> list[str]:
    """Why an instance is not a valid `name` (date-times checked too), if it is not."""
    return [error.message for error in validator(name, formats=True).iter_errors(instance)]


@dataclass
class Corpus:
    """What the code sends for the scenario and REJECTED: messages, answers, reports."""

    inbound: list[bytes]
    outgoing: list[Outgoing]
    answers: dict[str, list[bytes]] = field(default_factory=dict)  # by schema name


@cache
def corpus() -> Corpus:
    """Ingest the scenario and REJECTED into a store in memory; collect what goes out."""
    inbound = [line for line in SCENARIO.read_bytes().splitlines() if line.strip()]
    with closing(open_service(MEMORY)) as service:
        reports: list[Any] = []
        ingest(service, io.BytesIO(b"\n".join(inbound + REJECTED)), reports.append, source="t")
        again = io.BytesIO(inbound[0] + b"\n")  # a duplicate, for its reply
        ingest(service, again, reports.append)
        publisher = Publisher(service, nc=None)  # type: ignore[arg-type]
        outgoing: list[Outgoing] = []
        for page, tracking in ((publisher._event_page, 0), (publisher._rejection_page, 0)):
            last, messages = page(tracking)
            while last is not None:
                outgoing += messages
                last, messages = page(last)
        publisher.nc = SimpleNamespace(max_payload=200)  # what a too small server gets
        outgoing.append(publisher._fitting(max(outgoing, key=lambda out: len(out[1]))))
        answers: dict[str, list[bytes]] = {"Status": [], "Directory": []}
        for network, head in network_heads(service):
            for at in range(1, head + 1):
                state, position = service.state_at(network, at)
                answers["Status"].append(encode(status(state, position)))
                answers["Directory"].append(encode(directory(state, position)))
        lines, _ = network_lines(service, Filters())
        answers["NetworkList"] = [encode([NetworkSummary.of(line) for line in lines])]
        answers["IngestReply"] = [
            encode(IngestReply(r.outcome, r.position, r.code, r.message)) for r in reports
        ]
    return Corpus(inbound, outgoing, answers)


def as_json(payload: bytes) -> Any:
    """A payload as JSON data."""
    return msgspec.json.decode(payload)
