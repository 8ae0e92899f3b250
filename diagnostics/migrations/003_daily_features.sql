-- Daily features of every vehicle, the input of the trend models (diagnostics/trends/).
--
-- One row per vehicle and UTC day, written by diagnostics.features.refresh_daily_features from
-- that day's rows of `telemetry` (an idempotent upsert: refreshing a day again rewrites the same
-- values). The trend models read windows of days from here, never the raw samples, so a pass over
-- the whole fleet reads ~30 rows per car; and the features outlive the raw telemetry's retention.
--
-- Units are in the column names. NULL: the day had no qualifying sample (e.g. no cold tyre
-- reading because the car never stood long enough, no coolant at load because it did not drive).
CREATE TABLE vehicle_daily_features (
    vin                         text             NOT NULL,
    day                         date             NOT NULL,
    samples                     integer          NOT NULL,   -- telemetry rows that day
    odometer_km                 double precision,            -- Vehicle.TraveledDistance, day's max
    distance_km                 double precision,            -- driven that day (max - min)
    ambient_c                   double precision,            -- mean exterior air temperature
    -- Cold tyre pressure normalised to 15 C (ideal gas, absolute pressure), from samples where
    -- the car stood still with all four tyres within a few degrees of the air temperature.
    tire_cold_kpa_row1_left     double precision,
    tire_cold_kpa_row1_right    double precision,
    tire_cold_kpa_row2_left     double precision,
    tire_cold_kpa_row2_right    double precision,
    tire_cold_samples           integer          NOT NULL DEFAULT 0,
    -- 12 V battery: median open-circuit voltage 2-24 h after the car was last active (driving,
    -- engine running or charging), and the lowest voltage while driving (the cranking dip).
    lv_resting_v                double precision,
    lv_resting_samples          integer          NOT NULL DEFAULT 0,
    lv_cranking_min_v           double precision,
    -- Brake pad wear (wear sensor, % worn), the day's highest reading per wheel.
    pad_wear_pct_row1_left      double precision,
    pad_wear_pct_row1_right     double precision,
    pad_wear_pct_row2_left      double precision,
    pad_wear_pct_row2_right     double precision,
    -- Coolant: the day's peak with the engine warmed up: 10 min into a trip (hybrids stop and
    -- start their engine on the way), and with the engine running without a stop for 15 min
    -- (steady state: what a car with a conventional engine is judged on).
    coolant_peak_c              double precision,
    coolant_load_samples        integer          NOT NULL DEFAULT 0,
    coolant_steady_peak_c       double precision,
    -- Traction battery state of health, the day's mean.
    traction_soh_pct            double precision,
    PRIMARY KEY (vin, day)
);

-- Windows of days across the fleet (load_features) scan by day.
CREATE INDEX vehicle_daily_features_day ON vehicle_daily_features (day);
