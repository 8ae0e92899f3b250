-- OTA image repository (ADR 0008): the signed TUF metadata and the artifacts it lists.

-- Every signed version of every top-level role, as the exact bytes served. Versions are kept:
-- clients walk root one version at a time (TUF spec 5.3.4), and a consistent-snapshot client
-- may still fetch the snapshot and targets named by the timestamp it read a moment ago.
CREATE TABLE ota_tuf_metadata (
    role       text        NOT NULL CHECK (role IN ('root', 'targets', 'snapshot', 'timestamp')),
    version    integer     NOT NULL CHECK (version >= 1),
    expires    timestamptz NOT NULL,
    body       bytea       NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (role, version)
);

-- Uploaded images. The content lives in the artifact directory under its sha256; a row is
-- published once targets metadata lists it (targets_version).
CREATE TABLE ota_artifacts (
    id              uuid        PRIMARY KEY,
    name            text        NOT NULL,
    version         text        NOT NULL,
    -- The TUF target path (ota/image_target.py); unique, as "a-b"+"1" and "a"+"b-1" collide.
    target_path     text        GENERATED ALWAYS AS (name || '-' || version) STORED UNIQUE,
    length          bigint      NOT NULL CHECK (length > 0),
    sha256          text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    hardware_ids    text[]      NOT NULL CHECK (cardinality(hardware_ids) >= 1),
    release_counter integer     NOT NULL CHECK (release_counter >= 0),
    dependencies    text[]      NOT NULL DEFAULT '{}',
    conflicts       text[]      NOT NULL DEFAULT '{}',
    uploaded_at     timestamptz NOT NULL,
    published_at    timestamptz,
    targets_version integer,
    UNIQUE (name, version),
    CHECK ((published_at IS NULL) = (targets_version IS NULL))
);

-- Release counters per hardware id are checked against published images only.
CREATE INDEX ota_artifacts_published_hardware
    ON ota_artifacts USING gin (hardware_ids) WHERE published_at IS NOT NULL;
CREATE INDEX ota_artifacts_uploaded ON ota_artifacts (uploaded_at DESC, id);
