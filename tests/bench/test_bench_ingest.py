"""Smoke run of ``fleetlink bench ingest``: the real command, a tiny load, the JSON contract."""

from __future__ import annotations

import io
import json

import pytest

from fleetlink.cli import main

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

REQUIRED_KEYS = {
    "values_per_s",
    "copy_values_per_s",
    "ratio",
    "lost",
    "duplicates",
    "p99_latency_ms",
}


def test_bench_ingest_json_smoke() -> None:
    out = io.StringIO()
    code = main(["bench", "ingest", "--vehicles", "5", "--seconds", "3", "--json"], out=out)
    assert code == 0
    figures = json.loads(out.getvalue())  # stdout holds nothing but the JSON object
    assert figures.keys() >= REQUIRED_KEYS
    assert figures["messages_sent"] > 0
    assert figures["values_committed"] == figures["values_sent"]
    assert figures["lost"] == 0
    assert figures["duplicates"] == 0
    assert figures["all_committed"] is True
    assert figures["ratio"] > 0
    assert figures["values_per_s"] > 0
    assert figures["copy_values_per_s"] > 0
    assert 0 < figures["p50_latency_ms"] <= figures["p99_latency_ms"]
