"""Daily features: refresh from real telemetry rows (set-based SQL), idempotence, and loading
windows back as fleet arrays."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import asyncpg
import numpy as np
import pytest

from diagnostics.features import (
    ATMOSPHERE_KPA,
    DailyFeatures,
    _parse_copy,
    load_features,
    refresh_daily_features,
)
from diagnostics.trends.errors import FeatureWindowError
from ingest.store import Batch, TelemetryStore
from ingest.validation import Reading

DAY = date(2026, 3, 10)
MIDNIGHT = datetime(2026, 3, 10, tzinfo=UTC)
ICE = "WBA5R1100NF000001"
BEV = "WVWZZZE10NZ000002"
WHEELS = ("Row1.Wheel.Left", "Row1.Wheel.Right", "Row2.Wheel.Left", "Row2.Wheel.Right")
COLD_C = 5.0
GAUGE_AT_5C = 225.0  # what the sensor reads at 5 C in every tyre


def cold_kpa(gauge: float, tyre_c: float) -> float:
    return (gauge + ATMOSPHERE_KPA) * 288.15 / (tyre_c + 273.15) - ATMOSPHERE_KPA


def signals(
    *,
    moving: bool,
    gear: int,
    engine: bool | None,
    lv: float,
    odometer: float,
    tyre_c: float,
    pads: tuple[float, float, float, float],
    coolant: float | None = None,
    soh: float | None = None,
    charging: bool | None = None,
) -> dict[str, float]:
    out = {
        "Vehicle.IsMoving": float(moving),
        "Vehicle.Speed": 40.0 if moving else 0.0,
        "Vehicle.Powertrain.Transmission.CurrentGear": float(gear),
        "Vehicle.LowVoltageBattery.CurrentVoltage": lv,
        "Vehicle.TraveledDistance": odometer,
        "Vehicle.Exterior.AirTemperature": COLD_C,
    }
    for wheel, pad in zip(WHEELS, pads, strict=True):
        axle = f"Vehicle.Chassis.Axle.{wheel}"
        out[f"{axle}.Tire.Pressure"] = round(
            (GAUGE_AT_5C + ATMOSPHERE_KPA) * (tyre_c + 273.15) / (COLD_C + 273.15) - ATMOSPHERE_KPA
        )
        out[f"{axle}.Tire.Temperature"] = tyre_c
        out[f"{axle}.Brake.PadWear"] = pad
    if engine is not None:
        out["Vehicle.Powertrain.CombustionEngine.IsRunning"] = float(engine)
        if coolant is not None:
            out["Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature"] = coolant
    if soh is not None:
        out["Vehicle.Powertrain.TractionBattery.StateOfHealth"] = soh
    if charging is not None:
        out["Vehicle.Powertrain.TractionBattery.Charging.IsCharging"] = float(charging)
    return out


def ice_day() -> list[tuple[datetime, dict[str, float]]]:
    """The petrol car: home since 18:00 the day before, a 40-minute trip at 07:00, then parked
    at work. Parked samples every 10 minutes, driving every minute."""
    pads = (40.0, 41.0, 20.0, 21.0)
    rows: list[tuple[datetime, dict[str, float]]] = []
    evening = MIDNIGHT - timedelta(hours=6)
    rows.append(
        (
            evening - timedelta(minutes=1),
            signals(
                moving=True,
                gear=3,
                engine=True,
                lv=14.2,
                odometer=999.0,
                tyre_c=20.0,
                pads=pads,
                coolant=90.0,
            ),
        )
    )
    at = evening
    while at < MIDNIGHT + timedelta(hours=7):
        # Resting voltage 12.60 V, with one 12.50 V reading (the median ignores it).
        lv = 12.50 if at == MIDNIGHT + timedelta(hours=3) else 12.60
        rows.append(
            (
                at,
                signals(
                    moving=False,
                    gear=0,
                    engine=False,
                    lv=lv,
                    odometer=1000.0,
                    tyre_c=COLD_C,
                    pads=pads,
                ),
            )
        )
        at += timedelta(minutes=10)
    start = MIDNIGHT + timedelta(hours=7, minutes=5)
    for minute in range(41):
        coolant = min(90.0, 20.0 + 7.0 * minute)
        if minute == 12:
            coolant = 97.0  # 12 minutes into the trip and the engine run: warm, not steady
        if minute == 18:
            coolant = 93.0  # 18 minutes: warm and steady
        rows.append(
            (
                start + timedelta(minutes=minute),
                signals(
                    moving=minute > 0,
                    gear=2,
                    engine=True,
                    lv=10.45 if minute == 0 else 14.2,  # the cranking dip in the first sample
                    odometer=1000.0 + 0.5 * minute,
                    tyre_c=COLD_C + minute * 0.5,
                    pads=(41.0, 41.0, 20.0, 21.0) if minute > 30 else pads,
                    coolant=coolant,
                ),
            )
        )
    at = start + timedelta(minutes=45)
    while at < MIDNIGHT + timedelta(hours=24):
        since_trip = at - (start + timedelta(minutes=40))
        lv = 12.9 if since_trip < timedelta(hours=1) else 12.62  # surface charge, then rest
        rows.append(
            (
                at,
                signals(
                    moving=False,
                    gear=0,
                    engine=False,
                    lv=lv,
                    odometer=1020.0,
                    tyre_c=COLD_C if since_trip > timedelta(hours=1) else 15.0,
                    pads=(41.0, 41.0, 20.0, 21.0),
                ),
            )
        )
        at += timedelta(minutes=10)
    return rows


def bev_day() -> list[tuple[datetime, dict[str, float]]]:
    """The electric car stands all day; it charges until 04:00 (the 12 V side is awake)."""
    pads = (10.0, 10.0, 5.0, 5.0)
    rows = [
        (
            MIDNIGHT - timedelta(hours=20),
            signals(
                moving=True,
                gear=1,
                engine=None,
                lv=14.0,
                odometer=500.0,
                tyre_c=10.0,
                pads=pads,
                soh=91.2,
                charging=False,
            ),
        )
    ]
    at = MIDNIGHT
    while at < MIDNIGHT + timedelta(hours=24):
        charging = at < MIDNIGHT + timedelta(hours=4)
        lv = 14.0 if charging else (12.55 if at >= MIDNIGHT + timedelta(hours=6) else 12.8)
        rows.append(
            (
                at,
                signals(
                    moving=False,
                    gear=0,
                    engine=None,
                    lv=lv,
                    odometer=500.0,
                    tyre_c=COLD_C,
                    pads=pads,
                    soh=91.0 if at.hour < 12 else 91.2,
                    charging=charging,
                ),
            )
        )
        at += timedelta(minutes=10)
    return rows


async def store(
    pool: asyncpg.Pool,
    vin: str,
    rows: list[tuple[datetime, dict[str, float]]],
    *,
    shuffle: bool = False,
) -> None:
    """Write through ingest's own store, in batches; shuffled: out of time order."""
    rows = list(rows)
    if shuffle:
        random.Random(4).shuffle(rows)
    for first in range(0, len(rows), 37):
        batch = Batch()
        for at, values in rows[first : first + 37]:
            ts_ms = int(at.timestamp() * 1000)
            batch.add_readings(vin, [Reading(k, ts_ms, v, None) for k, v in values.items()])
        await TelemetryStore(pool).write(batch)


