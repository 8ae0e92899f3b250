-- Events cars report (v1/vehicles/{VIN}/events: DTC set/clear, trips, charging, crash), one row
-- each. A resend carries the same seq and ts, so (vin, seq, ts) makes it a no-op; ts is part of
-- the key because a car whose counter was reset (ECU swap, lost memory) reuses seqs, and its new
-- events must not be taken for resends. body keeps the whole message, unknown fields included.
CREATE TABLE vehicle_events (
    vin         text        NOT NULL,
    seq         bigint      NOT NULL,
    ts          timestamptz NOT NULL,
    type        text        NOT NULL,
    code        text,
    active      boolean,
    body        jsonb       NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (vin, seq, ts)
);
CREATE INDEX vehicle_events_vin_ts ON vehicle_events (vin, ts DESC);
-- Diagnostics asks which codes are set on which cars.
CREATE INDEX vehicle_events_dtc ON vehicle_events (code, ts DESC) WHERE type = 'dtc';
