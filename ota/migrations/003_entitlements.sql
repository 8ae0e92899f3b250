-- Signed feature entitlement documents (issue 9; docs/ota.md, "Feature entitlements").
--
-- The entitlements themselves (vin, feature, kind, window, revoked_at) are rows of the
-- `entitlements` table of api migration 003; api migrates after ota, so nothing here refers to
-- api tables. api migration 007 calls the functions below from triggers:
-- - any change to a vehicle's entitlements (the admin routes, GDPR erasure, ...) allocates the
--   next document version in the changing transaction and requests a push
--   (ota_entitlements_changed);
-- - a vehicle coming online requests a push of its newest document (ota_entitlements_connected),
--   so a revocation made while it was offline reaches it at its next connection;
-- - a command_ack of an entitlements command records the version the car applied.
-- The push service (ota.entitlements.push) signs the vehicle's entitlements as of signing under
-- the newest allocated version and publishes it on v1/vehicles/{VIN}/commands.

CREATE TABLE ota_entitlement_heads (
    vin                  text        PRIMARY KEY,
    version              bigint      NOT NULL CHECK (version >= 1),  -- newest allocated
    changed_at           timestamptz NOT NULL,
    signed_version       bigint      NOT NULL DEFAULT 0,  -- newest signed; 0: none yet
    -- Each change and each connection adds a push request; the push service records the number
    -- it served. Due while requested > served, so a request arriving during a push is not lost.
    push_requests        bigint      NOT NULL DEFAULT 0,
    pushed_requests      bigint      NOT NULL DEFAULT 0,
    pushed_version       bigint      NOT NULL DEFAULT 0,
    pushed_at            timestamptz,
    -- A push in flight holds a lease until here; a failed one is retried from here. NULL: now.
    next_attempt_at      timestamptz,
    attempts             integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error           text,
    acknowledged_version bigint      NOT NULL DEFAULT 0,  -- the car's command_ack
    acknowledged_at      timestamptz,
    CHECK (signed_version <= version),
    CHECK (pushed_version <= signed_version),
    CHECK (acknowledged_version <= signed_version)
);
CREATE INDEX ota_entitlement_heads_due
    ON ota_entitlement_heads (next_attempt_at NULLS FIRST, vin)
    WHERE push_requests > pushed_requests;

-- Every signed version, as sent: the record of what each car was entitled to when.
CREATE TABLE ota_entitlement_documents (
    vin        text        NOT NULL,
    version    bigint      NOT NULL CHECK (version >= 1),
    issued_at  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    body       bytea       NOT NULL,  -- the canonical JSON that was signed
    envelope   jsonb       NOT NULL,  -- the DSSE envelope published to the car
    keyids     text[]      NOT NULL,
    PRIMARY KEY (vin, version),
    CHECK (expires_at > issued_at)
);

-- Channel `entitlement_push`, payload: a VIN with a push due.
CREATE FUNCTION ota_entitlements_changed(p_vin text, p_at timestamptz) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    allocated bigint;
BEGIN
    INSERT INTO ota_entitlement_heads AS h (vin, version, changed_at, push_requests)
    VALUES (p_vin, 1, p_at, 1)
    ON CONFLICT (vin) DO UPDATE
    SET version = h.version + 1, changed_at = excluded.changed_at,
        push_requests = h.push_requests + 1, next_attempt_at = NULL
    RETURNING h.version INTO allocated;
    PERFORM pg_notify('entitlement_push', p_vin);
    RETURN allocated;
END
$$;

CREATE FUNCTION ota_entitlements_connected(p_vin text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ota_entitlement_heads
    SET push_requests = push_requests + 1, next_attempt_at = NULL
    WHERE vin = p_vin;
    IF FOUND THEN
        PERFORM pg_notify('entitlement_push', p_vin);
    END IF;
END
$$;

CREATE FUNCTION ota_entitlements_acknowledged(p_vin text, p_version bigint, p_at timestamptz)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    -- A car cannot acknowledge a version that was never signed for it.
    UPDATE ota_entitlement_heads
    SET acknowledged_version = p_version, acknowledged_at = p_at
    WHERE vin = p_vin AND p_version > acknowledged_version AND p_version <= signed_version;
END
$$;
