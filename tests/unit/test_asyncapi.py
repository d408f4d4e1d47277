"""docs/asyncapi.yaml: an AsyncAPI 3.0 document of every subject, held to what the code does.

Its payloads are `ctilink schema`'s definitions (docs/schema.json, checked against
the generator in test_schema.py); its subjects, headers and codes are compared with
the streams, the publisher's messages for the example scenario, and the endpoints
and answers of the micro service, driven without a NATS server.
"""

from __future__ import annotations

import ast
import copy
import re
import warnings
from collections.abc import Iterator
from contextlib import closing
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from nats.micro.request import ServiceError

from ctilink.adapters.nats import api
from ctilink.adapters.nats.ingestor import Ingestor
from ctilink.adapters.nats.publisher import UNNAMED
from ctilink.adapters.nats.schema import PARTS, document
from ctilink.adapters.nats.streams import IN_SUBJECTS, OUT_SUBJECTS
from ctilink.adapters.store.selection import MEMORY, open_service
from ctilink.domain import messages as m
from ctilink.domain.errors import Code
from tests.schemas import EcmaValidator, as_json, corpus, problems
from tests.support import ROOT, decode

with warnings.catch_warnings():  # its models shadow pydantic's `schema` (harmless)
    warnings.simplefilter("ignore", UserWarning)
    from asyncapi3.models import AsyncAPI3

DOC: dict[str, Any] = yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text())
SCHEMA_FILE = "schema.json#/$defs/"
DEFINED = document("all")["$defs"]


def resolve(ref: str) -> Any:
    """What an internal `$ref` (`#/a/b`) points at in the document, through other refs."""
    assert ref.startswith("#/"), ref
    node: Any = DOC
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    if isinstance(node, dict) and list(node) == ["$ref"] and node["$ref"].startswith("#/"):
        return resolve(node["$ref"])
    return node


def refs(value: Any) -> Iterator[str]:
    """Every `$ref` within a value."""
    if isinstance(value, dict):
        if "$ref" in value:
            yield value["$ref"]
        for item in value.values():
            yield from refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from refs(item)


def deref(node: Any) -> Any:
    """A node, or what it refers to."""
    return resolve(node["$ref"]) if "$ref" in node else node


def payload_name(message: dict[str, Any]) -> str | None:
    """The `ctilink schema` definition a message's payload is, if it has a payload."""
    if "payload" not in message:
        return None
    assert message["payload"]["schemaFormat"] == "application/schema+json;version=draft-2020-12"
    return message["payload"]["schema"]["$ref"].removeprefix(SCHEMA_FILE)


def channel_messages(channel: dict[str, Any]) -> list[dict[str, Any]]:
    """A channel's messages, resolved."""
    return [deref(message) for message in channel["messages"].values()]


def matcher(address: str) -> re.Pattern[str]:
    """The subjects a channel address with {parameters} stands for (a parameter: one token)."""
    return re.compile(re.sub(r"\\\{\w+\\\}", "[^.]+", re.escape(address)))


def header_problems(message: dict[str, Any], headers: dict[str, str] | None) -> list[str]:
    """Why headers do not fit a message's header schema (none: they fit)."""
    schema = message.get("headers", {"type": "object", "maxProperties": 0})
    return [error.message for error in EcmaValidator(schema).iter_errors(headers or {})]


def fits(message: dict[str, Any], payload: Any, headers: dict[str, str] | None) -> bool:
    """Whether a payload and headers are one of this message."""
    name = payload_name(message)
    if name is None:
        return payload in (b"", None) and not header_problems(message, headers)
    return not problems(name, payload) and not header_problems(message, headers)


def test_the_document_is_an_asyncapi_3_0_document():
    assert DOC["asyncapi"] == "3.0.0"

    AsyncAPI3.model_validate(DOC)
    broken = copy.deepcopy(DOC)
    broken["operations"]["receiveEvent"]["action"] = "take"
    with pytest.raises(ValueError, match="action"):
        AsyncAPI3.model_validate(broken)


