"""Publishes the log to CTILINK_OUT after commit, exactly once, from a position it stores."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from eventsourcing.persistence import Tracking, TrackingRecorder
from nats.aio.client import Client
from nats.errors import Error as NatsError

from ctilink.adapters.nats.batch import BatchPublisher, Headers, PublishFailed, safe_header
from ctilink.adapters.nats.wire import (
    Omitted,
    ProvidersChanged,
    PublishedEvent,
    RejectionMessage,
    StatusChanged,
    encode,
)
from ctilink.adapters.store.queries.rejections import rejections
from ctilink.domain import messages as m
from ctilink.domain.application import NetworkService
from ctilink.domain.arrivals import Rejection
from ctilink.domain.errors import DamagedLog
from ctilink.domain.network import Installed, Recorded, recorded_at
from ctilink.domain.state import NetworkState, step
from ctilink.projections.changes import compare
from ctilink.projections.status import Status, status

TRACKING_NAME = "ctilink.publisher"  # the log's notification ids
REJECTIONS_TRACKING_NAME = "ctilink.publisher.rejections"  # the rejections' ids
PAGE = 1000
ACK_TIMEOUT = 10.0

Outgoing = tuple[str, bytes, Headers]  # subject, payload, headers (Nats-Msg-Id among them)
UNNAMED = "~"  # the subject token of rejections that name no network (no name has a ~)
Page = tuple[int | None, list[Outgoing]]  # the page's last id (None: no page), its messages
# What publishing raises while NATS is away (nats.errors.Error: e.g. the client's
# reconnect buffer is full).
NATS_AWAY = (PublishFailed, TimeoutError, OSError, NatsError)


class Publisher:
    """Turns each logged position into its outbound messages, in position order."""

    def __init__(
        self,
        service: NetworkService,
        nc: Client,
        log: Callable[[str], None] = lambda _: None,
        poll: float = 0.5,
    ) -> None:
        self.service = service
        self.nc = nc
        self.log = log
        self.tracking: TrackingRecorder = service.factory.tracking_recorder()
        self.states: dict[str, tuple[NetworkState, Status]] = {}
        self.wake = asyncio.Event()
        self.poll = poll  # how long to wait for a wake before looking anyway
        self.batch: BatchPublisher | None = None
        self._store_identity: str | None = None

    def position(self, name: str = TRACKING_NAME) -> int:
        """The last notification (or rejection) id whose messages are all in CTILINK_OUT."""
        return self.tracking.max_tracking_id(name) or 0

    async def run(self, stop: asyncio.Event) -> None:
        """Publish whatever is new, whenever woken, until stopped (then once more)."""
        while not stop.is_set():
            try:
                await self.publish_pending()
            except NATS_AWAY as error:
                # NATS is away: the same messages go again, with the same ids, once
                # it is back (not before: they would pile up in the client's buffer).
                self.log(f"publisher waiting for NATS ({type(error).__name__})")
                await self._until_connected(stop)
                continue
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=self.poll)
        try:
            await self.publish_pending()
        except NATS_AWAY:
            self.log("publisher stopped with positions left to publish at the next start")

    async def _until_connected(self, stop: asyncio.Event) -> None:
        """Wait until the connection is back (or `stop`), then a moment more."""
        while not self.nc.is_connected and not stop.is_set():
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)

    async def publish_pending(self) -> int:
        """Publish every position, and every rejection, after the stored ones; pages sent."""
        count = 0
        while True:
            sent = await self._publish_page(TRACKING_NAME, self._event_page)
            sent += await self._publish_page(REJECTIONS_TRACKING_NAME, self._rejection_page)
            if not sent:
                return count
            count += sent

    async def _publish_page(self, name: str, prepare: Callable[[int], Page]) -> int:
        """Publish the next page of one log; 1 if there was one, else 0."""
        last, outgoing = await asyncio.to_thread(lambda: prepare(self.position(name)))
        if last is None:
            return 0
        await self._send([self._fitting(message) for message in outgoing])
        # Recorded only after JetStream stored every message: a crash before
        # this line republishes them, and the duplicate window drops the copies.
        await asyncio.to_thread(self.tracking.insert_tracking, Tracking(name, last))  # it syncs
        return 1

    def _event_page(self, start: int) -> Page:
        """The messages of the next page of the log, and its last notification id."""
        page = self.service.recorder.select_notifications(
            start=start, limit=PAGE, inclusive_of_start=False
        )
        if not page:
            return None, []
        outgoing: list[Outgoing] = []
        for notification in page:
            try:
                event = self.service.mapper.to_domain_event(notification)
            except DamagedLog as error:  # the rest of the log is published all the same
                self.log(f"publisher skipped a position: {error}")
                continue
            outgoing += self._messages(event)
        return page[-1].id, outgoing

    def _rejection_page(self, start: int) -> Page:
        """The next page of rejections (from NATS, files and the API alike), and its last id."""
        page = rejections(self.service.recorder, after=start, limit=PAGE)
        if not page:
            return None, []
        store = self.store_identity()
        return page[-1][0], [rejection_message(store, row, r) for row, r in page]

    def store_identity(self) -> str:
        """The store's own name for itself (made once, kept in the store)."""
        if self._store_identity is None:
            self._store_identity = self.service.recorder.store_identity()
        return self._store_identity

    def _fitting(self, message: Outgoing) -> Outgoing:
        """The message, or a short notice in its place when it is larger than NATS takes."""
        subject, payload, headers = message
        msg_id = headers["Nats-Msg-Id"]
        # The headers and the protocol line take about as many bytes as the ids in them.
        if len(payload) + 2 * len(msg_id) + len(subject) + 64 <= self.nc.max_payload:
            return message
        self.log(f"publisher: {msg_id} is {len(payload)} bytes, too large for NATS; a notice sent")
        notice = Omitted(msg_id, len(payload), self.nc.max_payload)
        return subject, encode(notice), {"Nats-Msg-Id": msg_id}

    def _messages(self, event: Installed | Recorded) -> list[Outgoing]:
        """The outbound messages for one log position."""
        message = event.message
        network, position = message.network, event.originator_version
        key = f"{network}:{position}"
        published = PublishedEvent(network, position, recorded_at(event), message.actor, message)
        subject = f"ctilink.events.{network}.{m.type_of(message)}"
        out = [(subject, encode(published), {"Nats-Msg-Id": key})]
        try:
            state, before = self._state_before(network, position)
        except DamagedLog as error:  # no state to compare: the event alone goes out
            self.log(f"publisher sent {key} without status: {error}")
            self.states.pop(network, None)
            return out
        state = step(state, message)
        after = status(state, position)
        self.states[network] = (state, after)
        out += changes(network, position, before, after, key)
        return out

    def _state_before(
        self, network: str, position: int
    ) -> tuple[NetworkState | None, Status | None]:
        """The network's state and status right before `position`."""
        held = self.states.get(network)
        if held is not None and held[1].position == position - 1:
            return held
        if position == 1:
            return None, None
        state, _ = self.service.state_at(network, position - 1)
        return state, status(state, position - 1)

    async def _send(self, outgoing: list[Outgoing]) -> None:
        """Publish and wait until JetStream has stored (or deduplicated) every message."""
        if self.batch is None:
            self.batch = BatchPublisher(self.nc)
            await self.batch.start()
        await self.batch.publish(outgoing, timeout=ACK_TIMEOUT)


