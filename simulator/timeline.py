"""Simulated time: which instant the fleet is at, and how often a car is sampled.

Three modes, one rule: the simulated clock starts at ``start_ms`` and advances at ``speedup``
times the wall clock, never faster than the backend accepts (the runner waits for the cars'
backlogs, see :mod:`simulator.runner`), and never past ``end_ms`` when one is set.

- real time (default): ``speedup`` 1, starts now, no end. Timestamps are the wall clock.
- accelerated (``--speedup K``): simulated time runs K times faster. Alone it starts now and
  runs ahead of the wall clock; ingest refuses samples more than 5 minutes in the future
  (``FLEETLINK_INGEST_FUTURE_TOLERANCE_MS``), so combine it with ``--days D`` to replay the
  last D days K times faster, ending at the wall clock's "now".
- backfill (``--days D``): starts D days ago and runs as fast as broker and ingest take the
  messages (``speedup`` None), with true historical timestamps. It ends when it reaches "now"
  (the wall clock at that moment): the run then flushes and exits. For a live fleet after a
  backfill, start ``fleetlink simulate`` again in real time with the same seed.

Ingest refuses samples older than its retention (30 days by default): a backfill that reaches
further back starts :data:`RETENTION_MARGIN_MS` inside the window instead
(:func:`backfill_start`), so its first samples are not dead-lettered while it runs.

Pure: every function takes the wall clock as an argument.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

MS_PER_S = 1000
MS_PER_DAY = 86_400_000
#: Ingest's default retention (``FLEETLINK_INGEST_RETENTION_DAYS``).
DEFAULT_RETENTION_DAYS = 30.0
#: A backfill starts this far inside the retention window: the run itself takes minutes, and a
#: sample that ages out of the window before ingest commits it is dead-lettered.
RETENTION_MARGIN_MS = 3_600_000

#: At or above this speedup the sparse sampling intervals apply: 1 Hz for 2,000 cars at 60x is
#: 120,000 samples a wall second, far beyond what one process (or ingest) can carry.
SPARSE_SAMPLING_SPEEDUP = 10.0
REALTIME_DRIVING_SAMPLE_S = 1.0
REALTIME_PARKED_SAMPLE_S = 1.0
SPARSE_DRIVING_SAMPLE_S = 15.0
SPARSE_PARKED_SAMPLE_S = 600.0
#: A parked car is stepped (not sampled) at least this often so a departure is seen promptly
#: even when parked samples are 10 minutes apart.
PARKED_POLL_S = 60.0
#: Physics sub-step when sampling sparsely: 1 s steps for a month of driving would dominate the
#: run; 5 s keeps speed profiles and energy use plausible.
SPARSE_MAX_SUBSTEP_S = 5.0


class TimeMode(StrEnum):
    REALTIME = "realtime"
    ACCELERATED = "accelerated"
    BACKFILL = "backfill"


class TimelineError(ValueError):
    code = "invalid_timeline"


@dataclass(frozen=True, slots=True)
class SamplingPolicy:
    """How often a car is sampled: often while driving, rarely while parked."""

    driving_s: float
    parked_s: float
    max_substep_s: float

    def __post_init__(self) -> None:
        if not (self.driving_s > 0 and self.parked_s > 0 and self.max_substep_s > 0):
            raise TimelineError(f"sampling intervals must be positive: {self}")

    @property
    def driving_ms(self) -> int:
        return round(self.driving_s * MS_PER_S)

    @property
    def parked_ms(self) -> int:
        return round(self.parked_s * MS_PER_S)

    @property
    def parked_poll_ms(self) -> int:
        """How often a parked car is stepped: the parked interval, at most PARKED_POLL_S."""
        return round(min(self.parked_s, max(PARKED_POLL_S, self.driving_s)) * MS_PER_S)


@dataclass(frozen=True, slots=True)
class Timeline:
    """Maps the wall clock to simulated time. ``speedup`` None: backfill (no wall pacing)."""

    start_ms: int
    wall_start_ms: int
    speedup: float | None = 1.0
    end_ms: int | None = None

    def __post_init__(self) -> None:
        if self.speedup is not None and not (self.speedup > 0 and math.isfinite(self.speedup)):
            raise TimelineError(f"speedup must be a positive number, got {self.speedup}")
        if self.end_ms is not None and self.end_ms < self.start_ms:
            raise TimelineError(f"end {self.end_ms} is before start {self.start_ms}")

    @property
    def mode(self) -> TimeMode:
        if self.speedup is None:
            return TimeMode.BACKFILL
        return TimeMode.REALTIME if self.speedup == 1.0 else TimeMode.ACCELERATED

    @property
    def paced_by_backend(self) -> bool:
        """Whether simulated time waits for the cars' backlogs (everything but real time: a
        real-time car cannot slow the clock down, it buffers instead)."""
        return self.mode is not TimeMode.REALTIME

    def wall_limit_ms(self, wall_ms: int) -> int:
        """The latest simulated instant the wall clock allows (before end_ms is applied)."""
        if self.speedup is None:
            return self.end_ms if self.end_ms is not None else wall_ms
        return self.start_ms + math.floor((wall_ms - self.wall_start_ms) * self.speedup)

    def target_ms(self, wall_ms: int) -> int:
        """Where simulated time should be at ``wall_ms``."""
        target = self.wall_limit_ms(wall_ms)
        return target if self.end_ms is None else min(target, self.end_ms)

    def wall_at(self, sim_ms: int) -> float:
        """The wall instant (ms) at which simulated time reaches ``sim_ms`` (backfill: now)."""
        if self.speedup is None:
            return float(self.wall_start_ms)
        return self.wall_start_ms + (sim_ms - self.start_ms) / self.speedup

    def finished(self, sim_ms: int) -> bool:
        return self.end_ms is not None and sim_ms >= self.end_ms

    def sampling(
        self, *, driving_s: float | None = None, parked_s: float | None = None
    ) -> SamplingPolicy:
        """The sampling policy of this mode, with the caller's overrides."""
        sparse = self.speedup is None or self.speedup >= SPARSE_SAMPLING_SPEEDUP
        default_driving = SPARSE_DRIVING_SAMPLE_S if sparse else REALTIME_DRIVING_SAMPLE_S
        default_parked = SPARSE_PARKED_SAMPLE_S if sparse else REALTIME_PARKED_SAMPLE_S
        driving = driving_s if driving_s is not None else default_driving
        return SamplingPolicy(
            driving_s=driving,
            parked_s=parked_s if parked_s is not None else max(default_parked, driving),
            max_substep_s=SPARSE_MAX_SUBSTEP_S if sparse else 1.0,
        )