def test_every_ref_resolves_and_every_payload_is_a_schema_ctilink_schema_emits():
    found = list(refs(DOC))

    outside = [r for r in found if not r.startswith(("#/", SCHEMA_FILE))]
    payloads = {r.removeprefix(SCHEMA_FILE) for r in found if r.startswith(SCHEMA_FILE)}
    assert outside == []
    for ref in found:
        if ref.startswith("#/"):
            resolve(ref)  # raises if it points nowhere
    assert payloads <= set(DEFINED)
    assert payloads == {name for part in PARTS.values() for name in part}


def test_an_operations_messages_are_its_channels_and_its_replys_its_reply_channels():
    for name, operation in DOC["operations"].items():
        channel = operation["channel"]["$ref"]
        assert operation["messages"], name
        assert all(r["$ref"].startswith(f"{channel}/messages/") for r in operation["messages"])
        if "reply" in operation:
            back = operation["reply"]["channel"]["$ref"]
            assert all(
                r["$ref"].startswith(f"{back}/messages/") for r in operation["reply"]["messages"]
            )
            assert resolve(back)["address"] is None  # the requester's inbox


def addresses(action: str, *, replies: bool) -> set[str]:
    """The addresses of the channels of the operations with this action (with replies or not)."""
    return {
        resolve(op["channel"]["$ref"])["address"]
        for op in DOC["operations"].values()
        if op["action"] == action and ("reply" in op) == replies
    }


def test_the_channels_are_the_subjects_of_ctilinks_streams():
    def wildcards(found: set[str]) -> list[str]:
        return sorted(re.sub(r"\{\w+\}", "*", address) for address in found)

    assert wildcards(addresses("receive", replies=False)) == sorted(IN_SUBJECTS)
    assert wildcards(addresses("send", replies=False)) == sorted(OUT_SUBJECTS)


def test_the_events_channel_names_every_event_type():
    assert DOC["channels"]["events"]["parameters"]["type"]["enum"] == list(m.EVENT_TYPES)


def test_every_example_event_is_a_message_of_the_inbound_channel():
    (channel,) = [c for c in DOC["channels"].values() if c["address"] == "ctilink.in.{network}"]
    (message,) = channel_messages(channel)

    events = [as_json(line) for line in corpus().inbound]

    assert [
        e for e in events if not matcher(channel["address"]).fullmatch(f"ctilink.in.{e['network']}")
    ] == []
    assert [e for e in events if not fits(message, e, {"Nats-Msg-Id": e["id"]})] == []


def test_every_message_the_publisher_sends_fits_one_channel_and_one_of_its_messages():
    sent = corpus().outgoing
    outbound = {
        resolve(op["channel"]["$ref"])["address"]: resolve(op["channel"]["$ref"])
        for op in DOC["operations"].values()
        if op["action"] == "send"
    }

    reached: dict[str, set[str]] = {address: set() for address in outbound}
    misfits = []
    for subject, payload, headers in sent:
        (address,) = [a for a in outbound if matcher(a).fullmatch(subject)]
        kinds = [
            message["name"]
            for message in channel_messages(outbound[address])
            if fits(message, as_json(payload), headers)
        ]
        if len(kinds) != 1:
            misfits.append((subject, headers, kinds))
        reached[address].update(kinds)

    assert misfits == []
    assert reached == {
        "ctilink.events.{network}.{type}": {"PublishedEvent"},
        "ctilink.providers.{network}": {"ProvidersChanged"},
        "ctilink.status.{network}": {"StatusChanged", "Omitted"},
        "ctilink.rejected.{network}": {"Rejection"},
    }
    assert f"ctilink.rejected.{UNNAMED}" in {subject for subject, _, _ in sent}


def test_the_headers_of_a_rejection_are_checked():
    rejection = DOC["components"]["messages"]["Rejection"]
    headers = next(h for s, _, h in corpus().outgoing if s.startswith("ctilink.rejected."))

    assert header_problems(rejection, headers) == []
    assert header_problems(rejection, {**headers, "Ctilink-Code": "nope"}) != []
    assert header_problems(rejection, {"Ctilink-Code": "invalid"}) != []


def test_the_codes_are_those_of_the_code():
    messages = DOC["components"]["messages"]
    codes = messages["Rejection"]["headers"]["properties"]["Ctilink-Code"]["enum"]
    errors = messages["ServiceError"]["headers"]["properties"]["Nats-Service-Error-Code"]["enum"]

    raised = {
        node.args[0].value
        for node in ast.walk(ast.parse((ROOT / "adapters" / "nats" / "api.py").read_text()))
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", None) == "ServiceError"
        and isinstance(node.args[0], ast.Constant)
    }
    assert codes == [code.value for code in Code]
    # nats.micro answers 500 for whatever else a handler raises.
    assert sorted(errors) == sorted(raised | {"500"})
    assert DOC["info"]["version"] == api.VERSION


