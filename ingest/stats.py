"""In-process ingest counters and distributions: the source of the ``/metrics`` exposition.

The worker mutates one :class:`IngestStats` on its event loop; ``ingest.metrics`` reads it at
scrape time (possibly from the metrics server's thread). Plain integers are read atomically;
each :class:`Histogram` guards its buckets with a lock so a scrape never sees a count that
disagrees with its buckets. Nothing here is global: every worker (and every test) owns its own.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Sequence, Sized
from dataclasses import dataclass, field
from typing import Protocol

# Bucket upper bounds (Prometheus ``le``); +Inf is implicit.
COMMIT_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_MESSAGES_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
BATCH_READINGS_BUCKETS = (1, 10, 50, 100, 500, 1000, 2500, 5000, 10_000, 25_000, 50_000, 100_000)
# Store-and-forward replays hours-old samples, so the lag scale reaches well past a minute.
LAG_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    bounds: tuple[float, ...]
    # Per-bucket (not cumulative) counts, one more than ``bounds``: the last is the +Inf bucket.
    counts: tuple[int, ...]
    sum: float

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations <= bound) pairs ending with (+inf, count)."""
        pairs: list[tuple[float, int]] = []
        running = 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            pairs.append((bound, running))
        return pairs


class Histogram:
    """A fixed-bucket distribution (the Prometheus histogram model), free of any registry."""

    def __init__(self, bounds: Sequence[float]) -> None:
        if list(bounds) != sorted(set(bounds)):
            raise ValueError(f"histogram bounds must be strictly increasing: {bounds!r}")
        self.bounds = tuple(float(b) for b in bounds)
        self._counts = [0] * (len(self.bounds) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        # ``le`` is inclusive: a value equal to a bound belongs to that bound's bucket.
        index = bisect.bisect_left(self.bounds, value)
        with self._lock:
            self._counts[index] += 1
            self._sum += value

    def snapshot(self) -> HistogramSnapshot:
        with self._lock:
            return HistogramSnapshot(self.bounds, tuple(self._counts), self._sum)

    @property
    def count(self) -> int:
        return self.snapshot().count


class CommittedBatch(Protocol):
    """What :meth:`IngestStats.record_commit` reads from a committed ``ingest.store.Batch``."""

    @property
    def readings(self) -> int: ...
    @property
    def dead_letters(self) -> Sized: ...
    @property
    def presence(self) -> Sized: ...
    @property
    def max_ts_ms(self) -> int | None: ...


@dataclass
class IngestStats:
    # Counted as messages are read and validated (a batch abandoned at shutdown is counted
    # again when the broker redelivers it).
    messages: int = 0
    samples: int = 0
    readings: int = 0
    positions_withheld: int = 0  # position values not stored: no location consent
    fast_path_messages: int = 0  # telemetry taken whole by the fast path
    events: int = 0  # event messages accepted for storage
    rejects: Counter[str] = field(default_factory=Counter)
    # Counted when a batch commits.
    batches: int = 0
    commit_failures: int = 0
    dead_letters: int = 0
    presence_updates: int = 0
    last_commit_ms: float = 0.0
    last_commit_at_ms: int | None = None  # wall clock of the last commit (stall detection)
    lag_s: float | None = None  # now - newest sample of the last batch that had readings
    queue_depth: int = 0
    commit_seconds: Histogram = field(default_factory=lambda: Histogram(COMMIT_SECONDS_BUCKETS))
    batch_messages: Histogram = field(default_factory=lambda: Histogram(BATCH_MESSAGES_BUCKETS))
    batch_readings: Histogram = field(default_factory=lambda: Histogram(BATCH_READINGS_BUCKETS))
    batch_lag_seconds: Histogram = field(default_factory=lambda: Histogram(LAG_SECONDS_BUCKETS))

    def record_commit(
        self, batch: CommittedBatch, *, messages: int, seconds: float, now_ms: int
    ) -> None:
        """One batch of ``messages`` MQTT messages committed in ``seconds`` (the successful
        attempt only; failed attempts are ``commit_failures``)."""
        self.batches += 1
        self.last_commit_ms = seconds * 1000
        self.last_commit_at_ms = now_ms
        self.dead_letters += len(batch.dead_letters)
        self.presence_updates += len(batch.presence)
        self.commit_seconds.observe(seconds)
        self.batch_messages.observe(messages)
        self.batch_readings.observe(batch.readings)
        if batch.max_ts_ms is not None:
            # A car clock a little ahead (within the validation tolerance) is not negative lag.
            self.lag_s = max(now_ms - batch.max_ts_ms, 0) / 1000
            self.batch_lag_seconds.observe(self.lag_s)
