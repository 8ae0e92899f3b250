"""Daily features: one row per vehicle and UTC day, the input of the trend models.

:func:`refresh_daily_features` computes one day's features for every vehicle with telemetry that
day in one set-based statement over the wide ``telemetry`` table (ADR 0005) and upserts them into
``vehicle_daily_features`` (``diagnostics/migrations/003_daily_features.sql``); running it again
for the same day writes the same rows. :func:`load_features` reads a window of days back as numpy
arrays of shape (vehicles, days) (per-wheel features (vehicles, 4, days)), NaN where a day has no
value, through a binary COPY parsed by numpy: no Python object per value.

What counts as a feature follows what a car publishes (see ``docs/simulator-faults.md`` and the
simulator's ``signal_readout``/``thermal``/``components``):

- cold tyre pressure: the sensor reports the pressure at the tyre's current temperature; at
  constant volume absolute pressure scales with absolute temperature, so a reading is brought
  to the 15 C reference the TPMS threshold is defined at. Only samples of a car standing still
  with every tyre within a few degrees of the air are used (no heat from driving or sun).
- 12 V resting voltage: the surface charge of driving fades over ~an hour and the battery
  self-discharges over days, so the open-circuit voltage is read 2-24 h after the car was last
  active (driving, engine running, or charging, which keeps the 12 V side awake).
- cranking minimum: the lowest 12 V reading while the car is not parked (the start dip).
- brake pad wear: the day's highest wear-sensor reading per wheel; odometer for wear per km.
- coolant peak at load: the day's highest coolant temperature with the engine running at least
  10 minutes into a trip (a short errand never warms the engine up, which is not a finding),
  and the same with the engine running without a stop for 15 minutes (steady state; a hybrid
  rarely runs its engine that long, a conventional car on every longer trip).
- traction battery state of health: the day's mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

import asyncpg
import numpy as np
import numpy.typing as npt

from diagnostics.trends.errors import FeatureWindowError

FloatArray = npt.NDArray[np.float64]

#: Wheel components in the order of the per-wheel axes (and of ``Finding.component``).
WHEELS: Final = ("Row1.Left", "Row1.Right", "Row2.Left", "Row2.Right")
_WHEEL_COLUMNS: Final = (
    "row1_wheel_left",
    "row1_wheel_right",
    "row2_wheel_left",
    "row2_wheel_right",
)
_WHEEL_SUFFIXES: Final = ("row1_left", "row1_right", "row2_left", "row2_right")

TIRE_REFERENCE_C: Final = 15.0  # cold pressures are compared at this temperature (TPMS)
ATMOSPHERE_KPA: Final = 101.3  # gauge -> absolute pressure
KELVIN: Final = 273.15
TIRE_COLD_DELTA_C: Final = 3.0  # a tyre this close to the air temperature is cold
LV_REST_MIN: Final = timedelta(hours=2)  # surface charge gone (relaxation ~15 min)
LV_REST_MAX: Final = timedelta(hours=24)  # before days of self-discharge bias the reading
COOLANT_WARM: Final = timedelta(minutes=10)  # thermostat regulating (warm-up ~4 min)
COOLANT_STEADY: Final = timedelta(minutes=15)  # engine running without a stop this long
#: How far before the day the activity history is read (for "hours since last active").
LOOKBACK: Final = LV_REST_MAX
REFRESH_WORK_MEM: Final = "256MB"

#: Columns of ``vehicle_daily_features`` that load_features returns, in array order.
SCALAR_COLUMNS: Final = (
    "odometer_km",
    "distance_km",
    "lv_resting_v",
    "lv_cranking_min_v",
    "coolant_peak_c",
    "coolant_steady_peak_c",
    "traction_soh_pct",
)
TIRE_COLUMNS: Final = tuple(f"tire_cold_kpa_{s}" for s in _WHEEL_SUFFIXES)
PAD_COLUMNS: Final = tuple(f"pad_wear_pct_{s}" for s in _WHEEL_SUFFIXES)
_ALL_COLUMNS: Final = (*SCALAR_COLUMNS, *TIRE_COLUMNS, *PAD_COLUMNS)


def _tire_sql() -> tuple[str, str]:
    """(per-wheel cold-pressure aggregates, the 'all tyres cold' condition)."""
    aggregates = []
    cold_terms = []
    for wheel, suffix in zip(_WHEEL_COLUMNS, _WHEEL_SUFFIXES, strict=True):
        pressure = f"chassis_axle_{wheel}_tire_pressure::float8"
        temperature = f"chassis_axle_{wheel}_tire_temperature"
        aggregates.append(
            f"avg(({pressure} + {ATMOSPHERE_KPA}) * {TIRE_REFERENCE_C + KELVIN}"
            f" / ({temperature} + {KELVIN}) - {ATMOSPHERE_KPA}) FILTER (WHERE cold)"
            f" AS tire_cold_kpa_{suffix}"
        )
        cold_terms.append(
            f"abs({temperature} - exterior_air_temperature) <= {TIRE_COLD_DELTA_C}"
            f" AND {pressure} IS NOT NULL"
        )
    return ",\n        ".join(aggregates), " AND ".join(cold_terms)


_TIRE_AGGREGATES, _TIRE_COLD = _tire_sql()
_PAD_AGGREGATES = ",\n        ".join(
    f"max(chassis_axle_{wheel}_brake_pad_wear)::float8 AS pad_wear_pct_{suffix}"
    for wheel, suffix in zip(_WHEEL_COLUMNS, _WHEEL_SUFFIXES, strict=True)
)
_INSERT_COLUMNS = (
    "vin, day, samples, odometer_km, distance_km, ambient_c, "
    + ", ".join(TIRE_COLUMNS)
    + ", tire_cold_samples, lv_resting_v, lv_resting_samples, lv_cranking_min_v, "
    + ", ".join(PAD_COLUMNS)
    + ", coolant_peak_c, coolant_load_samples, coolant_steady_peak_c, traction_soh_pct"
)
_UPDATE_SET = ", ".join(
    f"{c} = EXCLUDED.{c}" for c in _INSERT_COLUMNS.split(", ") if c not in ("vin", "day")
)

_PARKED = (
    "(NOT coalesce(is_moving, false) AND coalesce(transmission_current_gear, 0) = 0"
    " AND NOT coalesce(combustion_engine_is_running, false))"
)
_CHARGING = "coalesce(traction_battery_charging_is_charging, false)"
_RUNNING = "coalesce(combustion_engine_is_running, false)"
_LV = "low_voltage_battery_current_voltage"
_COOLANT = "combustion_engine_engine_coolant_temperature"
_DAY = "ts >= $1::timestamptz AND ts < $2::timestamptz"

# One statement per day, in two parts joined by VIN.
# - plain: what each sample tells on its own (odometer, cold tyres, pads, health, the cranking
#   dip): one scan and a hash aggregate, no sort.
# - timed: what depends on the car's history (hours since it was last active, minutes into the
#   trip and into the engine run): the day's samples, narrowed to the few columns it needs, are
#   ordered by (vin, ts) once and two window passes carry those times forward. The day before
#   is only aggregated (when was each car last parked, active, with its engine off) to fill in
#   for a car that has not changed state yet today.
# $1: day start, $2: day end, $3: the day.
REFRESH_SQL: Final = f"""
WITH plain AS (
    SELECT vin,
        count(*)::int AS samples,
        max(traveled_distance) AS odometer_km,
        max(traveled_distance) - min(traveled_distance) AS distance_km,
        avg(exterior_air_temperature) AS ambient_c,
        {_TIRE_AGGREGATES},
        (count(*) FILTER (WHERE cold))::int AS tire_cold_samples,
        min({_LV}) FILTER (WHERE NOT parked) AS lv_cranking_min_v,
        {_PAD_AGGREGATES},
        avg(traction_battery_state_of_health) AS traction_soh_pct
    FROM (
        SELECT *, (parked AND {_TIRE_COLD}) AS cold
        FROM (SELECT *, {_PARKED} AS parked FROM telemetry WHERE {_DAY}) AS day_rows
    ) AS flagged_rows
    GROUP BY vin
), before AS (
    SELECT vin,
        max(ts) FILTER (WHERE {_PARKED}) AS last_parked_ts,
        max(ts) FILTER (WHERE NOT {_PARKED} OR {_CHARGING}) AS last_active_ts,
        max(ts) FILTER (WHERE NOT {_RUNNING}) AS last_engine_off_ts
    FROM telemetry
    WHERE ts >= $1::timestamptz - interval '{int(LOOKBACK.total_seconds())} seconds'
      AND ts < $1::timestamptz
    GROUP BY vin
), narrow AS (
    SELECT vin, ts, {_LV} AS lv, {_COOLANT} AS coolant,
        {_PARKED} AS parked, {_CHARGING} AS charging, {_RUNNING} AS running
    FROM telemetry
    WHERE {_DAY}
), flagged AS (
    SELECT s.*, b.last_parked_ts AS before_parked_ts, b.last_active_ts AS before_active_ts,
        b.last_engine_off_ts AS before_engine_off_ts,
        lag(s.parked) OVER history AS was_parked,
        lag(s.running) OVER history AS was_running
    FROM narrow AS s LEFT JOIN before AS b ON b.vin = s.vin
    WINDOW history AS (PARTITION BY s.vin ORDER BY s.ts ROWS UNBOUNDED PRECEDING)
), marked AS (
    SELECT *,
        coalesce(max(ts) FILTER (WHERE NOT parked OR charging) OVER history, before_active_ts)
            AS last_active_ts,
        -- The first sample of the trip and of the engine run: parked samples may be minutes
        -- apart, so "since the last parked sample" would start the clock too early.
        coalesce(max(ts) FILTER (WHERE NOT parked AND was_parked) OVER history, before_parked_ts)
            AS trip_start_ts,
        coalesce(max(ts) FILTER (WHERE running AND NOT was_running) OVER history,
                 before_engine_off_ts) AS engine_start_ts
    FROM flagged
    WINDOW history AS (PARTITION BY vin ORDER BY ts ROWS UNBOUNDED PRECEDING)
), timed AS (
    SELECT vin,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY lv) FILTER (WHERE resting) AS lv_resting_v,
        (count(*) FILTER (WHERE resting))::int AS lv_resting_samples,
        max(coolant) FILTER (WHERE warm) AS coolant_peak_c,
        (count(*) FILTER (WHERE warm))::int AS coolant_load_samples,
        max(coolant) FILTER (WHERE steady) AS coolant_steady_peak_c
    FROM (
        SELECT vin, lv, coolant,
            (parked AND NOT charging AND lv IS NOT NULL
             AND ts - last_active_ts >= interval '{int(LV_REST_MIN.total_seconds())} seconds'
             AND ts - last_active_ts <= interval '{int(LV_REST_MAX.total_seconds())} seconds')
                AS resting,
            (running AND coolant IS NOT NULL
             AND ts - coalesce(trip_start_ts, '-infinity'::timestamptz)
                 >= interval '{int(COOLANT_WARM.total_seconds())} seconds') AS warm,
            (running AND coolant IS NOT NULL
             AND ts - coalesce(engine_start_ts, '-infinity'::timestamptz)
                 >= interval '{int(COOLANT_STEADY.total_seconds())} seconds') AS steady
        FROM marked
    ) AS timed_rows
    GROUP BY vin
)
INSERT INTO vehicle_daily_features ({_INSERT_COLUMNS})
SELECT p.vin, $3::date, p.samples, p.odometer_km, p.distance_km, p.ambient_c,
    {", ".join(f"p.{c}" for c in TIRE_COLUMNS)}, p.tire_cold_samples,
    t.lv_resting_v, t.lv_resting_samples, p.lv_cranking_min_v,
    {", ".join(f"p.{c}" for c in PAD_COLUMNS)},
    t.coolant_peak_c, t.coolant_load_samples, t.coolant_steady_peak_c, p.traction_soh_pct
