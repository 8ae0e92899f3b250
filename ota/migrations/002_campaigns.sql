-- OTA phase 2 (ADR 0009): the Uptane director, ECU keys and version reports, the record of
-- installed software, campaigns and each vehicle's update status.
--
-- The ota package migrates before api (fleetlink/migrations.py), so nothing here references
-- the vehicles table; VINs are checked by pattern and joined at query time.

-- Director root: shared by every vehicle, signed by offline keys (one linear history).
CREATE TABLE ota_director_root (
    version    integer     PRIMARY KEY CHECK (version >= 1),
    expires    timestamptz NOT NULL,
    body       bytea       NOT NULL,
    created_at timestamptz NOT NULL
);

-- Per-vehicle director targets, snapshot and timestamp (Uptane 5.3.2): one version line per
-- VIN, served under /ota/director/{vin}/. ``plan_digest`` (targets only) is the digest of what
-- the director wanted when it signed, so an unchanged plan costs no signature.
CREATE TABLE ota_director_metadata (
    vin         text        NOT NULL CHECK (vin ~ '^[0-9A-HJ-NPR-Z]{17}$'),
    role        text        NOT NULL CHECK (role IN ('targets', 'snapshot', 'timestamp')),
    version     integer     NOT NULL CHECK (version >= 1),
    expires     timestamptz NOT NULL,
    body        bytea       NOT NULL,
    plan_digest text        CHECK ((role = 'targets') = (plan_digest IS NOT NULL)),
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (vin, role, version)
);

-- Each car's ECU signing keys (ed25519, raw 32 bytes), registered at production (Uptane
-- 5.4.1: ECU keys are provisioned at build time). Version reports are verified against them.
CREATE TABLE ota_ecu_keys (
    vin           text        NOT NULL CHECK (vin ~ '^[0-9A-HJ-NPR-Z]{17}$'),
    keyid         text        NOT NULL CHECK (keyid ~ '^[0-9a-f]{64}$'),
    public_key    bytea       NOT NULL CHECK (length(public_key) = 32),
    registered_at timestamptz NOT NULL,
    revoked_at    timestamptz,
    PRIMARY KEY (vin, keyid)
);

-- The last verified version report per vehicle: what the director computes from (ECU serials,
-- installed images, nonce). ``counter`` only goes up: a replayed report is refused.
CREATE TABLE ota_version_reports (
    vin         text        PRIMARY KEY CHECK (vin ~ '^[0-9A-HJ-NPR-Z]{17}$'),
    counter     bigint      NOT NULL CHECK (counter >= 0),
    nonce       text        NOT NULL,
    reported_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    body        bytea       NOT NULL
);

-- Installed software per vehicle and ECU (UN R156 7.1.1: the record of software per vehicle;
-- RXSWIN-style), current row plus every change in the history.
CREATE TABLE ota_ecu_software (
    vin             text        NOT NULL CHECK (vin ~ '^[0-9A-HJ-NPR-Z]{17}$'),
    ecu_serial      text        NOT NULL CHECK (length(ecu_serial) BETWEEN 1 AND 64),
    hardware_id     text        NOT NULL,
    version         text        NOT NULL,
    target_path     text,
    sha256          text        CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    length          bigint,
    release_counter integer,
    campaign_id     uuid,
    installed_at    timestamptz NOT NULL,
    PRIMARY KEY (vin, ecu_serial)
);

CREATE TABLE ota_ecu_software_history (
    id              bigserial   PRIMARY KEY,
    vin             text        NOT NULL,
    ecu_serial      text        NOT NULL,
    hardware_id     text        NOT NULL,
    version         text        NOT NULL,
    target_path     text,
    sha256          text,
    release_counter integer,
    campaign_id     uuid,
    installed_at    timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL
);
CREATE INDEX ota_ecu_software_history_vin ON ota_ecu_software_history (vin, recorded_at DESC, id);

-- Campaigns: one image to the vehicles the targeting selects, in waves.
CREATE TABLE ota_campaigns (
    id                 uuid        PRIMARY KEY,
    name               text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- The image, as the image repository listed it when the campaign was created.
    target_path        text        NOT NULL,
    target_name        text        NOT NULL,
    target_version     text        NOT NULL,
    target_sha256      text        NOT NULL CHECK (target_sha256 ~ '^[0-9a-f]{64}$'),
    target_length      bigint      NOT NULL CHECK (target_length > 0),
    hardware_ids       text[]      NOT NULL CHECK (cardinality(hardware_ids) >= 1),
    release_counter    integer     NOT NULL,
    targeting          jsonb       NOT NULL,
    waves              jsonb       NOT NULL,
    maintenance_window jsonb,
    preconditions      jsonb       NOT NULL,
    owner_info         jsonb       NOT NULL,
    default_timezone   text        NOT NULL,
    downgrade_override jsonb,
    status             text        NOT NULL
        CHECK (status IN ('active', 'paused', 'halted', 'cancelled', 'completed')),
    current_wave       integer     NOT NULL DEFAULT 0 CHECK (current_wave >= 0),
    status_reason      text,
    -- Failures per wave an operator accepted when resuming a halted campaign ({"0": 3}).
    acknowledged_failures jsonb    NOT NULL DEFAULT '{}',
    -- Vehicles registered up to this instant have been looked at by the targeting.
    enrolled_until     timestamptz NOT NULL,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL
);
CREATE INDEX ota_campaigns_created ON ota_campaigns (created_at DESC, id);

-- Each targeted vehicle's update: the status machine (ota/status_machine.py) with one
-- timestamp per status reached.
CREATE TABLE ota_campaign_vehicles (
    campaign_id      uuid        NOT NULL REFERENCES ota_campaigns (id) ON DELETE CASCADE,
    vin              text        NOT NULL CHECK (vin ~ '^[0-9A-HJ-NPR-Z]{17}$'),
    wave             integer     NOT NULL CHECK (wave >= 0),
    -- The ECUs the image goes to: [{"serial": ..., "hardware_id": ...}], fixed at enrollment.
    ecus             jsonb       NOT NULL,
    status           text        NOT NULL CHECK (status IN (
        'assigned', 'offered', 'accepted', 'downloading', 'downloaded', 'installing',
        'installed', 'failed', 'rolled_back', 'cancelled')),
    attempt          integer     NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    requires_consent boolean,
    assigned_at      timestamptz NOT NULL,
    offered_at       timestamptz,
    accepted_at      timestamptz,
    downloading_at   timestamptz,
    downloaded_at    timestamptz,
    installing_at    timestamptz,
    installed_at     timestamptz,
    failed_at        timestamptz,
    rolled_back_at   timestamptz,
    cancelled_at     timestamptz,
    result_code      text,
    result_detail    text,
    -- Why an assigned update is not offered yet (window closed, not parked, ...).
    hold_reason      text,
    command_id       text,
    command_approved boolean     NOT NULL DEFAULT false,
    command_at       timestamptz,
    commands_sent    integer     NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (campaign_id, vin)
);
CREATE INDEX ota_campaign_vehicles_progress ON ota_campaign_vehicles (campaign_id, wave, status);
-- One update in flight per vehicle: a second campaign's offer waits until the first is done.
CREATE UNIQUE INDEX ota_campaign_vehicles_one_in_flight ON ota_campaign_vehicles (vin)
    WHERE status IN ('offered', 'accepted', 'downloading', 'downloaded', 'installing');