@pytest.mark.integration
async def test_refresh_computes_the_days_features_from_telemetry(pool: asyncpg.Pool) -> None:
    await store(pool, ICE, ice_day(), shuffle=True)
    await store(pool, BEV, bev_day())
    async with pool.acquire() as conn:
        written = await refresh_daily_features(conn, day=DAY)
        rows = {r["vin"]: r for r in await conn.fetch("SELECT * FROM vehicle_daily_features")}
    assert written == 2 and set(rows) == {ICE, BEV}

    ice = rows[ICE]
    assert ice["day"] == DAY
    assert ice["samples"] == len([r for r in ice_day() if r[0] >= MIDNIGHT])
    assert ice["odometer_km"] == 1020.0 and ice["distance_km"] == 20.0
    # Every cold reading normalises to the same pressure at 15 C, whatever its rounding.
    expected = cold_kpa(GAUGE_AT_5C, COLD_C)
    for wheel in ("row1_left", "row1_right", "row2_left", "row2_right"):
        assert ice[f"tire_cold_kpa_{wheel}"] == pytest.approx(expected, abs=0.5)
    assert ice["tire_cold_samples"] > 100
    assert ice["lv_resting_v"] == pytest.approx(12.61, abs=0.011)  # median of 12.60 / 12.62
    assert ice["lv_resting_samples"] > 0
    assert ice["lv_cranking_min_v"] == 10.45
    assert (
        ice["pad_wear_pct_row1_left"],
        ice["pad_wear_pct_row1_right"],
        ice["pad_wear_pct_row2_left"],
        ice["pad_wear_pct_row2_right"],
    ) == (41.0, 41.0, 20.0, 21.0)
    assert ice["coolant_peak_c"] == 97.0  # 10 minutes into the trip
    assert ice["coolant_steady_peak_c"] == 93.0  # 15 minutes of uninterrupted running
    assert ice["traction_soh_pct"] is None

    bev = rows[BEV]
    assert bev["lv_resting_v"] == pytest.approx(12.55)  # not while or right after charging
    assert bev["lv_cranking_min_v"] is None and bev["coolant_peak_c"] is None
    assert bev["traction_soh_pct"] == pytest.approx(91.1)
    assert bev["distance_km"] == 0.0


