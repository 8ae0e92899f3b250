"""In-process ingest counters (exported as Prometheus metrics by the API process)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class IngestStats:
    messages: int = 0
    samples: int = 0
    readings: int = 0
    batches: int = 0
    commit_failures: int = 0
    rejects: Counter[str] = field(default_factory=Counter)
    last_commit_ms: float = 0.0
    queue_depth: int = 0
