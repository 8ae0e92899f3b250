"""What the ingest benchmark measures while it runs: commit times per message (a thin wrapper of
the real :class:`TelemetryStore`), CPU time per process from /proc, percentiles."""

from __future__ import annotations

import math
import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from ingest.stats import IngestStats
from ingest.store import Batch, TelemetryStore

_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(slots=True)
class CommitRecord:
    at_ms: float  # wall clock right after the transaction committed
    rows: int
    sequences: dict[str, list[int]]  # vin -> seq of every message in the batch


@dataclass
class CommitLog:
    records: list[CommitRecord] = field(default_factory=list)
    rows: int = 0


class TimedStore(TelemetryStore):
    """The real store; additionally notes when each batch committed and which messages (VIN,
    seq) it held. Only references are kept on the hot path: no per-row work."""

    def __init__(self, pool: asyncpg.Pool, log: CommitLog, *, timeout_s: float) -> None:
        super().__init__(pool, timeout_s=timeout_s)
        self.log = log

    async def write(self, batch: Batch) -> None:
        await super().write(batch)
        at_ms = time.time_ns() / 1e6
        self.log.rows += batch.readings
        if batch.readings or batch.sequences:
            self.log.records.append(CommitRecord(at_ms, batch.readings, batch.sequences))


@dataclass
class IngestTotals:
    """What an ingest worker counted over a run."""

    messages: int = 0
    batches: int = 0
    commit_s_sum: float = 0.0
    commits: int = 0
    peak_rss_kib: int = 0  # of the worker's process (over several workers: the largest)


def totals_of(stats: IngestStats) -> IngestTotals:
    """This process's worker's totals, at the end of its run."""
    commit = stats.commit_seconds.snapshot()
    return IngestTotals(
        stats.messages,
        stats.batches,
        commit.sum,
        commit.count,
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    )


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an ascending list; NaN when empty."""
    if not sorted_values:
        return math.nan
    rank = max(math.ceil(q / 100 * len(sorted_values)), 1)
    return sorted_values[rank - 1]


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; everything after its ')' is fixed.
    return text.rsplit(")", 1)[1].split()


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one live process (0 when it is gone)."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    # After the name: state(0) ppid(1) ... utime(11) stime(12).
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of ``pid`` and its live direct children (a postmaster and its backends)."""
    total = process_cpu_s(pid)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields is not None and int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / _CLK_TCK
    return total


def self_cpu_s() -> float:
    return time.process_time()
