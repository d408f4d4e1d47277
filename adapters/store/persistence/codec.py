"""Stores the log's events and snapshots as compact msgspec JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic, register_topic

from ctilink.adapters.store.persistence.compat import stored_event
from ctilink.domain import messages as m
from ctilink.domain.errors import DamagedLog
from ctilink.domain.network import Installed, Network, Recorded, Snapshot, build
from ctilink.domain.state import NetworkState


class StoredRecord(msgspec.Struct, frozen=True, array_like=True):
    """A log position: [received, event as sent, content digest, chain hash]."""

    # A JSON array rather than an object: a fifth fewer bytes per row, and the
    # insert costs grow with row size. New fields may only be appended.
    timestamp: datetime
    message: m.Message
    fingerprint: bytes
    chain: bytes


class _EncodedRecord(msgspec.Struct, frozen=True, array_like=True):
    """A StoredRecord whose message is already encoded (encodes to the same bytes)."""

    timestamp: datetime
    message: msgspec.Raw
    fingerprint: bytes
    chain: bytes


class _IdOnly(msgspec.Struct):
    id: str


class _StoredId(msgspec.Struct, array_like=True):
    """The part of a StoredRecord that idempotency needs; the rest is skipped unread."""

    timestamp: msgspec.Raw
    message: _IdOnly
    fingerprint: bytes


class StoredSnapshot(msgspec.Struct, frozen=True):
    """What a snapshot holds."""

    timestamp: datetime
    created_on: datetime
    modified_on: datetime
    state: NetworkState
    chain: bytes


_encode = msgspec.json.Encoder().encode
_decode_record = msgspec.json.Decoder(StoredRecord).decode
_decode_snapshot = msgspec.json.Decoder(StoredSnapshot).decode
_decode_id = msgspec.json.Decoder(_StoredId).decode


def stored_fingerprint(state: bytes) -> tuple[str, bytes]:
    """(event id, fingerprint) of a stored log event, without decoding the event."""
    found = _decode_id(state)
    return found.message.id, found.fingerprint


# A row names its class by a stable name, not by the module the class lives in:
# the names the first stores were written with. Moving a module changes nothing
# that is written, and a build from before the move still reads every row. A
# row's topic never imports anything: only these classes can be named (a
# tampered row naming another is unreadable).
_TOPICS = {cls: f"domain.network:{cls.__name__}" for cls in (Installed, Recorded, Snapshot)}
_NETWORK_TOPIC = get_topic(Network)
KNOWN_TOPICS: dict[str, type] = {
    **{topic: cls for cls, topic in _TOPICS.items()},
    # The module paths too, as eventsourcing would write them.
    **{get_topic(cls): cls for cls in (Installed, Recorded, Snapshot, Network)},
    "domain.network:Network": Network,
}
for _topic, _cls in KNOWN_TOPICS.items():
    register_topic(_topic, _cls)  # for whatever in eventsourcing resolves a topic itself


class UnknownTopic(ValueError):
    """A stored row names a class that is not one of ctilink's own."""


def _topic_class(topic: str) -> type:
    """The class a stored topic names, among ctilink's own only."""
    try:
        return KNOWN_TOPICS[topic]
    except KeyError:
        raise UnknownTopic(f"the row names an unknown class {topic[:80]!r}") from None


class NetworkMapper(Mapper[str]):
    """A Mapper that encodes with msgspec instead of the generic JSON transcoder."""

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        """Encode a log event or a snapshot."""
        cls = type(domain_event)
        if cls is Snapshot:
            state = domain_event.state
            payload = _encode(
                StoredSnapshot(
                    timestamp=domain_event.timestamp,
                    created_on=state["_created_on"],
                    modified_on=state["_modified_on"],
                    state=state["state"],
                    chain=state["chain"],
                )
            )
        else:
            encoded = getattr(domain_event, "encoded", None)
            record: Any = (
                StoredRecord(
                    domain_event.timestamp,
                    domain_event.message,
                    domain_event.fingerprint,
                    domain_event.chain,
                )
                if encoded is None
                else _EncodedRecord(
                    domain_event.timestamp,
                    msgspec.Raw(encoded),
                    domain_event.fingerprint,
                    domain_event.chain,
                )
            )
            payload = _encode(record)
        return stored_event(
            domain_event.originator_id, domain_event.originator_version, _TOPICS[cls], payload
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        """Decode a log event or a snapshot; DamagedLog names a row that cannot be read."""
        try:
            return self._decode(stored_event)
        except Exception as error:  # whatever a damaged row holds: garbage, NULL, wrong type
            what = "snapshot" if "Snapshot" in str(stored_event.topic) else "row"
            raise DamagedLog(
                str(stored_event.originator_id),
                int(stored_event.originator_version or 0),
                f"its {what} cannot be decoded: {first_line(error)}",
            ) from None

    def _decode(self, stored_event: StoredEvent) -> Any:
        """Decode a log event or a snapshot."""
        cls = _topic_class(stored_event.topic)
        fields: dict[str, Any] = {
            "originator_id": stored_event.originator_id,
            "originator_version": stored_event.originator_version,
        }
        if cls is Snapshot:
            snap = _decode_snapshot(stored_event.state)
            fields["timestamp"] = snap.timestamp
            fields["topic"] = _NETWORK_TOPIC
            fields["state"] = {
                "_created_on": snap.created_on,
                "_modified_on": snap.modified_on,
                "state": snap.state,
                "chain": snap.chain,
            }
        else:
            record = _decode_record(stored_event.state)
            fields["timestamp"] = record.timestamp
            fields["message"] = record.message
            fields["fingerprint"] = record.fingerprint
            fields["chain"] = record.chain
            if cls is Installed:
                fields["originator_topic"] = _NETWORK_TOPIC
        return build(cls, **fields)


def first_line(error: BaseException) -> str:
    """An error's first line, or its class name when it says nothing."""
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__
