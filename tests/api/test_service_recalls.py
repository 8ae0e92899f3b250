"""Recall matching (brand, model, model-year and VIN-serial range edges), the warranty
decision (age and mileage edges), and the admin routes for campaigns and terms."""

from __future__ import annotations

from datetime import UTC, date, datetime

import asyncpg
import pytest

from api.service.recall_check import RecallCampaign, VehicleIdentity, affects, open_recalls
from api.service.warranty import (
    WarrantyDecision,
    WarrantyStatus,
    WarrantyTerms,
    anniversary,
    decide_warranty,
)
from tests.api.customer_platform import ADMIN, running_platform

T = datetime(2030, 1, 1, tzinfo=UTC)


def campaign(**changes: object) -> RecallCampaign:
    fields: dict[str, object] = {
        "code": "VW-24-ID3-HV",
        "title": "HV connector",
        "brand": "Volkswagen",
        "model": "ID.3",
        "model_year_from": 2020,
        "model_year_to": 2022,
        "serial_from": "000100",
        "serial_to": "002000",
        "remedy": "Retighten",
        "active": True,
        "created_at": T,
        "updated_at": T,
    }
    return RecallCampaign(**{**fields, **changes})  # type: ignore[arg-type]  # test data


def car(
    serial: str = "000500", year: int = 2021, model: str = "ID.3", brand: str = "Volkswagen"
) -> VehicleIdentity:
    return VehicleIdentity(f"WVWZZZE1ZMZ{serial}", brand, model, year)


# -- recalls (pure) -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("serial", "hit"),
    [("000099", False), ("000100", True), ("001999", True), ("002000", True), ("002001", False)],
)
def test_the_serial_range_includes_both_ends(serial: str, hit: bool) -> None:
    assert affects(campaign(), car(serial=serial)) is hit


@pytest.mark.parametrize(
    ("year", "hit"), [(2019, False), (2020, True), (2021, True), (2022, True), (2023, False)]
)
def test_the_model_year_range_includes_both_ends(year: int, hit: bool) -> None:
    assert affects(campaign(), car(year=year)) is hit


def test_brand_and_model_compare_without_case_and_a_missing_model_means_all() -> None:
    assert affects(campaign(), car(brand="VOLKSWAGEN", model="id.3 "))
    assert not affects(campaign(), car(model="ID.4"))
    assert not affects(campaign(), car(brand="Skoda"))
    assert affects(campaign(model=None), car(model="ID.4"))


def test_open_bounds_are_unbounded_and_inactive_campaigns_match_nothing() -> None:
    open_ended = campaign(
        model_year_from=None, model_year_to=None, serial_from=None, serial_to=None
    )
    assert affects(open_ended, car(serial="999999", year=2035))
    assert not affects(campaign(active=False), car())


def test_remedies_done_are_not_open_any_more() -> None:
    other = campaign(code="VW-25-ID3-SW", model_year_to=None, serial_from=None, serial_to=None)
    assert [c.code for c in open_recalls([other, campaign()], car())] == [
        "VW-24-ID3-HV",
        "VW-25-ID3-SW",
    ]
    assert [c.code for c in open_recalls([other, campaign()], car(), done=["VW-24-ID3-HV"])] == [
        "VW-25-ID3-SW"
    ]


# -- warranty (pure) ------------------------------------------------------------------------------

TERMS = WarrantyTerms("Toyota", years=3, km=100_000)


def decide(
    today: date, odometer: float | None, registered: date | None = date(2027, 5, 10)
) -> WarrantyDecision:
    return decide_warranty(
        TERMS,
        model_year=2027,
        first_registered_on=registered,
        odometer_km=odometer,
        odometer_basis="workshop",
        today=today,
    )


@pytest.mark.parametrize(
    ("today", "status"),
    [
        (date(2030, 5, 9), WarrantyStatus.COVERED),  # the last day
        (date(2030, 5, 10), WarrantyStatus.EXPIRED_AGE),  # the third anniversary
    ],
)
def test_age_ends_on_the_anniversary(today: date, status: WarrantyStatus) -> None:
    decision = decide(today, 50_000)
    assert decision.status is status
    assert decision.expires_on == date(2030, 5, 10)
    assert decision.start_basis == "first_registration"


@pytest.mark.parametrize(
    ("odometer", "status"),
    [
        (99_999.9, WarrantyStatus.COVERED),
        (100_000.0, WarrantyStatus.COVERED),  # "up to 100,000 km"
        (100_000.1, WarrantyStatus.EXPIRED_MILEAGE),
        (None, WarrantyStatus.MILEAGE_UNKNOWN),
    ],
)
def test_mileage_limit_is_inclusive(odometer: float | None, status: WarrantyStatus) -> None:
    decision = decide(date(2028, 1, 1), odometer)
    assert decision.status is status
    assert decision.covered is (status is WarrantyStatus.COVERED)


