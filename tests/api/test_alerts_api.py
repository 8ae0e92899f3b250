"""The alert routes: filters, paging, what each caller sees, acknowledgement."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg
import pytest

from diagnostics.alert_store import AlertStore
from diagnostics.findings import AlertType, Finding, Severity
from diagnostics.lifecycle import Source
from tests.api.customer_platform import ADMIN, VIN_A, VIN_B, running_platform

pytestmark = pytest.mark.integration


def finding(vin: str, kind: AlertType, severity: Severity, at: datetime, part: str = "") -> Finding:
    return Finding(
        vin,
        kind,
        part,
        severity,
        at,
        "Book a visit.",
        confidence=0.75,
        predicted_failure_at=at + timedelta(days=9),
        evidence={"value": 1.5},
    )


async def test_alert_routes(pool: asyncpg.Pool) -> None:
    async with running_platform(pool) as platform:
        a_id = await platform.customer("a@example.com")
        b_id = await platform.customer("b@example.com")
        await platform.vehicle(VIN_A)
        await platform.vehicle(VIN_B)
        await platform.link(VIN_B, b_id)
        store = AlertStore(pool)
        before = platform.clock.now()
        # Raised before A owned the car: the previous owner's, never shown to A.
        await store.apply(
            Source.TREND, [finding(VIN_A, AlertType.SERVICE_DUE, Severity.INFO, before)], now=before
        )
        platform.clock.advance(timedelta(minutes=1))
        await platform.link(VIN_A, a_id)
        platform.clock.advance(timedelta(minutes=1))
        now = platform.clock.now()
        await store.apply(
            Source.TREND,
            [
                finding(VIN_A, AlertType.TIRE_SLOW_LEAK, Severity.WARNING, now, "Row1.Left"),
                finding(VIN_A, AlertType.BRAKE_PAD_WEAR, Severity.CRITICAL, now, "Row2.Right"),
                finding(VIN_B, AlertType.TIRE_SLOW_LEAK, Severity.WARNING, now, "Row1.Left"),
            ],
            now=now,
        )
        a = await platform.login("a@example.com")
        b = await platform.login("b@example.com")

        mine = (await platform.http.get(f"/v1/vehicles/{VIN_A}/alerts", headers=a)).json()
        assert mine["count"] == 2
        assert {x["type"] for x in mine["data"]} == {"tire_slow_leak", "brake_pad_wear"}
        leak = next(x for x in mine["data"] if x["type"] == "tire_slow_leak")
        assert leak["component"] == "Row1.Left"
        assert leak["predicted_failure_at"] is not None
        assert leak["evidence"] == {"value": 1.5}

        everything = (await platform.http.get("/v1/alerts", headers=ADMIN)).json()
        assert everything["count"] == 4
        critical = await platform.http.get("/v1/alerts?severity=critical", headers=a)
        assert [x["type"] for x in critical.json()["data"]] == ["brake_pad_wear"]
        paged = (await platform.http.get("/v1/alerts?limit=1&offset=5", headers=ADMIN)).json()
        assert paged == {"data": [], "count": 4}
        assert (await platform.http.get("/v1/alerts?type=nonsense", headers=a)).status_code == 422
        theirs = (await platform.http.get("/v1/alerts", headers=b)).json()
        assert [x["vin"] for x in theirs["data"]] == [VIN_B]

        # B cannot acknowledge A's alert, nor tell it exists.
        ack = f"/v1/alerts/{leak['id']}/ack"
        assert (await platform.http.post(ack, headers=b)).status_code == 404
        acked = await platform.http.post(ack, headers=a)
        assert acked.status_code == 200
        assert acked.json()["status"] == "acknowledged"
        assert acked.json()["acknowledged_at"] is not None
        open_now = (await platform.http.get("/v1/alerts?status=open", headers=a)).json()
        assert [x["type"] for x in open_now["data"]] == ["brake_pad_wear"]
        topics = await pool.fetch("SELECT topic FROM outbox ORDER BY id")
        assert [r["topic"] for r in topics][-1] == "alert.acknowledged"
