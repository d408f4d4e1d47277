"""The service's metrics (Prometheus text format): names, types and labels are a contract.

Counters and the batch histogram are kept as the service works; the gauges that
describe the store (networks by effective mode, component rows by state,
restarts pending, the publisher's lag) and NATS (connection, reconnects,
partitions, pending messages) are read when Prometheus scrapes.
"""

from __future__ import annotations

import platform
from collections import Counter as Tally
from collections.abc import Iterable, Sequence
from importlib.metadata import version
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ctilink.domain.arrivals import Arrival
from ctilink.domain.decision import Outcome
from ctilink.domain.errors import Code
from ctilink.domain.mode import Mode

OUTCOMES = ("accepted", "duplicate", "rejected")  # "decided" (a redelivery) is not counted again
SOURCES = ("nats", "api")
ENDPOINTS = ("status", "directory", "networks", "ingest")
API_CODES = ("200", "400", "404", "413", "500", "503")
MODES = tuple(mode.value for mode in Mode)
STATES = ("available", "unavailable", "not_configured")
PARTITIONS = 12
BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The counters and histograms of one `serve` process, on a registry of its own."""

    def __init__(self, store_kind: str = "sqlite") -> None:
        # No `_created` series beside every counter: the exposed names are a contract.
        disable_created_metrics()
        self.registry = CollectorRegistry()
        self.events = Counter(
            "ctilink_events",
            "Inbound events decided, by outcome and by source (nats, api)",
            ["outcome", "source"],
            registry=self.registry,
        )
        self.rejections = Counter(
            "ctilink_rejections",
            "Rejected inbound events, by code (SPEC error codes, invalid included)",
            ["code"],
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "ctilink_ingest_batch_seconds",
            "Seconds to decide and commit one batch",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.api_seconds = Histogram(
            "ctilink_api_request_seconds",
            "Seconds to answer a ctilink.api request, by endpoint and code",
            ["endpoint", "code"],
            registry=self.registry,
        )
        # Every label set from the start, at 0: an alert on a rate or a ratio
        # needs the series before the first event of its kind.
        for outcome in OUTCOMES:
            for source in SOURCES:
                self.events.labels(outcome, source)
        for code in Code:
            self.rejections.labels(code.value)
        for endpoint in ENDPOINTS:
            for answer in API_CODES:
                self.api_seconds.labels(endpoint, answer)
        info = Gauge(
            "ctilink_build_info",
            "Always 1: the ctilink version, its Python and the kind of store",
            ["version", "python", "store"],
            registry=self.registry,
        )
        info.labels(version("ctilink"), platform.python_version(), store_kind).set(1)
        # The client library's own: the process (memory, CPU, file descriptors) and Python.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.registry.register(GC_COLLECTOR)
        self.live: LiveState | None = None  # what a scrape reads (set once serving)
        self.registry.register(_Scraped(self))

    def count(self, kinds: Sequence[str], outcomes: Sequence[Outcome]) -> None:
        """Count a committed batch's outcomes by their sources' kinds (tallied first: a label
        lookup per kind, not per event)."""
        tally = Tally(
            (outcome.outcome, kind) for kind, outcome in zip(kinds, outcomes, strict=True)
        )
        for (outcome, source), n in tally.items():
            if outcome in OUTCOMES:
                self.events.labels(outcome, source).inc(n)
        codes = Tally(o.code for o in outcomes if o.outcome == "rejected" and o.code)
        for code, n in codes.items():
            self.rejections.labels(code).inc(n)

    def text(self) -> bytes:
        """The exposition, as Prometheus scrapes it."""
        return generate_latest(self.registry)

    def stats(self, endpoint: str) -> dict[str, Any]:
        """One endpoint's figures as plain data, for its `$SRV.STATS` entry: its answers by
        code (count and seconds), and for `ingest` the events it decided by outcome."""
        found: dict[str, Any] = {}
        for family in (self.api_seconds, self.events):
            for metric in family.collect():
                for sample in metric.samples:
                    labels = sample.labels
                    if labels.get("endpoint", endpoint) != endpoint:
                        continue
                    if "source" in labels and (endpoint != "ingest" or labels["source"] != "api"):
                        continue
                    if not sample.name.endswith(("_total", "_count", "_sum")):
                        continue
                    shown = ",".join(
                        f"{k}={v}"
                        for k, v in sorted(labels.items())
                        if k not in ("endpoint", "source")
                    )
                    found[f"{sample.name}{{{shown}}}" if shown else sample.name] = sample.value
        return found


def source_kind(arrival: Any) -> str:
    """`nats` or `api` (or `file`), from where an arrival came."""
    source = arrival.source if isinstance(arrival, Arrival) else None
    if source is None:
        return "api"
    return source.partition(":")[0]


class PerNetwork:
    """Per-network series (only with --metrics-per-network)."""

    def __init__(
        self, positions: dict[str, int], available: dict[tuple[str, str, str], int]
    ) -> None:
        self.positions = positions  # network -> its log position
        self.available = available  # (network, system, component) -> 1 when available


class LiveState:
    """What the scrape-time gauges are read from; refreshed before each scrape."""

    def __init__(self) -> None:
        self.store_up = 0
        self.nats_connected = 0
        self.reconnects = 0
        self.partitions_held = 0
        self.pending: dict[int, int] = {}  # partition -> pending + ack pending (cluster-wide)
        self.oldest_inbound: dict[int, float] = {}  # partition -> age of its oldest message
        self.unconsumed: int | None = None  # partitions nobody pulled past the grace period
        self.publisher_lag: int | None = None
        self.networks: dict[str, int] = {}  # effective mode -> networks
        self.components: dict[str, int] = {}  # state -> component rows
        self.restart_pending = 0
        self.per_network: PerNetwork | None = None


class _Scraped(Collector):
    """The gauges read at scrape time from LiveState."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Any]:
        live = self.metrics.live
        if live is None:
            return
        yield _gauge("ctilink_store_up", "1 when the store answers", live.store_up)
        yield _gauge("ctilink_nats_connected", "1 when connected to NATS", live.nats_connected)
        reconnects = CounterMetricFamily(
            "ctilink_nats_reconnects", "Reconnections to NATS since the start"
        )
        reconnects.add_metric([], live.reconnects)
        yield reconnects
        yield _gauge(
            "ctilink_partitions_held",
            "Inbound partitions the NATS server delivers to this instance now (pinned)",
            live.partitions_held,
        )
        if live.unconsumed is not None:
            yield _gauge(
                "ctilink_partitions_unconsumed",
                "Inbound partitions no instance has pulled for longer than the grace period",
                live.unconsumed,
            )
        if live.pending:  # asked of NATS: none while it is away
            yield _labelled(
                "ctilink_inbound_pending",
                "Inbound messages not yet taken or not yet acked, by partition (all instances)",
                ["partition"],
                {(str(p),): live.pending.get(p, 0) for p in range(PARTITIONS)},
            )
            yield _labelled(
                "ctilink_inbound_oldest_age_seconds",
                "Age of the oldest inbound message not yet decided and acked, by partition",
                ["partition"],
                {(str(p),): live.oldest_inbound.get(p, 0.0) for p in range(PARTITIONS)},
            )
        if live.publisher_lag is not None:
            yield _gauge(
                "ctilink_publisher_lag_events",
                "Events logged but not yet acknowledged in CTILINK_OUT (all networks)",
                live.publisher_lag,
            )
        if live.store_up:  # from the store, so only while it answers: none rather than stale
            yield _labelled(
                "ctilink_networks",
                "Networks by effective mode",
                ["effective"],
                {(mode,): live.networks.get(mode, 0) for mode in MODES},
            )
            yield _labelled(
                "ctilink_components",
                "Component rows over all networks, by state",
                ["state"],
                {(state,): live.components.get(state, 0) for state in STATES},
            )
        yield _gauge(
            "ctilink_restart_pending_networks",
            "Networks whose setting waits for a portal restart",
            live.restart_pending,
        )
        if live.per_network is not None:
            yield from _per_network(live.per_network)


def _per_network(found: PerNetwork) -> Iterable[Any]:
    """ctilink_log_position{network} and ctilink_component_available{network,system,component}."""
    yield _labelled(
        "ctilink_log_position",
        "A network's last log position",
        ["network"],
        {(network,): position for network, position in found.positions.items()},
    )
    yield _labelled(
        "ctilink_component_available",
        "1 when the component row is available (C3), else 0",
        ["network", "system", "component"],
        found.available,
    )


def _labelled(
    name: str, documentation: str, labels: list[str], values: dict[tuple[str, ...], float]
) -> GaugeMetricFamily:
    """A gauge with one sample per label set, sorted."""
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    """A gauge with one sample."""
    family = GaugeMetricFamily(name, documentation)
    family.add_metric([], value)
    return family
