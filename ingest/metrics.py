"""Prometheus exposition of :class:`ingest.stats.IngestStats` (and the broker's denials).

A custom collector reads the stats object at scrape time, so the hot path only bumps plain
counters and no metric object lives in a module-level (default) registry: each process, and
each test, builds its own registry with :func:`build_registry`.

Names follow the Prometheus conventions (base units, ``_total`` for counters, ``_seconds``);
label values are fixed enumerations (reject and denial reasons), never VINs or topics, so the
series count stays bounded however many vehicles connect.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Mapping
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from ingest.stats import Histogram, IngestStats

log = logging.getLogger(__name__)

PREFIX = "fleetlink_ingest"


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", documentation, value=value)


def _by_reason(name: str, documentation: str, counts: Mapping[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=["reason"])
    for reason, n in sorted(dict(counts).items()):  # dict(): one atomic copy under the GIL
        family.add_metric([str(reason)], n)
    return family


def _histogram(name: str, documentation: str, histogram: Histogram) -> HistogramMetricFamily:
    snapshot = histogram.snapshot()
    # The ``le`` spelling of prometheus_client's own histograms: "0.005", "1.0", "+Inf".
    buckets = [
        ("+Inf" if bound == float("inf") else repr(float(bound)), float(n))
        for bound, n in snapshot.cumulative()
    ]
    return HistogramMetricFamily(
        f"{PREFIX}_{name}", documentation, buckets=buckets, sum_value=snapshot.sum
    )


class IngestCollector:
    """Reads ``stats`` (and ``denials``, the broker's per-reason refusals) at each scrape."""

    def __init__(self, stats: IngestStats, *, denials: Counter[str] | None = None) -> None:
        self._stats = stats
        self._denials = denials

    def collect(self) -> Iterator[Metric]:
        s = self._stats
        yield _counter("messages", "MQTT messages read (telemetry and presence).", s.messages)
        yield _counter("samples", "Telemetry samples received, valid or not.", s.samples)
        yield _counter("readings", "Signal values accepted for storage.", s.readings)
        yield _counter("events", "Event messages (DTCs, trips, charging) accepted.", s.events)
        yield _counter(
            "positions_withheld",
            "Position values not stored because the owner has not given location consent.",
            s.positions_withheld,
        )
        yield _counter(
            "fast_path_messages",
            "Telemetry messages taken whole by the fast path (the rest had the full validation).",
            s.fast_path_messages,
        )
        yield _by_reason(
            f"{PREFIX}_rejects", "Rejected messages and samples, by reason code.", s.rejects
        )
        yield _counter("batches", "Batches committed.", s.batches)
        yield _counter(
            "commit_failures", "Commit attempts that failed (store unavailable).", s.commit_failures
        )
        yield _counter("dead_letters", "Dead letters committed.", s.dead_letters)
        yield _counter("presence_updates", "Presence reports committed.", s.presence_updates)
        yield _histogram(
            "commit_seconds", "Duration of a successful batch commit.", s.commit_seconds
        )
        yield _histogram("batch_messages", "MQTT messages per committed batch.", s.batch_messages)
        yield _histogram("batch_readings", "Signal values per committed batch.", s.batch_readings)
        yield _histogram(
            "batch_lag_seconds",
            "Per committed batch: commit time minus its newest sample's timestamp.",
            s.batch_lag_seconds,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_queue_depth", "Messages read but not yet batched.", value=s.queue_depth
        )
        if s.lag_s is not None:
            yield GaugeMetricFamily(
                f"{PREFIX}_lag_seconds",
                "Commit time minus the newest sample's timestamp, for the last batch with data.",
                value=s.lag_s,
            )
        if s.last_commit_at_ms is not None:
            yield GaugeMetricFamily(
                f"{PREFIX}_last_commit_timestamp_seconds",
                "Unix time of the last committed batch (alert when it stops moving).",
                value=s.last_commit_at_ms / 1000,
            )
        if self._denials is not None:
            yield _by_reason(
                "fleetlink_broker_denials",
                "Connections, publishes and subscribes the broker refused, by reason code.",
                self._denials,
            )


def build_registry(
    stats: IngestStats, *, denials: Counter[str] | None = None, process: bool = True
) -> CollectorRegistry:
    """A fresh registry exposing ``stats`` (and ``denials`` when given). ``process`` adds the
    standard ``process_*`` (RSS, CPU, open files; Linux only) and ``python_info`` series."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(IngestCollector(stats, denials=denials))
    if process:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
    return registry


def serve_metrics(
    registry: CollectorRegistry, *, host: str, port: int
) -> tuple[WSGIServer, Thread]:
    """Serve ``registry`` on http://host:port/ (any path) from a daemon thread; the caller
    shuts the server down with ``server.shutdown(); server.server_close()``."""
    server, thread = start_http_server(port, addr=host, registry=registry)
    log.info(
        "ingest: metrics on http://%s:%d/metrics", host, server.server_port, extra={"port": port}
    )
    return server, thread