def backfill_start(
    wall_now_ms: int, days: float, *, retention_days: float = DEFAULT_RETENTION_DAYS
) -> int:
    """``days`` before now, but at least RETENTION_MARGIN_MS inside ingest's retention window."""
    if days <= 0:
        raise TimelineError(f"--days must be positive, got {days}")
    earliest = wall_now_ms - round(retention_days * MS_PER_DAY) + RETENTION_MARGIN_MS
    return max(wall_now_ms - round(days * MS_PER_DAY), earliest)


def make_timeline(
    wall_now_ms: int,
    *,
    speedup: float | None = None,
    days: float | None = None,
    start_ms: int | None = None,
    retention_days: float = DEFAULT_RETENTION_DAYS,
) -> Timeline:
    """The timeline the CLI flags describe (see the module docstring for the modes).

    ``start_ms`` pins the start of a ``--days`` run (for reproducible timestamps); it is still
    clamped into the retention window.
    """
    if days is None:
        if start_ms is not None:
            raise TimelineError("a start time needs --days (a backfill or replay window)")
        return Timeline(
            start_ms=wall_now_ms,
            wall_start_ms=wall_now_ms,
            speedup=1.0 if speedup is None else speedup,
        )
    start = backfill_start(wall_now_ms, days, retention_days=retention_days)
    if start_ms is not None:
        start = max(start_ms, start)
        if start >= wall_now_ms:
            raise TimelineError("the start time must be in the past")
    return Timeline(start_ms=start, wall_start_ms=wall_now_ms, speedup=speedup, end_ms=wall_now_ms)
