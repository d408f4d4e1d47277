"""Liveness, readiness and the scrape-time figures of a running `serve`."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec

from ctilink.adapters.nats.publisher import TRACKING_NAME
from ctilink.adapters.ops.metrics import LiveState, Metrics, PerNetwork
from ctilink.adapters.store.listing import each_line
from ctilink.adapters.store.network_index import Filters
from ctilink.projections.status import status

CHECK_SECONDS = 3.0  # a store or NATS call slower than this counts as away


class Readiness(msgspec.Struct, frozen=True):
    """`/readyz`: what is ready, and what is not (a JSON body either way)."""

    ready: bool
    store: bool
    nats: bool
    partitions: bool  # bound to its share, or standing by with none to take
    not_ready: list[str]


class Operations:
    """What `/readyz` and `/metrics` read: the store, NATS and the partitions of one `serve`."""

    def __init__(
        self, metrics: Metrics, service: Any, nc: Any, partitions: Any, *, per_network: bool = False
    ) -> None:
        self.metrics = metrics
        self.per_network = per_network
        self.service = service  # a read-only service of the console's
        self.nc = nc
        self.partitions = partitions
        self.tracking = service.factory.tracking_recorder()
        metrics.live = LiveState()

    async def _store(self, work: Any, *args: Any) -> Any:
        """A store call in a thread, bounded in time (TimeoutError: the store is away)."""
        return await asyncio.wait_for(asyncio.to_thread(work, *args), CHECK_SECONDS)

    async def store_answers(self) -> bool:
        """Whether the store answers a small query in time."""
        try:
            await self._store(self.service.recorder.max_notification_id)
        except Exception:
            return False
        return True

    async def readiness(self) -> Readiness:
        """Ready when the store answers, NATS is connected and the partitions are settled."""
        store = await self.store_answers()
        nats = bool(self.nc.is_connected)
        bound = self.partitions.rounds > 0
        missing = [
            name for name, ok in (("store", store), ("nats", nats), ("partitions", bound)) if not ok
        ]
        return Readiness(not missing, store, nats, bound, missing)

    async def refresh(self) -> None:
        """Read what the scrape-time gauges show."""
        live = self.metrics.live
        assert live is not None
        live.store_up = int(await self.store_answers())
        live.nats_connected = int(bool(self.nc.is_connected))
        live.reconnects = int(self.nc.stats.get("reconnects", 0))
        owned = dict(self.partitions.owned)
        live.partitions_held = len(owned)
        live.pending = await self._pending(owned)
        if live.store_up:
            with contextlib.suppress(Exception):  # the store went away meanwhile
                await self._from_store(live)

    async def _pending(self, owned: dict[int, Any]) -> dict[int, int]:
        """Each held partition's pending and ack-pending messages (left out if NATS is away)."""
        if not self.nc.is_connected:
            return {}  # nothing to ask, and a scrape must not wait for NATS to come back
        js = self.nc.jetstream()

        async def one(partition: int, held: Any) -> tuple[int, int] | None:
            consumer = getattr(held, "worker", None)
            stream, durable = getattr(consumer, "stream", None), getattr(consumer, "durable", None)
            if stream is None or durable is None:
                return None
            with contextlib.suppress(Exception):
                info = await asyncio.wait_for(js.consumer_info(stream, durable), CHECK_SECONDS)
                return partition, int(info.num_pending or 0) + int(info.num_ack_pending or 0)
            return None

        answers = await asyncio.gather(*(one(p, held) for p, held in owned.items()))
        return dict(answer for answer in answers if answer is not None)

    async def _from_store(self, live: LiveState) -> None:
        """Networks, component rows, restarts pending and the publisher's lag."""
        recorder = self.service.recorder
        totals = await self._store(recorder.network_totals)
        live.networks = {mode: row[0] for mode, *row in totals}
        states = ("available", "unavailable", "not_configured")
        live.components = {
            state: sum(row[n + 2] for row in totals) for n, state in enumerate(states)
        }
        live.restart_pending = sum(row[5] for row in totals)
        published = await self._store(self.tracking.max_tracking_id, TRACKING_NAME)
        live.publisher_lag = await self._store(recorder.events_after, published or 0)
        if self.per_network:
            live.per_network = await asyncio.to_thread(self._per_network)

    def _per_network(self) -> PerNetwork:
        """Every network's position and component rows (a fold of each: opt-in)."""
        positions: dict[str, int] = {}
        available: dict[tuple[str, str, str], int] = {}
        for line in each_line(self.service, Filters(), []):
            positions[line.network] = line.position
            try:
                # At the line's position: a fold of its own, sharing no cache with the
                # console's reader thread.
                state, position = self.service.state_at(line.network, line.position)
            except Exception:  # a damaged log: its position stands, its rows are left out
                continue
            for row in status(state, position).components:
                available[(line.network, row.system, row.component)] = int(row.state == "available")
        return PerNetwork(positions, available)