FROM plain AS p JOIN timed AS t ON t.vin = p.vin
ON CONFLICT (vin, day) DO UPDATE SET {_UPDATE_SET}
"""


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a UTC day."""
    start = datetime.combine(day, time(), tzinfo=UTC)
    return start, start + timedelta(days=1)


async def refresh_daily_features(conn: asyncpg.Connection, *, day: date) -> int:
    """Compute ``day``'s (UTC) features of every vehicle with telemetry that day and upsert
    them. Returns the number of vehicles written. Idempotent: a second run writes the same
    values (late samples of the day, if any arrived meanwhile, are included)."""
    start, end = day_bounds(day)
    async with conn.transaction():
        # The day's samples are sorted once by (vin, ts); in memory, not in temporary files.
        await conn.execute(f"SET LOCAL work_mem = '{REFRESH_WORK_MEM}'")
        status: str = await conn.execute(REFRESH_SQL, start, end, day)
    return int(status.rsplit(" ", 1)[-1])


@dataclass(frozen=True, slots=True)
class DailyFeatures:
    """A window of daily features for a set of vehicles: day ``start + j`` is column ``j``.

    Scalar features have shape (vehicles, days), per-wheel features (vehicles, 4, days) in
    :data:`WHEELS` order; NaN marks a day without a value.
    """

    vins: tuple[str, ...]
    start: date
    odometer_km: FloatArray
    distance_km: FloatArray
    lv_resting_v: FloatArray
    lv_cranking_min_v: FloatArray
    coolant_peak_c: FloatArray
    coolant_steady_peak_c: FloatArray
    traction_soh_pct: FloatArray
    tire_cold_kpa: FloatArray
    pad_wear_pct: FloatArray

    def __post_init__(self) -> None:
        shape = (len(self.vins), self.days)
        for name in SCALAR_COLUMNS:
            if getattr(self, name).shape != shape:
                raise FeatureWindowError(
                    f"{name} has shape {getattr(self, name).shape}, expected {shape}"
                )
        wheel_shape = (shape[0], len(WHEELS), shape[1])
        for name in ("tire_cold_kpa", "pad_wear_pct"):
            if getattr(self, name).shape != wheel_shape:
                raise FeatureWindowError(
                    f"{name} has shape {getattr(self, name).shape}, expected {wheel_shape}"
                )

    @property
    def days(self) -> int:
        return int(self.odometer_km.shape[1])

    @property
    def end(self) -> date:
        """The last day of the window."""
        return self.start + timedelta(days=self.days - 1)

    @classmethod
    def empty(cls, vins: Sequence[str], start: date, days: int) -> DailyFeatures:
        """All-NaN features (to be filled in), e.g. for synthetic fleets."""
        v = len(vins)
        scalars = {name: np.full((v, days), np.nan) for name in SCALAR_COLUMNS}
        return cls(
            vins=tuple(vins),
            start=start,
            tire_cold_kpa=np.full((v, len(WHEELS), days), np.nan),
            pad_wear_pct=np.full((v, len(WHEELS), days), np.nan),
            **scalars,
        )


