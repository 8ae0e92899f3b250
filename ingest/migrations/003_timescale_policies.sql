-- TimescaleDB path of the telemetry store: compression, retention and the 1-minute / 1-hour
-- continuous aggregates that history queries read (ingest/history.py). A no-op without the
-- extension: on native partitions FleetLink drops expired partitions itself
-- (ingest/retention.py) and history computes the same buckets with date_bin.
--
-- Compression: segment by vin, order by (signal, ts). Every history query names one vehicle, so
-- it reads only that vehicle's segments; ordering by signal first keeps each signal's samples
-- together, and the per-batch min/max of signal and ts let a (vin, signal, time range) query skip
-- the other signals' batches without decompressing them. Segmenting by (vin, signal) instead
-- would split a vehicle-day into one segment per signal: most catalogue signals are sparse (a
-- few samples a minute or less), which gives batches far below the ~1000 rows compression needs.
-- A resend into a compressed chunk (ON CONFLICT DO NOTHING on (vin, signal, ts)) decompresses
-- only the batches of that vehicle's segment.
--
-- Continuous aggregates are created WITH NO DATA: only WITH DATA (which refreshes while
-- creating) is refused inside a transaction block or a DO block (TimescaleDB PR #2389), so this
-- migration runs in the runner's transaction like any other. materialized_only = false makes
-- them real-time: buckets not yet materialized are computed from the raw rows at query time, so
-- a fresh aggregate answers correctly before its policy has ever run.
--
-- The windows: 30 days is ingest's default retention (ingest/settings.py DEFAULT_RETENTION_DAYS)
-- and also the oldest sample validation accepts, so a store-and-forward backlog up to 30 days
-- late is still inside every refresh window (a refresh only recomputes invalidated buckets, so
-- a wide window is cheap). The aggregates keep the same 30 days as the raw rows, so a history
-- query gives the same answer here and on native partitions. Compression after 7 days leaves
-- the days most often resent or queried raw.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        RAISE NOTICE 'timescaledb not installed: no compression, retention or continuous aggregates';
        RETURN;
    END IF;

    EXECUTE $sql$
        ALTER TABLE telemetry SET (
            timescaledb.compress,
            timescaledb.compress_segmentby = 'vin',
            timescaledb.compress_orderby = 'signal, ts'
        )
    $sql$;
    PERFORM add_compression_policy('telemetry', compress_after => interval '7 days');
    PERFORM add_retention_policy('telemetry', drop_after => interval '30 days');

    -- Same columns and semantics as history's date_bin query: numeric samples only.
    EXECUTE $sql$
        CREATE MATERIALIZED VIEW telemetry_1m
        WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
        SELECT vin, signal, time_bucket(interval '1 minute', ts) AS bucket,
               min(value) AS min_value, avg(value) AS avg_value, max(value) AS max_value,
               count(*) AS samples
        FROM telemetry
        WHERE value IS NOT NULL
        GROUP BY vin, signal, bucket
        WITH NO DATA
    $sql$;
    EXECUTE $sql$
        CREATE MATERIALIZED VIEW telemetry_1h
        WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
        SELECT vin, signal, time_bucket(interval '1 hour', ts) AS bucket,
               min(value) AS min_value, avg(value) AS avg_value, max(value) AS max_value,
               count(*) AS samples
        FROM telemetry
        WHERE value IS NOT NULL
        GROUP BY vin, signal, bucket
        WITH NO DATA
    $sql$;

    -- end_offset: the current bucket is still filling; real-time aggregation serves it.
    PERFORM add_continuous_aggregate_policy('telemetry_1m',
        start_offset => interval '30 days', end_offset => interval '1 minute',
        schedule_interval => interval '1 minute');
    PERFORM add_continuous_aggregate_policy('telemetry_1h',
        start_offset => interval '30 days', end_offset => interval '1 hour',
        schedule_interval => interval '15 minutes');
    PERFORM add_retention_policy('telemetry_1m', drop_after => interval '30 days');
    PERFORM add_retention_policy('telemetry_1h', drop_after => interval '30 days');
END
$$;
