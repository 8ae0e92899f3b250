"""Prometheus exposition of the ingest stats: names, values, labels, histogram semantics; the
standalone metrics server; and the counters moving under a real IngestWorker."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
import asyncpg
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ingest.consumer import IngestWorker
from ingest.metrics import build_registry, serve_metrics
from ingest.settings import IngestSettings
from ingest.stats import Histogram, IngestStats
from ingest.store import TelemetryStore
from protocol.topics import presence_topic, telemetry_topic

VIN = "WVWZZZ1JZXW000001"


def scrape(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition as {(sample name, sorted labels): value}."""
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def families(registry: CollectorRegistry) -> dict[str, str]:
    text = generate_latest(registry).decode()
    return {f.name: f.type for f in text_string_to_metric_families(text)}


@dataclass
class FakeBatch:
    readings: int = 0
    dead_letters: list[object] = field(default_factory=list)
    presence: list[object] = field(default_factory=list)
    max_ts_ms: int | None = None


# -- exposition -----------------------------------------------------------------------------------


def test_counters_gauges_and_labels_are_exposed() -> None:
    stats = IngestStats(
        messages=7, samples=12, readings=30, batches=3, commit_failures=2, queue_depth=4
    )
    stats.rejects.update({"out_of_range": 2, "malformed_json": 1})
    registry = build_registry(stats, denials=Counter({"bad_credentials": 5}), process=False)

    samples = scrape(registry)

    assert samples[("fleetlink_ingest_messages_total", ())] == 7
    assert samples[("fleetlink_ingest_samples_total", ())] == 12
    assert samples[("fleetlink_ingest_readings_total", ())] == 30
    assert samples[("fleetlink_ingest_batches_total", ())] == 3
    assert samples[("fleetlink_ingest_commit_failures_total", ())] == 2
    assert samples[("fleetlink_ingest_queue_depth", ())] == 4
    assert samples[("fleetlink_ingest_rejects_total", (("reason", "out_of_range"),))] == 2
    assert samples[("fleetlink_ingest_rejects_total", (("reason", "malformed_json"),))] == 1
    assert samples[("fleetlink_broker_denials_total", (("reason", "bad_credentials"),))] == 5
    types = families(registry)
    assert types["fleetlink_ingest_messages"] == "counter"
    assert types["fleetlink_ingest_rejects"] == "counter"
    assert types["fleetlink_ingest_queue_depth"] == "gauge"
    assert types["fleetlink_ingest_commit_seconds"] == "histogram"
    assert types["fleetlink_ingest_batch_messages"] == "histogram"


def test_scrape_reads_the_stats_live() -> None:
    stats = IngestStats()
    registry = build_registry(stats, process=False)
    assert scrape(registry)[("fleetlink_ingest_messages_total", ())] == 0
    stats.messages += 3
    stats.rejects["too_large"] += 1
    samples = scrape(registry)
    assert samples[("fleetlink_ingest_messages_total", ())] == 3
    assert samples[("fleetlink_ingest_rejects_total", (("reason", "too_large"),))] == 1


def test_series_without_a_value_yet_are_left_out() -> None:
    names = families(build_registry(IngestStats(), process=False))
    # No commit yet: no lag and no last-commit time (a 0 would read as "perfectly fresh").
    assert "fleetlink_ingest_lag_seconds" not in names
    assert "fleetlink_ingest_last_commit_timestamp_seconds" not in names
    # No broker in this process: no denials family.
    assert "fleetlink_broker_denials" not in names


def test_record_commit_feeds_histograms_lag_and_counters() -> None:
    stats = IngestStats()
    now_ms = 1_763_892_000_000
    stats.record_commit(
        FakeBatch(readings=40, dead_letters=[1, 2], presence=[1], max_ts_ms=now_ms - 1500),
        messages=10,
        seconds=0.004,
        now_ms=now_ms,
    )
    stats.record_commit(FakeBatch(presence=[1]), messages=1, seconds=0.2, now_ms=now_ms + 1000)

    samples = scrape(build_registry(stats, process=False))

    assert samples[("fleetlink_ingest_batches_total", ())] == 2
    assert samples[("fleetlink_ingest_dead_letters_total", ())] == 2
    assert samples[("fleetlink_ingest_presence_updates_total", ())] == 2
    assert samples[("fleetlink_ingest_commit_seconds_count", ())] == 2
    assert samples[("fleetlink_ingest_commit_seconds_sum", ())] == pytest.approx(0.204)
    assert samples[("fleetlink_ingest_commit_seconds_bucket", (("le", "0.005"),))] == 1
    assert samples[("fleetlink_ingest_commit_seconds_bucket", (("le", "0.25"),))] == 2
    assert samples[("fleetlink_ingest_commit_seconds_bucket", (("le", "+Inf"),))] == 2
    assert samples[("fleetlink_ingest_batch_messages_bucket", (("le", "1.0"),))] == 1
    assert samples[("fleetlink_ingest_batch_messages_bucket", (("le", "10.0"),))] == 2
    assert samples[("fleetlink_ingest_batch_messages_sum", ())] == 11
    assert samples[("fleetlink_ingest_batch_readings_sum", ())] == 40
    # The batch without readings leaves the lag where the last batch with data put it.
    assert samples[("fleetlink_ingest_lag_seconds", ())] == 1.5
    assert samples[("fleetlink_ingest_batch_lag_seconds_count", ())] == 1
    assert samples[("fleetlink_ingest_last_commit_timestamp_seconds", ())] == (now_ms + 1000) / 1000
    assert stats.last_commit_ms == pytest.approx(200.0)


