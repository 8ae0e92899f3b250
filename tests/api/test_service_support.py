"""Shared set-up for the service-network tests (no tests here): a pinned clock, centres, vans,
customers with cars, positions and alerts, all through the running API or the owning
package's own writer."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from api.security.principal import Principal, Role
from api.security.tokens import issue_access_token
from api.settings import ApiSettings
from api.vehicle_registry import VehicleRegistry, VehicleSpec
from diagnostics.alert_store import AlertStore
from diagnostics.findings import AlertType, Finding, Severity
from diagnostics.lifecycle import Source
from protocol.catalogue import Powertrain
from protocol.vin import Vin
from tests.api.customer_platform import ADMIN, ADMIN_TOKEN, Platform, bearer

BERLIN = ZoneInfo("Europe/Berlin")
MARIENPLATZ = (48.137154, 11.576124)
EVERY_DAY = [{"weekday": d, "opens": "08:00", "closes": "18:00"} for d in range(1, 8)]


def next_monday(now: datetime) -> datetime:
    """05:00 UTC on the Monday after ``now``: a fixed weekday, clear of DST changes."""
    days = 7 - now.weekday()
    return (now + timedelta(days=days)).replace(hour=5, minute=0, second=0, microsecond=0)


def pin_clock(platform: Platform) -> datetime:
    """Set the platform's clock to the next Monday, 05:00 UTC (06:00 in Munich); returns it."""
    now = next_monday(datetime.now(UTC))
    platform.clock.ms = int(now.timestamp() * 1000)
    return now


def local(day: datetime, hour: int, minute: int = 0, zone: ZoneInfo = BERLIN) -> datetime:
    """``day``'s date at a local wall-clock time, as UTC."""
    wall = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
    return wall.astimezone(UTC)


def token_now(platform: Platform, principal: Principal) -> dict[str, str]:
    """Headers with a token issued at the platform's current time (after moving the clock
    past the 15 minutes a token lives)."""
    issued = issue_access_token(
        principal,
        key=ApiSettings(admin_token=ADMIN_TOKEN).jwt_signing_key,
        now=platform.clock.now(),
        ttl=timedelta(minutes=15),
    )
    return bearer(issued.token)


def centre_token(platform: Platform, client_id: str, centres: list[str]) -> dict[str, str]:
    return token_now(platform, Principal.client(client_id, Role.SERVICE_CENTER, frozenset(centres)))


async def centre(
    platform: Platform,
    centre_id: str,
    *,
    at: tuple[float, float] = MARIENPLATZ,
    bays: int = 2,
    skills: tuple[str, ...] = ("brakes", "diagnostics", "ev_high_voltage", "tyres"),
    timezone: str = "Europe/Berlin",
    hours: list[dict[str, Any]] | None = None,
    slot_minutes: int = 60,
) -> dict[str, Any]:
    body = {
        "id": centre_id,
        "name": f"Workshop {centre_id}",
        "address": f"{centre_id} street 1, Munich",
        "lat": at[0],
        "lon": at[1],
        "timezone": timezone,
        "bays": bays,
        "skills": list(skills),
        "slot_minutes": slot_minutes,
        "opening_hours": EVERY_DAY if hours is None else hours,
    }
    response = await platform.http.post("/v1/service/centres", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def van(
    platform: Platform,
    van_id: str,
    home: str,
    *,
    range_km: float = 20,
    skills: tuple[str, ...] = ("ev_high_voltage", "tyres", "diagnostics"),
    slot_minutes: int = 120,
) -> dict[str, Any]:
    body = {
        "id": van_id,
        "name": f"Van {van_id}",
        "home_centre_id": home,
        "range_km": range_km,
        "skills": list(skills),
        "slot_minutes": slot_minutes,
    }
    response = await platform.http.post("/v1/service/vans", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def register(
    platform: Platform,
    vin: str,
    *,
    brand: str = "Volkswagen",
    model: str = "ID.3",
    year: int = 2024,
    powertrain: Powertrain = Powertrain.BEV,
) -> None:
    await VehicleRegistry(platform.pool).register(
        VehicleSpec(Vin(vin), brand, model, year, powertrain)
    )


async def owner_of(
    platform: Platform, email: str, vin: str, **spec: Any
) -> tuple[str, dict[str, str]]:
    """A customer who owns a newly registered ``vin``: (customer id, their headers)."""
    customer_id = await platform.customer(email)
    await register(platform, vin, **spec)
    await platform.link(vin, customer_id)
    return customer_id, await platform.login(email)


async def place(platform: Platform, vin: str, lat: float, lon: float, at: datetime) -> None:
    """The car reports its position at ``at`` (through ingest's writer)."""
    await platform.samples(vin, "Vehicle.CurrentLocation.Latitude", [(at, lat)])
    await platform.samples(vin, "Vehicle.CurrentLocation.Longitude", [(at, lon)])


async def alert(
    pool: asyncpg.Pool,
    vin: str,
    *,
    now: datetime,
    type_: AlertType = AlertType.BRAKE_PAD_WEAR,
    severity: Severity = Severity.WARNING,
    predicted_failure_at: datetime | None = None,
    component: str = "Row1.Left",
) -> int:
    """Open an alert the way diagnostics does (with its ``alert.opened`` event); its id."""
    finding = Finding(
        vin=vin,
        type=type_,
        component=component,
        severity=severity,
        observed_at=now - timedelta(minutes=5),
        recommended_action="Have it checked",
        confidence=0.9,
        predicted_failure_at=predicted_failure_at,
    )
    changes = await AlertStore(pool).apply(Source.TREND, [finding], now=now)
    assert changes.opened, changes
    return changes.opened[0].id


async def book(
    platform: Platform,
    headers: dict[str, str],
    vin: str,
    slot_start: datetime,
    *,
    centre_id: str | None = "centre-x",
    expect: int = 201,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"vin": vin, "slot_start": slot_start.isoformat(), **extra}
    if centre_id is not None and "van_id" not in extra:
        body["centre_id"] = centre_id
    response = await platform.http.post("/v1/me/bookings", json=body, headers=headers)
    assert response.status_code == expect, response.text
    result: dict[str, Any] = response.json()
    return result


async def outbox(pool: asyncpg.Pool, prefix: str = "") -> list[dict[str, Any]]:
    """Every outbox event whose topic starts with ``prefix``, in order."""
    rows = await pool.fetch(
        "SELECT topic, subject, vin, customer_id, payload::text AS payload FROM outbox"
        " WHERE topic LIKE $1 || '%' ORDER BY id",
        prefix,
    )
    return [{**dict(r), "payload": json.loads(r["payload"])} for r in rows]
