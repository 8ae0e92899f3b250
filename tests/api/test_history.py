"""GET /v1/vehicles/{vin}/telemetry on the native path (embedded PostgreSQL)."""

from __future__ import annotations

import secrets
import statistics
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from api.app import create_app
from api.settings import ApiSettings
from api.vehicle_registry import VehicleRegistry, VehicleSpec
from ingest.store import Batch, TelemetryStore
from ingest.validation import Reading
from protocol.catalogue import Powertrain
from protocol.endpoint import MqttEndpoint
from protocol.vin import Vin

VIN = "WVWZZZ1JZXW000001"
# Two hours of 1 Hz data starting mid-minute, so bucket alignment matters.
T0 = datetime(2026, 11, 20, 8, 0, 30, tzinfo=UTC)
TOKEN = secrets.token_urlsafe(32)


def speed_at(i: int) -> float:
    return float((i * 7) % 130)


@pytest.fixture
async def client(pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    await VehicleRegistry(pool).register(VehicleSpec(Vin(VIN), "VW", "Golf", 2021, Powertrain.ICE))
    batch = Batch()
    t0_ms = int(T0.timestamp() * 1000)
    readings = []
    for i in range(7200):
        ts = t0_ms + i * 1000
        readings.append(Reading("Vehicle.Speed", ts, speed_at(i), None))
        readings.append(Reading("Vehicle.IsMoving", ts, float(i % 2), None))
    batch.add_readings(VIN, readings)
    await TelemetryStore(pool).write(batch)
    app = create_app(
        ApiSettings(admin_token=TOKEN), mqtt=MqttEndpoint("127.0.0.1", 1), database=pool
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://api",
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as http,
    ):
        yield http


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


async def test_raw_samples_keep_their_types_and_order(client: httpx.AsyncClient) -> None:
    response = await client.get(
        f"/v1/vehicles/{VIN}/telemetry",
        params={
            "signals": "Vehicle.Speed,Vehicle.IsMoving",
            "start": iso(T0),
            "end": iso(T0 + timedelta(seconds=10)),
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["bucket"] is None and body["truncated"] is False
    series = {s["signal"]: s["points"] for s in body["series"]}
    assert [p["value"] for p in series["Vehicle.Speed"]] == [speed_at(i) for i in range(10)]
    assert [p["value"] for p in series["Vehicle.IsMoving"]][:3] == [False, True, False]


async def test_minute_buckets_match_an_independent_computation(
    client: httpx.AsyncClient,
) -> None:
    start, end = T0 + timedelta(minutes=10), T0 + timedelta(minutes=13)
    response = await client.get(
        f"/v1/vehicles/{VIN}/telemetry",
        params=[
            ("signals", "Vehicle.Speed"),
            ("start", str(int(start.timestamp() * 1000))),
            ("end", iso(end)),
            ("bucket", "1m"),
        ],
    )
    body = response.json()
    # Widened to whole minutes: 08:10:00 .. 08:14:00 (end 08:13:30 rounds up).
    assert body["start"].startswith("2026-11-20T08:10:00") and body["end"].startswith(
        "2026-11-20T08:14:00"
    )
    points = body["series"][0]["points"]
    assert len(points) == 4
    for point in points:
        bucket = datetime.fromisoformat(point["ts"])
        first = int((bucket - T0).total_seconds())
        values = [speed_at(i) for i in range(max(first, 0), first + 60)]
        assert point["samples"] == 60
        assert point["min"] == min(values) and point["max"] == max(values)
        assert point["avg"] == pytest.approx(statistics.fmean(values))


async def test_hour_buckets_cover_partial_hours(client: httpx.AsyncClient) -> None:
    response = await client.get(
        f"/v1/vehicles/{VIN}/telemetry",
        params={
            "signals": "Vehicle.Speed",
            "start": iso(T0 - timedelta(hours=1)),
            "end": iso(T0 + timedelta(hours=3)),
            "bucket": "1h",
        },
    )
    points = response.json()["series"][0]["points"]
    # Data from 08:00:30 to 10:00:29: three hour buckets, the first and last partial.
    assert [p["samples"] for p in points] == [3570, 3600, 30]


async def test_limit_truncates_and_says_so(client: httpx.AsyncClient) -> None:
    body = (
        await client.get(
            f"/v1/vehicles/{VIN}/telemetry",
            params={
                "signals": "Vehicle.Speed",
                "start": iso(T0),
                "end": iso(T0 + timedelta(minutes=5)),
                "limit": 100,
            },
        )
    ).json()
    assert body["truncated"] is True and len(body["series"][0]["points"]) == 100


async def test_the_limit_is_per_signal_so_none_starves_another(client: httpx.AsyncClient) -> None:
    body = (
        await client.get(
            f"/v1/vehicles/{VIN}/telemetry",
            params={
                "signals": "Vehicle.IsMoving,Vehicle.Speed",
                "start": iso(T0),
                "end": iso(T0 + timedelta(minutes=5)),
                "limit": 100,
            },
        )
    ).json()
    assert body["truncated"] is True
    assert [len(s["points"]) for s in body["series"]] == [100, 100]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"signals": "Vehicle.Speed", "start": "yesterday"}, "neither ISO 8601"),
        ({"signals": "Vehicle.Speed", "start": iso(T0), "end": iso(T0)}, "before end"),
        (
            {"signals": "Vehicle.Speed", "start": iso(T0), "end": iso(T0 + timedelta(days=2))},
            "exceeds",
        ),
        (
            {
                "signals": "Vehicle.Speed",
                "start": iso(T0),
                "end": iso(T0 + timedelta(days=40)),
                "bucket": "1m",
            },
            "exceeds",
        ),
        ({"signals": " , "}, "at least one"),
        ({"signals": ",".join(f"Vehicle.S{i}" for i in range(21))}, "at most 20"),
        # PostgreSQL cannot take NUL in text: a 422 here, not a 500 from the query
        ({"signals": "Vehicle.Speed\x00"}, "contains NUL"),
        ({"signals": "Vehicle.Speed,Vehicle.\x00X"}, "contains NUL"),
        ({"signals": "Vehicle." + "S" * 300}, "too long"),
    ],
)
async def test_bad_parameters_are_clear_422s(
    client: httpx.AsyncClient, params: dict[str, str], fragment: str
) -> None:
    response = await client.get(f"/v1/vehicles/{VIN}/telemetry", params=params)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_parameter"
    assert fragment in response.json()["message"]


async def test_unknown_bucket_unknown_vehicle_and_no_token(client: httpx.AsyncClient) -> None:
    bad_bucket = await client.get(
        f"/v1/vehicles/{VIN}/telemetry", params={"signals": "Vehicle.Speed", "bucket": "5m"}
    )
    assert bad_bucket.status_code == 422
    unknown = await client.get(
        "/v1/vehicles/WBA3A5C50CF256985/telemetry", params={"signals": "Vehicle.Speed"}
    )
    assert unknown.status_code == 404
    anonymous = await client.get(
        f"/v1/vehicles/{VIN}/telemetry",
        params={"signals": "Vehicle.Speed"},
        headers={"Authorization": ""},
    )
    assert anonymous.status_code == 401
