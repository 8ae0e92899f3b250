"""Simulated time: real time, accelerated, backfill, and the sampling policy of each."""

from __future__ import annotations

import pytest

from simulator.timeline import (
    MS_PER_DAY,
    RETENTION_MARGIN_MS,
    SPARSE_DRIVING_SAMPLE_S,
    SPARSE_PARKED_SAMPLE_S,
    SamplingPolicy,
    Timeline,
    TimelineError,
    TimeMode,
    backfill_start,
    make_timeline,
)

NOW = 1_763_892_000_000


def test_real_time_follows_the_wall_clock() -> None:
    timeline = make_timeline(NOW)
    assert timeline.mode is TimeMode.REALTIME and not timeline.paced_by_backend
    assert timeline.target_ms(NOW + 12_345) == NOW + 12_345
    assert timeline.wall_at(NOW + 5_000) == NOW + 5_000
    assert timeline.end_ms is None and not timeline.finished(NOW + 10 * MS_PER_DAY)


def test_accelerated_time_runs_k_times_faster_from_now() -> None:
    timeline = make_timeline(NOW, speedup=3600)
    assert timeline.mode is TimeMode.ACCELERATED and timeline.paced_by_backend
    assert timeline.target_ms(NOW + 1_000) == NOW + 3_600_000  # one wall second, one hour
    assert timeline.wall_at(NOW + 7_200_000) == NOW + 2_000


def test_a_replay_of_the_last_days_ends_at_now() -> None:
    timeline = make_timeline(NOW, speedup=3600, days=2)
    assert timeline.start_ms == NOW - 2 * MS_PER_DAY and timeline.end_ms == NOW
    # 48 simulated hours at 3600x take 48 wall seconds; the target never passes the end.
    assert timeline.target_ms(NOW + 24_000) == NOW - MS_PER_DAY
    assert timeline.target_ms(NOW + 100_000) == NOW
    assert timeline.finished(NOW) and not timeline.finished(NOW - 1)


def test_backfill_is_not_paced_by_the_wall_clock() -> None:
    timeline = make_timeline(NOW, days=3)
    assert timeline.mode is TimeMode.BACKFILL and timeline.speedup is None
    assert timeline.paced_by_backend
    assert timeline.start_ms == NOW - 3 * MS_PER_DAY
    # Whatever the wall clock says, a backfill may run up to its end at once.
    assert timeline.target_ms(NOW) == NOW
    assert timeline.wall_at(NOW - MS_PER_DAY) == NOW


@pytest.mark.parametrize("days", [30, 45])
def test_a_backfill_starts_inside_the_retention_window(days: float) -> None:
    start = backfill_start(NOW, days, retention_days=30)
    assert start == NOW - 30 * MS_PER_DAY + RETENTION_MARGIN_MS


def test_a_short_backfill_is_not_clamped() -> None:
    assert backfill_start(NOW, 29, retention_days=30) == NOW - 29 * MS_PER_DAY


def test_a_pinned_start_gives_the_same_timeline_at_another_wall_time() -> None:
    start = NOW - 5 * MS_PER_DAY
    first = make_timeline(NOW, days=7, start_ms=start)
    later = make_timeline(NOW + 3_600_000, days=7, start_ms=start)
    assert first.start_ms == later.start_ms == start


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"speedup": 0.0}, "speedup"),
        ({"speedup": float("inf")}, "speedup"),
        ({"days": 0.0}, "days"),
        ({"start_ms": NOW - 1000}, "needs --days"),
        ({"days": 1, "start_ms": NOW + 1000}, "in the past"),
    ],
)
def test_bad_timelines_are_refused_with_a_code(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(TimelineError, match=message) as caught:
        make_timeline(NOW, **kwargs)  # type: ignore[arg-type]
    assert caught.value.code == "invalid_timeline"


def test_sampling_is_sparse_for_backfills_and_high_speedups() -> None:
    realtime = make_timeline(NOW).sampling()
    assert (realtime.driving_s, realtime.parked_s, realtime.max_substep_s) == (1.0, 1.0, 1.0)
    for timeline in (make_timeline(NOW, days=1), make_timeline(NOW, speedup=3600)):
        policy = timeline.sampling()
        assert policy.driving_s == SPARSE_DRIVING_SAMPLE_S
        assert policy.parked_s == SPARSE_PARKED_SAMPLE_S
        assert policy.max_substep_s > 1.0
    slow = make_timeline(NOW, speedup=2).sampling()
    assert slow.driving_s == 1.0


def test_sampling_overrides_and_the_parked_poll() -> None:
    policy = make_timeline(NOW, days=1).sampling(driving_s=30, parked_s=900)
    assert (policy.driving_ms, policy.parked_ms) == (30_000, 900_000)
    # A parked car is stepped every minute (to see it drive off), sampled every 15 minutes.
    assert policy.parked_poll_ms == 60_000
    # Parked interval shorter than driving: never below the driving interval.
    assert make_timeline(NOW, days=1).sampling(driving_s=30, parked_s=None).parked_s == 600
    with pytest.raises(TimelineError):
        SamplingPolicy(driving_s=0, parked_s=1, max_substep_s=1)


def test_timeline_rejects_an_end_before_its_start() -> None:
    with pytest.raises(TimelineError):
        Timeline(start_ms=NOW, wall_start_ms=NOW, end_ms=NOW - 1)
