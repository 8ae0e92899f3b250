-- Telemetry store. One row per (vehicle, signal, sample time): a narrow layout that keeps every
-- signal, known or not. Issue 5 revisits the layout by measurement (wide hot columns + long tail).
-- The primary key makes resends idempotent: a sample is identified by (VIN, ts), per signal.
--
-- TimescaleDB is used when CREATE EXTENSION works (production); otherwise the table is natively
-- range-partitioned by day and FleetLink creates the partitions (ingest_ensure_partitions).

DO $$
BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'timescaledb unavailable (%): native partitioning', SQLERRM;
    END;

    -- One definition for both paths; only the storage differs.
    EXECUTE format(
        'CREATE TABLE telemetry (
             vin        text             NOT NULL,
             signal     text             NOT NULL,
             ts         timestamptz      NOT NULL,
             value      double precision,
             value_text text,
             PRIMARY KEY (vin, signal, ts)
         ) %s',
        CASE WHEN EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
             THEN '' ELSE 'PARTITION BY RANGE (ts)' END);
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        PERFORM create_hypertable('telemetry', 'ts', chunk_time_interval => interval '1 day');
    END IF;
END
$$;

-- Creates the daily partitions covering [from_ts, to_ts] (no-op under TimescaleDB, which makes
-- its own chunks). Serialised by an advisory lock so concurrent workers do not race on DDL.
CREATE FUNCTION ingest_ensure_partitions(from_ts timestamptz, to_ts timestamptz)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    day date;
    created integer := 0;
    part_name text;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        RETURN 0;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('ingest_ensure_partitions'));
    FOR day IN
        SELECT generate_series((from_ts AT TIME ZONE 'UTC')::date,
                               (to_ts AT TIME ZONE 'UTC')::date, interval '1 day')::date
    LOOP
        part_name := 'telemetry_p' || to_char(day, 'YYYYMMDD');
        IF to_regclass(part_name) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF telemetry FOR VALUES FROM (%L) TO (%L)',
                part_name,
                (day::timestamp AT TIME ZONE 'UTC'),
                ((day + 1)::timestamp AT TIME ZONE 'UTC'));
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END
$$;

-- Latest value and time of every signal per vehicle: what GET /v1/vehicles/{vin}/state serves.
CREATE TABLE vehicle_state (
    vin        text             NOT NULL,
    signal     text             NOT NULL,
    ts         timestamptz      NOT NULL,
    value      double precision,
    value_text text,
    updated_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (vin, signal)
);

-- What could not be stored, with a machine-readable reason (see docs/protocol.md).
CREATE TABLE dead_letters (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    vin         text,
    topic       text        NOT NULL,
    reason      text        NOT NULL,
    detail      text        NOT NULL,
    payload     bytea
);
CREATE INDEX dead_letters_vin_received ON dead_letters (vin, received_at DESC);
CREATE INDEX dead_letters_reason_received ON dead_letters (reason, received_at DESC);

-- Per-vehicle message sequence bookkeeping: gaps and duplicates of `seq`.
CREATE TABLE ingest_sequences (
    vin        text        PRIMARY KEY,
    last_seq   bigint      NOT NULL,
    gaps       bigint      NOT NULL DEFAULT 0,
    duplicates bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
