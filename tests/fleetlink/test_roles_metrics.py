"""``fleetlink serve ingest`` serves its worker's metrics only when a port is configured."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from fleetlink.embedded_postgres import free_port
from fleetlink.roles import _metrics_server
from ingest.settings import IngestSettings
from ingest.stats import IngestStats


def test_metrics_server_runs_for_the_worker_lifetime() -> None:
    port = free_port()
    stats = IngestStats(messages=3)
    with _metrics_server(stats, IngestSettings(metrics_port=port)):
        stats.messages += 1
        url = f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read().decode()
    assert "fleetlink_ingest_messages_total 4.0" in body
    with socket.socket() as probe:  # closed again afterwards
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_no_port_no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[object] = []
    monkeypatch.setattr("fleetlink.roles.serve_metrics", lambda *a, **k: started.append(a))
    with _metrics_server(IngestStats(), IngestSettings()):
        pass
    assert started == []  # FLEETLINK_INGEST_METRICS_PORT unset: nothing listens
