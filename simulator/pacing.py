"""How often a simulated car may try to connect: reconnect backoff and the fleet's connect pace.

2,000 cars that start (or lose the broker) together would otherwise send 2,000 CONNECTs in the
same second, and every one costs the broker a password-hash check. Two mechanisms spread them:

- :class:`Backoff`: per car, exponential backoff with full jitter (the delay is drawn uniformly
  from ``[0, min(cap, initial * 2**attempt)]``, AWS Architecture Blog "Exponential Backoff And
  Jitter"), reset after a successful connect.
- :class:`ConnectPacer`: fleet-wide, at most ``rate_per_s`` connects a second in steady state
  (a token bucket without burst), shared by every car of one process.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

DEFAULT_BACKOFF_INITIAL_S = 1.0
DEFAULT_BACKOFF_CAP_S = 60.0
DEFAULT_CONNECT_RATE_PER_S = 200.0


class Backoff:
    """Delays between reconnect attempts. Pure apart from the injected random stream."""

    __slots__ = ("_attempt", "_cap_s", "_initial_s", "_rng")

    def __init__(
        self,
        rng: random.Random,
        *,
        initial_s: float = DEFAULT_BACKOFF_INITIAL_S,
        cap_s: float = DEFAULT_BACKOFF_CAP_S,
    ) -> None:
        if not 0 < initial_s <= cap_s:
            raise ValueError(f"need 0 < initial_s <= cap_s, got {initial_s}, {cap_s}")
        self._rng = rng
        self._initial_s = initial_s
        self._cap_s = cap_s
        self._attempt = 0

    def ceiling_s(self) -> float:
        """The upper bound of the next delay."""
        return min(self._cap_s, self._initial_s * 2.0 ** min(self._attempt, 62))

    def next_delay_s(self) -> float:
        delay = self._rng.uniform(0.0, self.ceiling_s())
        self._attempt += 1
        return delay

    def reset(self) -> None:
        self._attempt = 0


class ConnectPacer:
    """Hands out connect slots at most ``rate_per_s`` apart, first come first served."""

    def __init__(
        self,
        rate_per_s: float = DEFAULT_CONNECT_RATE_PER_S,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_s <= 0:
            raise ValueError(f"rate_per_s must be positive, got {rate_per_s}")
        self._interval_s = 1.0 / rate_per_s
        self._monotonic = monotonic
        self._next_s = 0.0

    def reserve(self) -> float:
        """Take the next slot; returns how long to wait for it (seconds)."""
        now = self._monotonic()
        slot = max(now, self._next_s)
        self._next_s = slot + self._interval_s
        return slot - now

    async def wait(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)
