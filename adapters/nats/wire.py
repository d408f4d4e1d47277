"""What ctilink publishes and answers over NATS, as msgspec Structs."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated

import msgspec

from ctilink.adapters.store.queries.networks import Filters
from ctilink.domain import messages as m
from ctilink.domain.arrivals import Rejection
from ctilink.domain.mode import Mode
from ctilink.projections.overview import Overview
from ctilink.projections.providers import Provider
from ctilink.projections.status import ComponentRow, ModeView


class PublishedEvent(msgspec.Struct, frozen=True):
    """`ctilink.events.<network>.<type>`: one accepted event."""

    network: str
    position: int
    at: datetime
    actor: str
    event: m.Message


class ProvidersChanged(msgspec.Struct, frozen=True):
    """`ctilink.providers.<network>`: the provider set after an event that changed it."""

    network: str
    position: int
    providers: list[Provider]
    added: list[Provider]
    removed: list[Provider]


class StatusChanged(msgspec.Struct, frozen=True):
    """`ctilink.status.<network>`: mode and rows after an event that changed either."""

    network: str
    position: int
    mode: ModeView
    components: list[ComponentRow]
    changed: list[ComponentRow]


class RejectionMessage(msgspec.Struct, frozen=True, omit_defaults=True):
    """`ctilink.rejected.<network>`: an inbound event that was not appended, and why."""

    code: str
    message: str
    payload: str | None  # what was sent, as text (its first 64 KiB); None when not UTF-8
    network: str | None = None  # the network it named, if any
    id: str | None = None  # the event id it named, if any
    received: datetime | None = None  # when it was decided
    source: str | None = None  # where it came from: nats, file, api
    position: int | None = None  # its place there: stream sequence, line number
    truncated: bool = False  # only the first 64 KiB of the payload were kept
    payload_base64: str | None = None  # what was sent, when it is not UTF-8 text

    @classmethod
    def of(cls, rejection: Rejection) -> RejectionMessage:
        """The message for a kept rejection."""
        try:
            text: str | None = rejection.payload.decode("utf-8")
            raw = None
        except UnicodeDecodeError:
            text, raw = None, base64.b64encode(rejection.payload).decode("ascii")
        return cls(
            rejection.code,
            rejection.message,
            text,
            rejection.network,
            rejection.event_id,
            rejection.received,
            (rejection.source or "api").partition(":")[0],
            rejection.position,
            rejection.truncated,
            raw,
        )


class Omitted(msgspec.Struct, frozen=True):
    """In place of a message larger than the NATS server takes (its max_payload)."""

    omitted: str  # the Nats-Msg-Id of the message that was not sent
    size: int
    max_payload: int


class Query(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A request to `ctilink.api.status` or `ctilink.api.directory`."""

    network: m.Name
    at: int | None = None


PAGE_LIMIT = 10_000  # networks in one page of `ctilink.api.networks`, at most
DEFAULT_PAGE = 1_000


class NetworksQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """A request to `ctilink.api.networks`: a page of networks, sorted by name, and filters."""

    after: m.Name | None = None  # the page starts after this name
    limit: Annotated[int, msgspec.Meta(ge=1, le=PAGE_LIMIT)] = DEFAULT_PAGE
    effective: Mode | None = None
    restart_pending: bool | None = None
    name_prefix: m.Name | None = None

    def filters(self, *, unpaged: bool = False) -> Filters:
        """The store's filters for this page (`unpaged`: for every page at once)."""
        return Filters(
            after=self.after,
            limit=None if unpaged else self.limit,
            effective=None if self.effective is None else self.effective.value,
            restart_pending=self.restart_pending,
            name_prefix=self.name_prefix,
        )


class NetworkSummary(msgspec.Struct, frozen=True):
    """One item of `ctilink.api.networks`."""

    network: str
    position: int
    effective: str

    @classmethod
    def of(cls, line: Overview) -> NetworkSummary:
        """The listing's item for a network's line."""
        return cls(line.network, line.position, line.effective)


class IngestReply(msgspec.Struct, frozen=True):
    """The answer of `ctilink.api.ingest`, as the CLI's --json line has it."""

    outcome: str
    position: int | None
    code: str | None
    message: str | None


encode = msgspec.json.Encoder().encode
