-- Events cars report (v1/vehicles/{VIN}/events: DTC set/clear, trips, charging, crash), one row
-- each. seq is the car's message counter, so (vin, seq) identifies a message and a resend is a
-- no-op. body keeps the whole message, fields the contract does not name included.
CREATE TABLE vehicle_events (
    vin         text        NOT NULL,
    seq         bigint      NOT NULL,
    ts          timestamptz NOT NULL,
    type        text        NOT NULL,
    code        text,
    active      boolean,
    body        jsonb       NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (vin, seq)
);
CREATE INDEX vehicle_events_vin_ts ON vehicle_events (vin, ts DESC);
-- Diagnostics asks which codes are set on which cars.
CREATE INDEX vehicle_events_dtc ON vehicle_events (code, ts DESC) WHERE type = 'dtc';
