"""When a simulated car has no mobile network: tunnels, parking garages and dead zones.

Each car gets its own :class:`Connectivity`, a pure state machine stepped with the simulated
time and whether the car is driving; it answers "is the radio up?". Drawn from the car's own
random stream, so the same seed gives the same outages at the same simulated times (given the
same step times, which the runner guarantees in the paced modes).

- tunnel: while driving, on average every ``tunnel_every_driving_s`` of driving; lasts
  ``tunnel_s`` (seconds to minutes). Ends early if the trip ends.
- parking garage: a share ``garage_share`` of parking stops are underground; the car is offline
  for the whole stop and comes back when it drives off.
- dead zone: anywhere, on average every ``dead_zone_every_s``; lasts ``dead_zone_s``.

Off by default (:data:`NO_OUTAGES`); :data:`DEFAULT_OUTAGES` is a plausible urban mix.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum


class Outage(StrEnum):
    TUNNEL = "tunnel"
    GARAGE = "garage"
    DEAD_ZONE = "dead_zone"


@dataclass(frozen=True, slots=True)
class OutagePattern:
    tunnel_every_driving_s: float | None = None
    tunnel_s: tuple[float, float] = (10.0, 180.0)
    garage_share: float = 0.0
    dead_zone_every_s: float | None = None
    dead_zone_s: tuple[float, float] = (60.0, 1200.0)

    @property
    def enabled(self) -> bool:
        return (
            self.tunnel_every_driving_s is not None
            or self.garage_share > 0
            or self.dead_zone_every_s is not None
        )


NO_OUTAGES = OutagePattern()
DEFAULT_OUTAGES = OutagePattern(
    tunnel_every_driving_s=3600.0,
    garage_share=0.15,
    dead_zone_every_s=2 * 86_400.0,
)
PATTERNS = {"none": NO_OUTAGES, "urban": DEFAULT_OUTAGES}


class Connectivity:
    """One car's radio. Call :meth:`update` with non-decreasing times."""

    __slots__ = (
        "_driven_ms",
        "_driving",
        "_last_ms",
        "_next_dead_zone_ms",
        "_next_tunnel_driving_ms",
        "_pattern",
        "_rng",
        "_until_ms",
        "outage",
        "outages",
    )

    def __init__(self, pattern: OutagePattern, rng: random.Random, start_ms: int) -> None:
        self._pattern = pattern
        self._rng = rng
        self._last_ms = start_ms
        self._driving = False
        self._driven_ms = 0  # driving time so far; tunnels are spaced in driving time
        self._next_tunnel_driving_ms = self._draw_gap(pattern.tunnel_every_driving_s)
        dead_gap = self._draw_gap(pattern.dead_zone_every_s)
        self._next_dead_zone_ms = None if dead_gap is None else start_ms + dead_gap
        self._until_ms: int | None = None  # end of a timed outage (tunnel, dead zone)
        self.outage: Outage | None = None
        self.outages = 0  # outages begun so far

    @property
    def online(self) -> bool:
        return self.outage is None

    def _draw_gap(self, mean_s: float | None) -> int | None:
        if mean_s is None:
            return None
        return round(self._rng.expovariate(1.0 / mean_s) * 1000)

    def _begin(self, outage: Outage, until_ms: int | None) -> None:
        self.outage = outage
        self._until_ms = until_ms
        self.outages += 1

    def update(self, now_ms: int, *, driving: bool) -> bool:
        """Advance to ``now_ms`` (the car is ``driving`` now); returns whether it is online."""
        p, rng = self._pattern, self._rng
        if not p.enabled:
            return True
        if self._driving:
            self._driven_ms += max(now_ms - self._last_ms, 0)
        was_driving, self._driving, self._last_ms = self._driving, driving, now_ms
        # Outages end: a garage when the car drives off, a tunnel when it leaves it (or stops),
        # a dead zone when its time is up.
        if self._outage_over(now_ms, driving=driving):
            self.outage = None
        # Outages begin (at most one at a time; an event due meanwhile is redrawn, not stacked).
        if self._next_dead_zone_ms is not None and now_ms >= self._next_dead_zone_ms:
            gap = self._draw_gap(p.dead_zone_every_s)
            self._next_dead_zone_ms = now_ms + (gap or 0)
            if self.outage is None:
                self._begin(Outage.DEAD_ZONE, now_ms + round(rng.uniform(*p.dead_zone_s) * 1000))
        if (
            driving
            and self._next_tunnel_driving_ms is not None
            and self._driven_ms >= self._next_tunnel_driving_ms
        ):
            self._next_tunnel_driving_ms = self._driven_ms + (
                self._draw_gap(p.tunnel_every_driving_s) or 0
            )
            if self.outage is None:
                self._begin(Outage.TUNNEL, now_ms + round(rng.uniform(*p.tunnel_s) * 1000))
        if was_driving and not driving and p.garage_share > 0:
            underground = rng.random() < p.garage_share  # drawn even during another outage
            if underground and self.outage is None:
                self._begin(Outage.GARAGE, None)
        return self.outage is None

    def _outage_over(self, now_ms: int, *, driving: bool) -> bool:
        timed_out = now_ms >= (self._until_ms or 0)
        if self.outage is Outage.GARAGE:
            return driving
        if self.outage is Outage.TUNNEL:
            return not driving or timed_out
        return self.outage is Outage.DEAD_ZONE and timed_out