class Request:
    """What a micro service handler is given: the data, and where its answer goes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.answers: list[bytes] = []

    async def respond(self, data: bytes) -> None:
        self.answers.append(data)


@pytest.fixture
async def endpoints(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The service's endpoints as start_api registers them, over the example scenario."""
    registered: dict[str, Any] = {}

    class Service:
        async def add_endpoint(self, name: str, subject: str, handler: Any) -> None:
            registered[subject] = handler

    async def add_service(nc: Any, **options: Any) -> Service:
        registered["queue_group"] = options["queue_group"]
        return Service()

    monkeypatch.setattr(api, "add_service", add_service)
    with closing(open_service(MEMORY)) as service:
        service.ingest([decode(as_json(line)) for line in corpus().inbound])
        server = await api.start_api(SimpleNamespace(max_payload=1 << 20), Ingestor(service))
        yield registered
        await server.finish_reads()


def requests_of(operation: dict[str, Any]) -> list[bytes]:
    """The examples of an operation's request messages, as sent."""
    import json

    return [
        json.dumps(example["payload"]).encode()
        for ref in operation["messages"]
        for example in resolve(ref["$ref"]).get("examples", [])
    ]


BAD_REQUESTS = {
    "ctilink.api.status": [b'{"network":"nowhere"}', b'{"network":"acme","at":99999}', b"{"],
    "ctilink.api.directory": [b'{"network":"nowhere"}', b'{"network":5}'],
    "ctilink.api.networks": [b'{"limit":0}', b'{"sort":"name"}'],
    "ctilink.api.ingest": [],  # a rejected event is an answer, not an error
}
GOOD_REQUESTS = {
    "ctilink.api.status": [b'{"network":"globex","at":3}'],
    "ctilink.api.directory": [b'{"network":"acme"}'],
    "ctilink.api.networks": [b"", b'{"name_prefix":"gl"}'],
    "ctilink.api.ingest": [
        b'{"type":"portal_restarted","id":"api-1","network":"acme"}',
        b'{"type":"failover","id":"api-2","network":"acme","system":"nope"}',
        b"not json",
    ],
}


async def test_the_api_channels_are_the_endpoints_the_service_answers_as_its_messages_say(
    endpoints,
):
    operations = [op for op in DOC["operations"].values() if "reply" in op]

    assert endpoints.pop("queue_group") == api.QUEUE_GROUP
    assert sorted(endpoints) == sorted(addresses("receive", replies=True))
    for operation in operations:
        subject = resolve(operation["channel"]["$ref"])["address"]
        replies = [resolve(r["$ref"]) for r in operation["reply"]["messages"]]
        (service_error,) = [r for r in replies if r["name"] == "ServiceError"]
        assert operation["bindings"] == {"$ref": "#/components/operationBindings/service"}
        examples = requests_of(operation)
        assert examples or subject == "ctilink.api.ingest", subject
        for data in [*examples, *GOOD_REQUESTS[subject]]:
            request = Request(data)
            await endpoints[subject](request)
            (answer,) = request.answers
            assert [r["name"] for r in replies if fits(r, as_json(answer), None)] != [], data
        for data in BAD_REQUESTS[subject]:
            with pytest.raises(ServiceError) as raised:
                await endpoints[subject](Request(data))
            headers = {
                "Nats-Service-Error": raised.value.description,
                "Nats-Service-Error-Code": raised.value.code,
            }
            assert fits(service_error, b"", headers), (data, headers)
    queue = DOC["components"]["operationBindings"]["service"]["nats"]["queue"]
    assert queue == api.QUEUE_GROUP


def test_every_example_in_the_document_is_valid_by_its_message():
    checked = 0
    for message in DOC["components"]["messages"].values():
        for example in message.get("examples", []):
            payload = example.get("payload", b"")
            assert fits(message, payload, example.get("headers")), (message["name"], example)
            checked += 1

    assert checked >= 9
