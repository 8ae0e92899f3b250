-- Predictive-maintenance and condition alerts. One active (open or acknowledged) alert per
-- vehicle, type and component; the engines update it as the prediction moves and resolve it
-- when the evidence goes away or a work order closes it. Every change is written with an
-- outbox event in the same transaction (ADR 0007).
--
-- No foreign key to vehicles: that table belongs to the api package, which migrates later;
-- erasure and vehicle deletion clean up through the API.

CREATE TABLE alerts (
    id                   bigserial   PRIMARY KEY,
    vin                  text        NOT NULL,
    type                 text        NOT NULL CHECK (type ~ '^[a-z][a-z0-9_]*$'),
    component            text        NOT NULL DEFAULT '',
    status               text        NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'acknowledged', 'resolved')),
    severity             text        NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    -- The engines currently asserting the condition ('stream', 'trend'); the alert resolves
    -- when the last one clears it.
    sources              text[]      NOT NULL,
    opened_at            timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    -- Sample times (not wall time): the data that opened it, and the newest data behind it.
    detected_at          timestamptz NOT NULL,
    observed_at          timestamptz NOT NULL,
    acknowledged_at      timestamptz,
    acknowledged_by      text,
    resolved_at          timestamptz,
    resolution           text        CHECK (resolution IN ('evidence_cleared', 'work_order', 'manual')),
    work_order_id        bigint,
    predicted_failure_at timestamptz,
    confidence           real        NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    evidence             jsonb       NOT NULL DEFAULT '{}',
    recommended_action   text        NOT NULL,
    revision             integer     NOT NULL DEFAULT 1,
    CHECK ((status = 'resolved') = (resolved_at IS NOT NULL))
);
CREATE UNIQUE INDEX alerts_one_active ON alerts (vin, type, component) WHERE status <> 'resolved';
CREATE INDEX alerts_vehicle ON alerts (vin, opened_at DESC, id DESC);
CREATE INDEX alerts_listing ON alerts (status, opened_at DESC, id DESC);