_VINS_SQL: Final = (
    "SELECT DISTINCT vin FROM vehicle_daily_features WHERE day BETWEEN $1 AND $2 ORDER BY vin"
)
# Every field fixed width (NaN for NULL, the vehicle's index instead of its VIN), so the binary
# COPY stream is a packed array of records numpy reads in one call.
_LOAD_SQL: Final = (
    "SELECT v.idx::int4, (f.day - $1::date)::int4, "
    + ", ".join(f"coalesce(f.{c}, 'NaN')::float8" for c in _ALL_COLUMNS)
    + " FROM vehicle_daily_features AS f"
    " JOIN unnest($3::text[]) WITH ORDINALITY AS v(vin, idx) ON v.vin = f.vin"
    " WHERE f.day BETWEEN $1 AND $2"
)
_COPY_SIGNATURE: Final = b"PGCOPY\n\xff\r\n\x00"
_RECORD: Final = np.dtype(
    [("fields", ">i2"), ("vin_len", ">i4"), ("vin", ">i4"), ("day_len", ">i4"), ("day", ">i4")]
    + [item for c in _ALL_COLUMNS for item in ((f"{c}_len", ">i4"), (c, ">f8"))]
)


def _parse_copy(data: bytes) -> npt.NDArray[np.void]:
    """Records of a binary COPY whose fields are all fixed width (PostgreSQL docs, COPY,
    'Binary Format': signature, flags, header extension, tuples, int16 -1 trailer)."""
    if not data.startswith(_COPY_SIGNATURE):
        raise FeatureWindowError("unexpected COPY stream from the database")
    extension = int.from_bytes(data[15:19], "big")
    body = data[19 + extension : len(data) - 2]
    if len(body) % _RECORD.itemsize:
        raise FeatureWindowError("COPY stream does not hold whole fixed-width records")
    return np.frombuffer(body, dtype=_RECORD)


