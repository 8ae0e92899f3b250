"""Connectivity-loss patterns: seeded, bounded, and shaped like tunnels, garages, dead zones."""

from __future__ import annotations

import random

from simulator.connectivity import (
    DEFAULT_OUTAGES,
    NO_OUTAGES,
    Connectivity,
    Outage,
    OutagePattern,
)

START = 1_763_892_000_000
STEP_MS = 15_000


def drive_pattern(minute: int) -> bool:
    """40 minutes driving, 80 parked, repeated."""
    return minute % 120 < 40


def trace(pattern: OutagePattern, seed: int, hours: float) -> list[tuple[bool, Outage | None]]:
    radio = Connectivity(pattern, random.Random(seed), START)
    out = []
    for i in range(int(hours * 3600_000 / STEP_MS)):
        now = START + i * STEP_MS
        driving = drive_pattern(i * STEP_MS // 60_000)
        out.append((radio.update(now, driving=driving), radio.outage))
    return out


def test_no_pattern_means_always_online() -> None:
    assert all(online for online, _ in trace(NO_OUTAGES, 1, 48))


def test_the_same_seed_gives_the_same_outages() -> None:
    assert trace(DEFAULT_OUTAGES, 7, 72) == trace(DEFAULT_OUTAGES, 7, 72)
    assert trace(DEFAULT_OUTAGES, 7, 72) != trace(DEFAULT_OUTAGES, 8, 72)


def test_a_garage_keeps_the_car_offline_for_the_whole_stop() -> None:
    pattern = OutagePattern(garage_share=1.0)
    radio = Connectivity(pattern, random.Random(1), START)
    assert radio.update(START, driving=True)
    assert not radio.update(START + 60_000, driving=False)  # parked underground
    assert radio.outage is Outage.GARAGE
    assert not radio.update(START + 10 * 3_600_000, driving=False)  # all night
    assert radio.update(START + 10 * 3_600_001, driving=True)  # drives out: back online


def test_tunnels_happen_only_while_driving_and_last_seconds_to_minutes() -> None:
    pattern = OutagePattern(tunnel_every_driving_s=600.0, tunnel_s=(10.0, 180.0))
    radio = Connectivity(pattern, random.Random(3), START)
    lengths, run_ms = [], 0
    for i in range(20 * 3600):  # 20 hours of 1 s steps, always driving
        online = radio.update(START + i * 1000, driving=True)
        if not online:
            assert radio.outage is Outage.TUNNEL
            run_ms += 1000
        elif run_ms:
            lengths.append(run_ms)
            run_ms = 0
    assert len(lengths) > 50  # about one every 10 minutes of driving
    assert all(10_000 <= n <= 181_000 for n in lengths)
    # Parked cars are never in a tunnel.
    radio = Connectivity(pattern, random.Random(3), START)
    assert all(radio.update(START + i * 1000, driving=False) for i in range(3 * 3600))


def test_the_urban_mix_is_mostly_online() -> None:
    states = trace(DEFAULT_OUTAGES, 11, 24 * 14)
    online_share = sum(online for online, _ in states) / len(states)
    kinds = {outage for _, outage in states if outage is not None}
    assert 0.5 < online_share < 1.0
    assert kinds == {Outage.TUNNEL, Outage.GARAGE, Outage.DEAD_ZONE}