@pytest.mark.integration
async def test_refresh_is_idempotent_and_loads_as_arrays(pool: asyncpg.Pool) -> None:
    await store(pool, ICE, ice_day())
    await store(pool, BEV, bev_day())
    async with pool.acquire() as conn:
        await refresh_daily_features(conn, day=DAY)
        first = await conn.fetch("SELECT * FROM vehicle_daily_features ORDER BY vin")
        assert await refresh_daily_features(conn, day=DAY) == 2
        second = await conn.fetch("SELECT * FROM vehicle_daily_features ORDER BY vin")
        assert [dict(r) for r in first] == [dict(r) for r in second]
        # The day before has only two samples: refreshed, it is a day with few features.
        await refresh_daily_features(conn, day=DAY - timedelta(days=1))

        features = await load_features(conn, until=DAY + timedelta(days=1), days=4)
        assert features.vins == (ICE, BEV)  # sorted
        assert features.start == DAY - timedelta(days=2)
        assert features.odometer_km.shape == (2, 4)
        assert features.tire_cold_kpa.shape == (2, 4, 4)
        assert np.isnan(features.odometer_km[:, [0, 3]]).all()  # no rows on those days
        assert features.odometer_km[0, 2] == 1020.0
        assert features.odometer_km[0, 1] == 1000.0  # the evening before, parked at home
        assert features.lv_cranking_min_v[0, 2] == 10.45
        assert np.isnan(features.traction_soh_pct[0]).all()
        assert features.traction_soh_pct[1, 2] == pytest.approx(91.1)
        assert features.pad_wear_pct[0, :, 2].tolist() == [41.0, 41.0, 20.0, 21.0]

        chosen = await load_features(conn, until=DAY, days=1, vins=[ICE, "WDD0000000UNKNOWN"])
        assert chosen.vins == (ICE, "WDD0000000UNKNOWN")
        assert chosen.lv_resting_v[0, 0] == pytest.approx(12.61, abs=0.011)
        assert np.isnan(chosen.lv_resting_v[1]).all()
        empty = await load_features(conn, until=DAY + timedelta(days=30), days=3)
        assert empty.vins == () and empty.odometer_km.shape == (0, 3)


async def test_bad_windows_are_refused_with_a_code() -> None:
    with pytest.raises(FeatureWindowError) as caught:
        await load_features(None, until=DAY, days=0)  # type: ignore[arg-type]
    assert caught.value.code == "diagnostics_feature_window_invalid"
    with pytest.raises(FeatureWindowError):
        _parse_copy(b"not a copy stream")
    features = DailyFeatures.empty(["A", "B"], DAY, 5)
    with pytest.raises(FeatureWindowError):
        DailyFeatures(
            vins=features.vins,
            start=DAY,
            odometer_km=np.zeros((2, 4)),  # one day short
            distance_km=features.distance_km,
            lv_resting_v=features.lv_resting_v,
            lv_cranking_min_v=features.lv_cranking_min_v,
            coolant_peak_c=features.coolant_peak_c,
            coolant_steady_peak_c=features.coolant_steady_peak_c,
            traction_soh_pct=features.traction_soh_pct,
            tire_cold_kpa=features.tire_cold_kpa,
            pad_wear_pct=features.pad_wear_pct,
        )
