"""Liveness, readiness and the scrape-time figures of a running `serve`.

Every store question of the probes runs on one thread of their own, bounded in
time; while one is still waiting on a store that hangs, the next probe does not
queue another behind it but counts the store as away, so that probes never
take the threads the writer and the consumers need.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec

from ctilink.adapters.nats.partitions import PartitionState, survey
from ctilink.adapters.nats.publisher import TRACKING_NAME
from ctilink.adapters.ops.metrics import LiveState, Metrics, PerNetwork
from ctilink.adapters.store.queries.listing import each_line
from ctilink.adapters.store.queries.log import events_after
from ctilink.adapters.store.queries.networks import Filters, network_totals
from ctilink.projections.status import status

CHECK_SECONDS = 3.0  # a store or NATS answer slower than this counts as away
COMMIT_STUCK_SECONDS = 10.0  # a commit waiting longer means the store cannot be written
# A partition nobody pulls for longer than this makes every instance not ready
# (a handover takes at most the consumers' priority timeout, 5 s).
UNCONSUMED_GRACE_SECONDS = 10.0
SURVEY_SECONDS = 1.0  # the partitions' survey is asked of NATS at most this often


class Readiness(msgspec.Struct, frozen=True):
    """`/readyz`: what is ready, and what is not (a JSON body either way)."""

    ready: bool
    store: bool
    nats: bool
    partitions: bool  # this instance pulls every partition
    not_ready: list[str]
    # Partitions no instance has pulled for longer than the grace period (cluster-wide).
    unconsumed: list[int] = []


class StoreFigures(msgspec.Struct, frozen=True):
    """What one scrape reads from the store, in one go."""

    totals: list[tuple[str, int, int, int, int, int]]
    lag: int


class Operations:
    """What `/readyz` and `/metrics` read: the store, NATS and the partitions of one `serve`."""

    def __init__(
        self,
        metrics: Metrics,
        service: Any,
        nc: Any,
        partitions: Any,
        *,
        per_network: bool = False,
        ingestor: Any = None,
    ) -> None:
        self.metrics = metrics
        self.per_network = per_network
        self.service = service  # a read-only service of the console's
        self.nc = nc
        self.partitions = partitions
        self.ingestor = ingestor  # its commit in progress tells whether the store takes writes
        self.tracking = service.factory.tracking_recorder()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ctilink-probes")
        self._asking: asyncio.Future[Any] | None = None
        self._survey: list[PartitionState] = []
        self._surveyed = -SURVEY_SECONDS  # monotonic time of the last survey
        self._unconsumed_since: dict[int, float] = {}  # partition -> monotonic time first seen
        metrics.live = LiveState()

    def close(self) -> None:
        """Let the probe thread go (a question still waiting is abandoned)."""
        self._thread.shutdown(wait=False, cancel_futures=True)

    async def _store(self, work: Any, *args: Any) -> Any:
        """One store question on the probes' thread, in time (TimeoutError: away or busy)."""
        if self._asking is not None and not self._asking.done():
            raise TimeoutError("the store has not answered the last probe yet")
        loop = asyncio.get_running_loop()
        self._asking = loop.run_in_executor(self._thread, work, *args)
        return await asyncio.wait_for(asyncio.shield(self._asking), CHECK_SECONDS)

    def _commit_stuck(self) -> bool:
        """Whether a commit has waited on the store for too long (it holds a lock, say)."""
        since = getattr(self.ingestor, "committing_since", None)
        return since is not None and time.monotonic() - since > COMMIT_STUCK_SECONDS

    async def store_answers(self) -> bool:
        """Whether the store answers a small query in time and takes commits."""
        if self._commit_stuck():
            return False
        try:
            await self._store(self.service.recorder.max_notification_id)
        except Exception:
            return False
        return True

    async def survey(self) -> list[PartitionState]:
        """Every partition's state from NATS (at most once a second; [] while NATS is away)."""
        now = time.monotonic()
        if now - self._surveyed >= SURVEY_SECONDS:
            self._surveyed = now
            try:
                found = await asyncio.wait_for(
                    survey(self.nc, self.partitions.count), CHECK_SECONDS
                )
            except Exception:
                found = []
            self._survey = found
            for state in found:
                if state.consumed:
                    self._unconsumed_since.pop(state.partition, None)
                else:
                    self._unconsumed_since.setdefault(state.partition, now)
        return self._survey

    async def unconsumed(self) -> list[int]:
        """Partitions no instance has pulled for longer than the grace period."""
        await self.survey()
        now = time.monotonic()
        return sorted(
            partition
            for partition, since in self._unconsumed_since.items()
            if now - since > UNCONSUMED_GRACE_SECONDS
        )

    async def readiness(self) -> Readiness:
        """Ready when the store answers, NATS is connected and every partition is pulled."""
        store = await self.store_answers()
        nats = bool(self.nc.is_connected)
        pulling = self.partitions.rounds > 0 and self.partitions.pulling
        unconsumed = await self.unconsumed() if nats else []
        checks = (
            ("store", store),
            ("nats", nats),
            ("partitions", pulling),
            ("unconsumed partitions", not unconsumed),
        )
        missing = [name for name, ok in checks if not ok]
        return Readiness(not missing, store, nats, pulling, missing, unconsumed)

    async def refresh(self) -> None:
        """Read what the scrape-time gauges show (at most about 2 x CHECK_SECONDS)."""
        live = self.metrics.live
        assert live is not None
        live.nats_connected = int(bool(self.nc.is_connected))
        live.reconnects = int(self.nc.stats.get("reconnects", 0))
        live.partitions_held = len(self.partitions.held)
        surveyed, figures = await asyncio.gather(
            self.survey(), self._figures(), return_exceptions=True
        )
        states = surveyed if isinstance(surveyed, list) else []
        live.pending = {state.partition: state.pending for state in states}
        live.oldest_inbound = {state.partition: state.oldest_seconds for state in states}
        live.unconsumed = len(await self.unconsumed()) if states else None
        if isinstance(figures, StoreFigures) and not self._commit_stuck():
            live.store_up = 1
            live.networks = {mode: row[0] for mode, *row in figures.totals}
            states = ("available", "unavailable", "not_configured")
            live.components = {
                state: sum(row[n + 2] for row in figures.totals) for n, state in enumerate(states)
            }
            live.restart_pending = sum(row[5] for row in figures.totals)
            live.publisher_lag = figures.lag
            if self.per_network:  # opt-in, and as long as the folds take: no time limit
                loop = asyncio.get_running_loop()
                live.per_network = await loop.run_in_executor(self._thread, self._per_network)
        else:  # the store is away: no figure from it rather than a stale one
            live.store_up = 0
            live.networks, live.components, live.restart_pending = {}, {}, 0
            live.publisher_lag = live.per_network = None

    async def _figures(self) -> StoreFigures:
        """Everything a scrape reads from the store, as one question."""
        return await self._store(self._read_figures)

    def _read_figures(self) -> StoreFigures:
        recorder = self.service.recorder
        published = self.tracking.max_tracking_id(TRACKING_NAME) or 0
        return StoreFigures(network_totals(recorder), events_after(recorder, published))

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