def changes(
    network: str, position: int, before: Status | None, after: Status, key: str
) -> list[Outgoing]:
    """The providers and status messages for a position, when it changed them."""
    out: list[Outgoing] = []
    changed = compare(before, after)
    if changed.providers.added or changed.providers.removed:
        body = ProvidersChanged(
            network, position, after.providers, changed.providers.added, changed.providers.removed
        )
        out.append(
            (f"ctilink.providers.{network}", encode(body), {"Nats-Msg-Id": f"{key}:providers"})
        )
    if changed.mode or changed.components:
        rows = [row.after for row in changed.components if row.after is not None]
        body = StatusChanged(network, position, after.mode, after.components, rows)
        out.append((f"ctilink.status.{network}", encode(body), {"Nats-Msg-Id": f"{key}:status"}))
    return out


def rejection_message(store: str, row: int, rejection: Rejection) -> Outgoing:
    """A kept rejection as published: its subject, body and headers."""
    network = rejection.network if m.is_name(rejection.network) else UNNAMED
    headers = {
        # The store's identity of the rejection, unique forever: a '.' that no
        # network name has keeps it apart from the events' `<network>:<position>`.
        "Nats-Msg-Id": f"rejected.{store}.{row}",
        "Ctilink-Code": rejection.code,
        "Ctilink-Time": rejection.received.isoformat(),
    }
    if rejection.network is not None:
        headers["Ctilink-Network"] = safe_header(rejection.network)
    if rejection.event_id is not None:
        headers["Ctilink-Event-Id"] = safe_header(rejection.event_id)
    return f"ctilink.rejected.{network}", encode(RejectionMessage.of(rejection)), headers
