"""What ``fleetlink simulate`` shows: the live progress line and the final summary.

Pure formatting over :class:`simulator.runner.FleetProgress` snapshots; the caller owns the
clock and the output stream.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from protocol.clock import utc_from_ms
from simulator.runner import FleetProgress


def format_sim_time(sim_ms: int | None) -> str:
    if sim_ms is None:
        return "-"
    return utc_from_ms(sim_ms).strftime("%Y-%m-%d %H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Rates:
    messages_per_s: float
    samples_per_s: float


class RateMeter:
    """Messages and samples per second between two snapshots."""

    __slots__ = ("_at_s", "_messages", "_samples")

    def __init__(self, at_s: float) -> None:
        self._at_s = at_s
        self._messages = 0
        self._samples = 0

    def update(self, progress: FleetProgress, at_s: float) -> Rates:
        span = max(at_s - self._at_s, 1e-9)
        rates = Rates(
            (progress.published_messages - self._messages) / span,
            (progress.published_samples - self._samples) / span,
        )
        self._at_s = at_s
        self._messages = progress.published_messages
        self._samples = progress.published_samples
        return rates


def progress_line(p: FleetProgress, rates: Rates) -> str:
    offline = f"  no coverage {p.offline_by_pattern}" if p.offline_by_pattern else ""
    return (
        f"connected {p.connected}/{p.vehicles}  {rates.messages_per_s:,.0f} msg/s"
        f"  {rates.samples_per_s:,.0f} samples/s  backlog {p.backlog:,}"
        f"  dropped {p.dropped:,}{offline}  sim {format_sim_time(p.sim_ms)}"
    )


@dataclass(frozen=True, slots=True)
class RunSummary:
    """The figures of one run, printed at the end and written as JSON for scripts."""

    vehicles: int
    mode: str
    duration_s: float
    sim_start_ms: int
    sim_end_ms: int | None
    sampled: int
    published_messages: int
    published_samples: int
    published_events: int
    unsent_samples: int
    dropped_samples: int
    connects: int
    connection_losses: int
    connect_failures: int
    max_connected: int
    connect_time_s: float | None  # until every car was connected at once (None: never)
    finished: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summary_text(s: RunSummary) -> str:
    connect = (
        f"all connected after {s.connect_time_s:.1f} s"
        if s.connect_time_s is not None
        else f"at most {s.max_connected}/{s.vehicles} connected at once"
    )
    rate = s.published_samples / s.duration_s if s.duration_s > 0 else 0.0
    return (
        f"simulated {s.vehicles} vehicles for {s.duration_s:.1f} s ({s.mode}, simulated "
        f"{format_sim_time(s.sim_start_ms)} .. {format_sim_time(s.sim_end_ms)}); {connect}\n"
        f"  telemetry  {s.published_messages:,} messages, {s.published_samples:,} samples "
        f"acknowledged by the broker ({rate:,.0f}/s) of {s.sampled:,} sampled; "
        f"{s.unsent_samples:,} unsent, {s.dropped_samples:,} dropped (buffer full)\n"
        f"  events     {s.published_events:,} acknowledged\n"
        f"  links      {s.connects:,} connects, {s.connection_losses:,} connection losses, "
        f"{s.connect_failures:,} failed connects"
    )
