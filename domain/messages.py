"""The inbound vocabulary of SPEC §2 as one tagged union of msgspec Structs."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Literal

import msgspec

# SPEC §1: names are safe as one NATS subject token. \Z, not $: `$` also
# matches before a final newline, which would let "ab\n" through.
Name = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}\Z")]
NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def is_name(text: object) -> bool:
    """Whether a value is a network or system name (SPEC §1)."""
    return isinstance(text, str) and NAME.fullmatch(text) is not None


EventId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
# I8: one to four dot-separated numbers (of at most 9 digits: compared as ints).
Version = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,9}(\.[0-9]{1,9}){0,3}\Z")]
Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]

Platform = Literal["linux_server_edition", "application_server_ip500v2", "windows", "ucm"]
Role = Literal["primary", "secondary", "expansion"]
SystemPlatform = Literal["linux", "ip500v2"]
LinkKind = Literal["csta", "dsml"]


DEFAULT_ACTOR = "system"


# gc=False: these hold only strings, numbers and one another, never a cycle, so the
# garbage collector need not track them (a network holds thousands of entries).
class Entry(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True, gc=False):
    """One system-directory entry."""

    # 1–256 characters (I1, v1.1): checked by decoding.py, not by the type, so that a
    # log written before the bound (longer names were valid then) is still read.
    name: str
    number: str
    ex_directory: bool = False


class PersonalEntry(msgspec.Struct, forbid_unknown_fields=True, frozen=True, gc=False):
    """One personal-directory entry."""

    name: str
    number: str


class Event(
    msgspec.Struct,
    tag_field="type",
    forbid_unknown_fields=True,
    frozen=True,
    kw_only=True,
    omit_defaults=True,
    gc=False,
):
    """The envelope every inbound event carries."""

    id: EventId
    network: Name
    at: Timestamp | None = None
    actor: Text = DEFAULT_ACTOR

    def __post_init__(self) -> None:
        """Make a sent `"actor": "system"` the default object itself."""
        # omit_defaults compares string defaults by identity, so without this the
        # same content would encode two ways and I3 would call it a conflict.
        if self.actor == DEFAULT_ACTOR and self.actor is not DEFAULT_ACTOR:
            msgspec.structs.force_setattr(self, "actor", DEFAULT_ACTOR)


class PortalInstalled(Event, tag="portal_installed"):
    platform: Platform
    upgraded_from: Version | None = None
    auto_provisioning: bool = True


class PortalRestarted(Event, tag="portal_restarted"):
    pass


class CentralCtiLinkSet(Event, tag="central_cti_link_set"):
    enabled: bool


class AutoProvisioningSet(Event, tag="auto_provisioning_set"):
    enabled: bool


class ConvertedToCentral(Event, tag="converted_to_central"):
    pass


class ProviderConfigured(Event, tag="provider_configured"):
    kind: LinkKind
    system: Name


class ProviderRemoved(Event, tag="provider_removed"):
    kind: LinkKind
    system: Name


class SystemAdded(Event, tag="system_added"):
    system: Name
    role: Role
    platform: SystemPlatform
    address: Text


class SystemRemoved(Event, tag="system_removed"):
    system: Name


class ResilienceSet(Event, tag="resilience_set"):
    enabled: bool


class Failover(Event, tag="failover"):
    system: Name


class Failback(Event, tag="failback"):
    system: Name


class LinkChanged(Event, tag="link_changed"):
    system: Name
    component: LinkKind
    up: bool


class VoicemailDiscovered(Event, tag="voicemail_discovered"):
    address: Text
    system: Name


class UserHomed(Event, tag="user_homed"):
    user: Text
    system: Name


class UserRemoved(Event, tag="user_removed"):
    user: Text


class DirectoryChanged(Event, tag="directory_changed"):
    system: Name
    # D5's limit of 10,000 is a rule (too_many_entries), not a schema check.
    entries: tuple[Entry, ...]


class PersonalDirectoryChanged(Event, tag="personal_directory_changed"):
    system: Name
    user: Text
    # D3's limit of 250 is a rule (too_many_entries), not a schema check.
    entries: tuple[PersonalEntry, ...]


Message = (
    PortalInstalled
    | PortalRestarted
    | CentralCtiLinkSet
    | AutoProvisioningSet
    | ConvertedToCentral
    | ProviderConfigured
    | ProviderRemoved
    | SystemAdded
    | SystemRemoved
    | ResilienceSet
    | Failover
    | Failback
    | LinkChanged
    | VoicemailDiscovered
    | UserHomed
    | UserRemoved
    | DirectoryChanged
    | PersonalDirectoryChanged
)

EVENT_TYPES: tuple[str, ...] = tuple(
    cls.__struct_config__.tag
    for cls in Message.__args__  # type: ignore[attr-defined]
)

_decoder = msgspec.json.Decoder(Message)
_encoder = msgspec.json.Encoder()


def decode(raw: bytes | str) -> Message:
    """Decode and validate one event; raises msgspec.ValidationError or DecodeError."""
    return _decoder.decode(raw)


def encode(message: Message) -> bytes:
    """Encode one event in the SPEC §2 form."""
    return _encoder.encode(message)


def type_of(message: Message) -> str:
    """The event's `type` tag."""
    return type(message).__struct_config__.tag  # type: ignore[return-value]


class Content:
    """An event's content in canonical form, encoded once for both of its digests."""

    __slots__ = ("at", "body", "fingerprint")

    def __init__(self, message: Message, encoded: bytes | None = None) -> None:
        if message.at is None:
            # `encoded`: the event as decoding already encoded it, if it was.
            self.body = encoded if encoded is not None else _encoder.encode(message)
            self.at = b""
        else:
            # `at` apart and in UTC: the same instant in another offset is the same content.
            self.body = _encoder.encode(msgspec.structs.replace(message, at=None))
            self.at = _encoder.encode(message.at.astimezone(UTC))
        # I3 compares contents as decoded: this digest stands for that comparison.
        self.fingerprint = hashlib.blake2b(self.body + b"@" + self.at, digest_size=16).digest()

    @property
    def whole(self) -> bytes | None:
        """The event encoded whole, when its body is that (no `at` set apart)."""
        return self.body if not self.at else None

    def logged(self, received: datetime) -> bytes:
        """The event as the log keeps it, `at` filled in: what the hash chain covers."""
        return self.body + b"@" + (self.at or _utc_json(received))


@lru_cache(maxsize=4)
def _utc_json(moment: datetime) -> bytes:
    """A time as JSON in UTC; cached, since a whole batch shares its receive time."""
    return _encoder.encode(moment.astimezone(UTC))
