"""The 720-degree overview: profile, consents, vehicles with health, alerts, bookings and
notifications filled; OTA and offers empty until issues 9 and 10, in their final shape."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from api.notifications.notifier import notifier
from diagnostics.alert_store import AlertStore
from diagnostics.findings import AlertType, Finding, Severity
from diagnostics.lifecycle import Source
from tests.api.customer_platform import ADMIN, VIN_A, running_platform
from tests.api.test_service_support import book, centre, local, pin_clock

SECTIONS = {
    "customer",
    "consents",
    "vehicles",
    "entitlements",
    "alerts",
    "ota",
    "bookings",
    "offers",
    "notifications",
    "generated_at",
}


async def test_the_overview_is_the_same_for_the_customer_and_the_admin(
    pool: asyncpg.Pool,
) -> None:
    async with running_platform(pool) as platform:
        now = pin_clock(platform)
        ada = await platform.customer("ada@example.com", given_name="Ada")
        await platform.vehicle(VIN_A)
        await platform.link(VIN_A, ada)
        await platform.samples(VIN_A, "Vehicle.Speed", [(now, 12.5)])
        await platform.pool.execute(
            "INSERT INTO entitlements (vin, feature, kind, valid_from)"
            " VALUES ($1, 'heated_seats', 'purchase', $2)",
            VIN_A,
            now,
        )
        leak = Finding(
            VIN_A,
            AlertType.TIRE_SLOW_LEAK,
            "Row1.Left",
            Severity.WARNING,
            now,
            "Check the tyre.",
            predicted_failure_at=now + timedelta(days=12),
        )
        await AlertStore(pool).apply(Source.TREND, [leak], now=now)
        await notifier(pool, platform.clock).process_pending()  # the alert's notification
        me = await platform.login("ada@example.com")
        await platform.http.put(
            "/v1/me/consents", json={"source": "app", "purposes": {"location": True}}, headers=me
        )
        await centre(platform, "centre-x")
        earlier = await book(platform, me, VIN_A, local(now + timedelta(days=1), 9))
        later = await book(platform, me, VIN_A, local(now + timedelta(days=2), 14))
        cancelled = await platform.http.post(f"/v1/me/bookings/{earlier['id']}/cancel", headers=me)
        assert cancelled.status_code == 200, cancelled.text
        mine = (await platform.http.get("/v1/me/overview", headers=me)).json()
        theirs = (await platform.http.get(f"/v1/customers/{ada}/overview", headers=ADMIN)).json()

    assert set(mine) == SECTIONS
    assert mine == theirs
    assert mine["customer"]["given_name"] == "Ada"
    assert {c["purpose"]: c["granted"] for c in mine["consents"]}["location"] is True
    [car] = mine["vehicles"]
    assert car["vehicle"]["vin"] == VIN_A
    assert car["latest_state"]["Vehicle.Speed"]["value"] == 12.5
    assert car["health"] == {"status": "attention", "open_alerts": 1}
    assert [e["feature"] for e in mine["entitlements"]] == ["heated_seats"]
    [alert] = mine["alerts"]
    assert (alert["type"], alert["severity"], alert["status"]) == (
        "tire_slow_leak",
        "warning",
        "open",
    )
    assert alert["predicted_failure_at"] is not None
    [note] = mine["notifications"]
    assert note["channel"] == "app"
    assert note["title"]
    # Every booking of the customer, the newest slot first, cancelled ones included.
    assert mine["bookings"] == [
        {
            "id": booking["id"],
            "vin": VIN_A,
            "centre_id": "centre-x",
            "status": status,
            "slot_start": booking["slot_start"],
            "slot_end": booking["slot_end"],
        }
        for booking, status in ((later, "requested"), (earlier, "cancelled"))
    ]
    for empty in ("ota", "offers"):
        assert mine[empty] == []


async def test_the_overview_schema_already_has_its_final_shape(pool: asyncpg.Pool) -> None:
    async with running_platform(pool) as platform:
        schema = (await platform.http.get("/openapi.json")).json()
    models = schema["components"]["schemas"]
    overview = models["OverviewPublic"]["properties"]
    assert set(overview) == SECTIONS
    item = {
        name: overview[name]["items"]["$ref"].rsplit("/", 1)[1]
        for name in ("alerts", "ota", "bookings", "offers", "notifications")
    }
    assert {"predicted_failure_at", "severity", "status"} <= set(
        models[item["alerts"]]["properties"]
    )
    assert {"state", "target_version"} <= set(models[item["ota"]]["properties"])
    assert {"centre_id", "status", "slot_start"} <= set(models[item["bookings"]]["properties"])
    assert {"channel", "state"} <= set(models[item["notifications"]]["properties"])
    # Every route documents what it does.
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), (method, path)