async def load_features(
    conn: asyncpg.Connection, *, until: date, days: int, vins: Sequence[str] | None = None
) -> DailyFeatures:
    """The ``days`` days ending with ``until`` (inclusive) of ``vins`` (default: every vehicle
    with features in the window, sorted), as :class:`DailyFeatures`."""
    if days < 1:
        raise FeatureWindowError(f"days must be at least 1, not {days}")
    start = until - timedelta(days=days - 1)
    if vins is None:
        vins = [r["vin"] for r in await conn.fetch(_VINS_SQL, start, until)]
    features = DailyFeatures.empty(vins, start, days)
    if not vins:
        return features
    chunks: list[bytes] = []

    async def collect(chunk: bytes) -> None:
        chunks.append(chunk)

    await conn.copy_from_query(_LOAD_SQL, start, until, list(vins), output=collect, format="binary")
    records = _parse_copy(b"".join(chunks))
    row = records["vin"].astype(np.intp) - 1  # WITH ORDINALITY counts from 1
    col = records["day"].astype(np.intp)
    for name in SCALAR_COLUMNS:
        getattr(features, name)[row, col] = records[name]
    for wheel, (tire, pad) in enumerate(zip(TIRE_COLUMNS, PAD_COLUMNS, strict=True)):
        features.tire_cold_kpa[row, wheel, col] = records[tire]
        features.pad_wear_pct[row, wheel, col] = records[pad]
    return features