def test_a_car_clock_ahead_is_zero_lag_not_negative() -> None:
    stats = IngestStats()
    stats.record_commit(
        FakeBatch(readings=1, max_ts_ms=10_000), messages=1, seconds=0.01, now_ms=9_000
    )
    assert stats.lag_s == 0.0


def test_histogram_buckets_are_inclusive_upper_bounds() -> None:
    histogram = Histogram((1, 5))
    for value in (0.5, 1, 1.0001, 5, 6):
        histogram.observe(value)
    snapshot = histogram.snapshot()
    assert snapshot.counts == (2, 2, 1)
    assert snapshot.cumulative() == [(1.0, 2), (5.0, 4), (float("inf"), 5)]
    assert snapshot.sum == pytest.approx(13.5001)
    assert histogram.count == 5


def test_histogram_bounds_must_increase() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        Histogram((5, 1))


def test_process_metrics_are_included_by_default() -> None:
    names = families(build_registry(IngestStats()))
    assert "python_info" in names


def test_each_registry_is_independent() -> None:
    a, b = IngestStats(messages=1), IngestStats(messages=2)
    assert scrape(build_registry(a, process=False))[("fleetlink_ingest_messages_total", ())] == 1
    assert scrape(build_registry(b, process=False))[("fleetlink_ingest_messages_total", ())] == 2


def test_metrics_server_serves_the_registry_on_loopback() -> None:
    stats = IngestStats(messages=42)
    server, thread = serve_metrics(build_registry(stats), host="127.0.0.1", port=0)
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read().decode()
            content_type = response.headers["Content-Type"]
    finally:
        server.shutdown()
        server.server_close()
    thread.join(5)
    assert content_type.startswith("text/plain")
    assert "fleetlink_ingest_messages_total 42.0" in body


def test_metrics_port_is_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert IngestSettings().metrics_port is None
    monkeypatch.setenv("FLEETLINK_INGEST_METRICS_PORT", "9464")
    monkeypatch.setenv("FLEETLINK_INGEST_METRICS_HOST", "0.0.0.0")
    configured = IngestSettings()
    assert (configured.metrics_host, configured.metrics_port) == ("0.0.0.0", 9464)


# -- through a real worker ------------------------------------------------------------------------


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def wait_for(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout_s} s")


@asynccontextmanager
async def running(worker: IngestWorker) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(worker.subscribed.wait(), 15)
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def test_worker_moves_the_metrics(
    amqtt_broker: Any, pool: asyncpg.Pool, test_vehicles: Any
) -> None:
    worker = IngestWorker(
        TelemetryStore(pool), amqtt_broker.ingest_endpoint, IngestSettings(flush_interval_ms=50)
    )
    registry = build_registry(worker.stats, process=False)
    before = scrape(registry)
    assert before[("fleetlink_ingest_commit_seconds_count", ())] == 0
    t = now_ms()
    good = json.dumps(
        {"seq": 1, "samples": [{"ts": t - 1000, "signals": {"Vehicle.Speed": 50.0}}]}
    ).encode()
    async with (
        running(worker),
        aiomqtt.Client(
            amqtt_broker.host,
            amqtt_broker.port,
            identifier=VIN,
            username=VIN,
            password=test_vehicles.passwords[VIN],
        ) as car,
    ):
        await car.publish(telemetry_topic(VIN), good, qos=1)
        await car.publish(telemetry_topic(VIN), b'{"seq": 2, "samples": [', qos=1)
        await car.publish(presence_topic(VIN), b'{"state": "online"}', qos=1)
        await wait_for(
            lambda: (
                worker.stats.messages == 3
                and worker.stats.queue_depth == 0
                # every message read has been committed: nothing left in a pending batch
                and worker.stats.batch_messages.snapshot().sum == 3
            )
        )

    after = scrape(registry)
    assert after[("fleetlink_ingest_messages_total", ())] == 3
    assert after[("fleetlink_ingest_samples_total", ())] == 1
    assert after[("fleetlink_ingest_readings_total", ())] == 1
    # The good message took the fast path; the truncated one the full validation.
    assert after[("fleetlink_ingest_fast_path_messages_total", ())] == 1
    assert after[("fleetlink_ingest_rejects_total", (("reason", "malformed_json"),))] == 1
    assert after[("fleetlink_ingest_dead_letters_total", ())] == 1
    assert after[("fleetlink_ingest_presence_updates_total", ())] == 1
    batches = after[("fleetlink_ingest_batches_total", ())]
    assert batches >= 1
    assert after[("fleetlink_ingest_commit_seconds_count", ())] == batches
    assert after[("fleetlink_ingest_batch_messages_sum", ())] == 3
    assert after[("fleetlink_ingest_commit_seconds_sum", ())] > 0
    # The sample was a second old when published; lag is that plus the trip through the broker.
    assert 1.0 <= after[("fleetlink_ingest_lag_seconds", ())] < 30
    assert await pool.fetchval("SELECT count(*) FROM telemetry_values") == 1
