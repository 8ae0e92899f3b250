"""Time as an injected dependency: cores take ``now`` as an argument, services take a Clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """UTC epoch milliseconds."""
        ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


SYSTEM_CLOCK = SystemClock()


def utc_from_ms(epoch_ms: int | float) -> datetime:
    """UTC epoch milliseconds (the wire's ``ts``) as a timezone-aware datetime."""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC)
