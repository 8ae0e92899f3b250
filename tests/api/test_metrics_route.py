"""``GET /metrics``: the Prometheus text format from the registry the app was given."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.settings import ApiSettings
from ingest.metrics import build_registry
from ingest.stats import IngestStats
from protocol.endpoint import MqttEndpoint

ADMIN_TOKEN = "metrics-test-admin-token-long-enough-to-pass"
UNUSED_BROKER = MqttEndpoint("127.0.0.1", 1)  # /metrics never talks to the broker


@asynccontextmanager
async def api(
    pool: asyncpg.Pool, metrics: CollectorRegistry | None
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        ApiSettings(admin_token=ADMIN_TOKEN), mqtt=UNUSED_BROKER, database=pool, metrics=metrics
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://fleetlink.test"
        ) as client,
    ):
        yield client


async def test_metrics_are_served_in_the_text_format_without_a_token(pool: asyncpg.Pool) -> None:
    stats = IngestStats(messages=5, queue_depth=2)
    stats.rejects["too_large"] += 3
    async with api(pool, build_registry(stats, process=False)) as client:
        response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    assert samples[("fleetlink_ingest_messages_total", ())] == 5
    assert samples[("fleetlink_ingest_queue_depth", ())] == 2
    assert samples[("fleetlink_ingest_rejects_total", (("reason", "too_large"),))] == 3


async def test_without_a_registry_metrics_is_not_found(pool: asyncpg.Pool) -> None:
    async with api(pool, None) as client:
        response = await client.get("/metrics")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_metrics_route_is_documented(pool: asyncpg.Pool) -> None:
    async with api(pool, None) as client:
        schema = (await client.get("/openapi.json")).json()
    operation = schema["paths"]["/metrics"]["get"]
    assert "text/plain; version=0.0.4; charset=utf-8" in operation["responses"]["200"]["content"]
