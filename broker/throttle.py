"""Failed-login throttling, shared by the MQTT broker and the HTTP token endpoint. Pure: time is
passed in; no I/O and no broker or web framework imported, so either side can use it."""

from __future__ import annotations

from collections import deque

# Repeated failures within the window lock the attempt out for the window: guessing a 256-bit
# secret is hopeless anyway, but a flood of argon2 checks costs CPU for every car. Keyed by
# (address, username) so that cars behind one carrier NAT do not pay for one broken neighbour;
# a much higher per-address limit stops a flood that varies the username.
THROTTLE_FAILURES = 5
THROTTLE_SOURCE_FAILURES = 200
THROTTLE_WINDOW_S = 60.0


class _SlidingCounts:
    """Recent events per key within a window, in bounded memory: expired keys are swept when the
    table has doubled since the last sweep, and beyond ``max_keys`` the oldest keys go first (an
    unauthenticated flood of fresh usernames must not grow the broker without limit)."""

    def __init__(self, limit: int, window_s: float, *, max_keys: int = 100_000) -> None:
        self._limit = limit
        self._window_s = window_s
        self._max_keys = max_keys
        self._recent: dict[str, deque[float]] = {}
        self._sweep_at = 1024

    def __len__(self) -> int:
        return len(self._recent)

    def blocked(self, key: str, now: float) -> bool:
        recent = self._recent.get(key)
        if recent is None:
            return False
        while recent and recent[0] <= now - self._window_s:
            recent.popleft()
        if not recent:
            del self._recent[key]
            return False
        return len(recent) >= self._limit

    def forgive(self, key: str) -> None:
        """Take back the newest event of ``key`` (an attempt counted ahead that succeeded)."""
        recent = self._recent.get(key)
        if recent:
            recent.pop()
            if not recent:
                del self._recent[key]

    def add(self, key: str, now: float) -> None:
        recent = self._recent.pop(key, None) or deque(maxlen=self._limit)
        recent.append(now)
        self._recent[key] = recent  # re-inserted: dict order is least recently failed first
        if len(self._recent) >= self._sweep_at:
            horizon = now - self._window_s
            for stale in [k for k, q in self._recent.items() if q[-1] <= horizon]:
                del self._recent[stale]
            while len(self._recent) > self._max_keys:
                del self._recent[next(iter(self._recent))]
            self._sweep_at = max(1024, 2 * len(self._recent))


class LoginThrottle:
    """Failed logins per (address, username) and per address; time is passed in."""

    def __init__(
        self,
        failures: int = THROTTLE_FAILURES,
        window_s: float = THROTTLE_WINDOW_S,
        source_failures: int = THROTTLE_SOURCE_FAILURES,
        max_keys: int = 100_000,
    ) -> None:
        self._per_identity = _SlidingCounts(failures, window_s, max_keys=max_keys)
        self._per_source = _SlidingCounts(source_failures, window_s, max_keys=max_keys)

    @property
    def tracked(self) -> int:
        """Keys held in memory (for tests and metrics)."""
        return len(self._per_identity) + len(self._per_source)

    def blocked(self, source: str, username: str | None, now: float) -> bool:
        return self._per_source.blocked(source, now) or self._per_identity.blocked(
            f"{source}|{username}", now
        )

    def failed(self, source: str, username: str | None, now: float) -> None:
        self._per_source.add(source, now)
        self._per_identity.add(f"{source}|{username}", now)

    def forgive(self, source: str, username: str | None) -> None:
        """Undo one :meth:`failed`: for a caller that counts each attempt as failed *before*
        checking it (so that parallel attempts cannot all slip under the limit) and then finds
        it good."""
        self._per_source.forgive(source)
        self._per_identity.forgive(f"{source}|{username}")