def test_age_is_decided_first_and_without_terms_nothing_is_covered() -> None:
    assert decide(date(2031, 1, 1), 200_000).status is WarrantyStatus.EXPIRED_AGE
    none = decide_warranty(
        None,
        model_year=2027,
        first_registered_on=None,
        odometer_km=10,
        odometer_basis="telemetry",
        today=date(2027, 6, 1),
    )
    assert (none.status, none.expires_on) == (WarrantyStatus.NO_TERMS, None)


def test_without_a_registration_date_the_model_year_starts_it() -> None:
    decision = decide(date(2029, 12, 31), 10, registered=None)
    assert (decision.starts_on, decision.start_basis) == (date(2027, 1, 1), "model_year")
    assert decide(date(2030, 1, 1), 10, registered=None).status is WarrantyStatus.EXPIRED_AGE


def test_no_mileage_limit() -> None:
    unlimited = WarrantyTerms("BMW", years=2, km=None)
    decision = decide_warranty(
        unlimited,
        model_year=2029,
        first_registered_on=date(2029, 3, 1),
        odometer_km=None,
        odometer_basis=None,
        today=date(2030, 1, 1),
    )
    assert decision.covered


def test_a_leap_day_registration_expires_on_the_28th() -> None:
    assert anniversary(date(2028, 2, 29), 3) == date(2031, 2, 28)
    assert anniversary(date(2028, 2, 29), 4) == date(2032, 2, 29)


# -- admin routes ---------------------------------------------------------------------------------


@pytest.mark.integration
async def test_recall_campaigns_are_created_changed_and_listed(pool: asyncpg.Pool) -> None:
    async with running_platform(pool) as platform:
        http = platform.http
        body = {
            "code": "VW-24-ID3-HV",
            "title": "HV connector",
            "brand": "Volkswagen",
            "model": "ID.3",
            "model_year_from": 2020,
            "model_year_to": 2022,
            "serial_from": "000100",
            "serial_to": "002000",
            "remedy": "Retighten the connectors",
        }
        created = await http.post("/v1/service/recalls", json=body, headers=ADMIN)
        assert created.status_code == 201, created.text
        assert created.json()["active"] is True
        again = await http.post("/v1/service/recalls", json=body, headers=ADMIN)
        assert (again.status_code, again.json()["code"]) == (409, "already_exists")
        inverted = {**body, "code": "X-1-BAD", "serial_from": "009000"}
        assert (
            await http.post("/v1/service/recalls", json=inverted, headers=ADMIN)
        ).status_code == 422
        changed = await http.patch(
            "/v1/service/recalls/VW-24-ID3-HV",
            json={"active": False, "model": None},
            headers=ADMIN,
        )
        assert (changed.json()["active"], changed.json()["model"]) == (False, None)
        past_bound = await http.patch(
            "/v1/service/recalls/VW-24-ID3-HV", json={"model_year_to": 2019}, headers=ADMIN
        )
        assert (past_bound.status_code, past_bound.json()["code"]) == (422, "invalid_range")
        listing = (await http.get("/v1/service/recalls", headers=ADMIN)).json()
        assert [r["code"] for r in listing["data"]] == ["VW-24-ID3-HV"]
        missing = await http.get("/v1/service/recalls/NOPE-1", headers=ADMIN)
        assert (missing.status_code, missing.json()["code"]) == (404, "recall_not_found")


@pytest.mark.integration
async def test_warranty_terms_are_one_per_brand_whatever_the_case(pool: asyncpg.Pool) -> None:
    async with running_platform(pool) as platform:
        http = platform.http
        put = await http.put(
            "/v1/service/warranty-terms/Toyota", json={"years": 3, "km": 100000}, headers=ADMIN
        )
        assert put.status_code == 200, put.text
        again = await http.put(
            "/v1/service/warranty-terms/TOYOTA", json={"years": 5}, headers=ADMIN
        )
        assert (again.json()["brand"], again.json()["years"], again.json()["km"]) == (
            "Toyota",
            5,
            None,
        )
        listing = (await http.get("/v1/service/warranty-terms", headers=ADMIN)).json()
        assert listing["count"] == 1
        assert (
            await http.delete("/v1/service/warranty-terms/toyota", headers=ADMIN)
        ).status_code == 204
        gone = await http.delete("/v1/service/warranty-terms/toyota", headers=ADMIN)
        assert (gone.status_code, gone.json()["code"]) == (404, "warranty_terms_not_found")
