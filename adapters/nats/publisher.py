"""Publishes the log to CTILINK_OUT after commit, exactly once, from a position it stores."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from eventsourcing.persistence import Tracking, TrackingRecorder
from nats.aio.client import Client
from nats.errors import Error as NatsError

from ctilink.adapters.nats.batch import BatchPublisher, PublishFailed
from ctilink.adapters.nats.wire import ProvidersChanged, PublishedEvent, StatusChanged, encode
from ctilink.domain import messages as m
from ctilink.domain.network import Installed, Recorded, recorded_at
from ctilink.domain.service import NetworkService
from ctilink.domain.state import NetworkState, step
from ctilink.projections.changes import compare
from ctilink.projections.status import Status, status

TRACKING_NAME = "ctilink.publisher"
PAGE = 1000
ACK_TIMEOUT = 10.0

Outgoing = tuple[str, bytes, str]  # subject, payload, Nats-Msg-Id
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

    def position(self) -> int:
        """The last notification id whose messages are all in CTILINK_OUT."""
        return self.tracking.max_tracking_id(TRACKING_NAME) or 0

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
        """Publish every position after the stored one; returns how many pages."""
        count = 0
        while True:
            start = self.position()
            last, outgoing = await asyncio.to_thread(self._prepare, start)
            if last is None:
                return count
            await self._send(outgoing)
            # Recorded only after JetStream stored every message: a crash before
            # this line republishes them, and the duplicate window drops the copies.
            done = Tracking(TRACKING_NAME, last)
            await asyncio.to_thread(self.tracking.insert_tracking, done)  # it syncs
            count += 1

    def _prepare(self, start: int) -> tuple[int | None, list[Outgoing]]:
        """The messages of the next page of the log, and its last notification id."""
        page = self.service.recorder.select_notifications(
            start=start, limit=PAGE, inclusive_of_start=False
        )
        if not page:
            return None, []
        outgoing: list[Outgoing] = []
        for notification in page:
            event = self.service.mapper.to_domain_event(notification)
            outgoing += self._messages(event)
        return page[-1].id, outgoing

    def _messages(self, event: Installed | Recorded) -> list[Outgoing]:
        """The outbound messages for one log position."""
        message = event.message
        network, position = message.network, event.originator_version
        key = f"{network}:{position}"
        published = PublishedEvent(network, position, recorded_at(event), message.actor, message)
        out = [(f"ctilink.events.{network}.{m.type_of(message)}", encode(published), key)]
        state, before = self._state_before(network, position)
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
        out.append((f"ctilink.providers.{network}", encode(body), f"{key}:providers"))
    if changed.mode or changed.components:
        rows = [row.after for row in changed.components if row.after is not None]
        body = StatusChanged(network, position, after.mode, after.components, rows)
        out.append((f"ctilink.status.{network}", encode(body), f"{key}:status"))
    return out
