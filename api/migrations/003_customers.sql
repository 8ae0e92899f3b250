-- Customer platform, phase 1: customers, service clients, consent (append-only records plus the
-- current state), vehicle ownership periods, subscriptions and entitlements, and the location
-- consent ingest reads per VIN (ADR 0006).

CREATE TABLE customers (
    id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    email              text        NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    password_hash      text,       -- argon2; NULL: no password login (yet)
    given_name         text        NOT NULL DEFAULT '',
    family_name        text        NOT NULL DEFAULT '',
    phone              text,
    address_line       text,
    postal_code        text,
    city               text,
    country            text        CHECK (country ~ '^[A-Z]{2}$'),
    language           text        NOT NULL DEFAULT 'en',
    preferred_channels text[]      NOT NULL DEFAULT '{app}'
        CHECK (preferred_channels <@ ARRAY['app', 'email', 'in_car', 'sms']),
    quiet_hours_start  time,
    quiet_hours_end    time,
    timezone           text        NOT NULL DEFAULT 'UTC',
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK ((quiet_hours_start IS NULL) = (quiet_hours_end IS NULL))
);
-- E-mail is the login name: unique regardless of case.
CREATE UNIQUE INDEX customers_email ON customers (lower(email));
CREATE INDEX customers_created ON customers (created_at, id);

-- Service clients (client_credentials grant): a service centre's system or an admin tool.
CREATE TABLE api_clients (
    client_id   text        PRIMARY KEY CHECK (client_id ~ '^[a-z0-9][a-z0-9._-]{2,63}$'),
    secret_hash text        NOT NULL,
    role        text        NOT NULL CHECK (role IN ('service_center', 'fleet_admin')),
    centres     text[]      NOT NULL DEFAULT '{}',
    name        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz,
    CHECK (role <> 'service_center' OR cardinality(centres) > 0)
);

-- Every consent decision ever made, append-only (GDPR art. 7(1): the controller must be able to
-- demonstrate consent). Erasure anonymises (customer_id -> NULL) and never deletes.
CREATE TABLE consent_records (
    id          bigserial   PRIMARY KEY,
    customer_id uuid        REFERENCES customers (id) ON DELETE SET NULL,
    purpose     text        NOT NULL
        CHECK (purpose IN ('location', 'diagnostics_sharing', 'marketing', 'ota_auto_install')),
    granted     boolean     NOT NULL,
    source      text        NOT NULL CHECK (source IN ('app', 'web', 'dealer', 'in_car')),
    recorded_at timestamptz NOT NULL
);
CREATE INDEX consent_records_customer ON consent_records (customer_id, recorded_at DESC, id DESC);

CREATE FUNCTION api_consent_records_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- The one change allowed: anonymisation (erasure sets customer_id to NULL).
    IF TG_OP = 'UPDATE' AND NEW.customer_id IS NULL
       AND (NEW.id, NEW.purpose, NEW.granted, NEW.source, NEW.recorded_at)
           IS NOT DISTINCT FROM (OLD.id, OLD.purpose, OLD.granted, OLD.source, OLD.recorded_at)
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'consent_records is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER consent_records_append_only
BEFORE UPDATE OR DELETE ON consent_records
FOR EACH ROW EXECUTE FUNCTION api_consent_records_append_only();

-- The current decision per purpose: the newest record, kept in the same transaction.
CREATE TABLE customer_consents (
    customer_id uuid        NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    purpose     text        NOT NULL,
    granted     boolean     NOT NULL,
    source      text        NOT NULL,
    changed_at  timestamptz NOT NULL,
    PRIMARY KEY (customer_id, purpose)
);

-- Who owned which car when. One open period per vehicle; a customer sees a car's data only
-- from the start of their own period (ADR 0006).
CREATE TABLE vehicle_ownership (
    id          bigserial   PRIMARY KEY,
    vin         text        NOT NULL REFERENCES vehicles (vin) ON DELETE CASCADE,
    customer_id uuid        NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    source      text        NOT NULL CHECK (source IN ('admin', 'dealer')),
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz,
    CHECK (ended_at IS NULL OR ended_at >= started_at)
);
CREATE UNIQUE INDEX vehicle_ownership_current ON vehicle_ownership (vin) WHERE ended_at IS NULL;
CREATE INDEX vehicle_ownership_customer ON vehicle_ownership (customer_id, started_at);

-- Feature subscriptions belong to a customer (billing), for one vehicle.
CREATE TABLE subscriptions (
    id          bigserial   PRIMARY KEY,
    customer_id uuid        NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    vin         text        NOT NULL REFERENCES vehicles (vin) ON DELETE CASCADE,
    plan        text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('trial', 'active', 'cancelled', 'expired')),
    started_at  timestamptz NOT NULL,
    renews_at   timestamptz,
    ends_at     timestamptz
);
CREATE INDEX subscriptions_customer ON subscriptions (customer_id, vin);

-- Feature entitlements are bound to the vehicle (the signed document is VIN-bound, issue 9);
-- filled by the OTA service. A subscription-backed entitlement names its subscription.
CREATE TABLE entitlements (
    id              bigserial   PRIMARY KEY,
    vin             text        NOT NULL REFERENCES vehicles (vin) ON DELETE CASCADE,
    feature         text        NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('subscription', 'purchase', 'trial')),
    subscription_id bigint      REFERENCES subscriptions (id) ON DELETE SET NULL,
    valid_from      timestamptz NOT NULL,
    valid_until     timestamptz,
    revoked_at      timestamptz,
    version         bigint      NOT NULL DEFAULT 1
);
CREATE INDEX entitlements_vin ON entitlements (vin, feature);

-- May a position be stored for this car? For ingest: one row per registered vehicle. A car
-- linked to a customer: that customer's current `location` consent (no decision = no). A car
-- with no customer linked (dealer stock, test benches, the simulator): the OEM's own vehicle,
-- no data subject known, so true.
CREATE VIEW vehicle_location_consent AS
SELECT v.vin,
       o.customer_id IS NOT NULL AS owned,
       CASE WHEN o.customer_id IS NULL THEN true ELSE coalesce(c.granted, false) END AS granted
FROM vehicles v
LEFT JOIN vehicle_ownership o ON o.vin = v.vin AND o.ended_at IS NULL
LEFT JOIN customer_consents c ON c.customer_id = o.customer_id AND c.purpose = 'location';

-- Channel `vehicle_location_consent`, payload: a VIN whose answer above may have changed.
CREATE FUNCTION api_notify_location_consent_of_owner() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    row_customer uuid;
    vehicle text;
BEGIN
    row_customer := CASE WHEN TG_OP = 'DELETE' THEN OLD.customer_id ELSE NEW.customer_id END;
    IF (CASE WHEN TG_OP = 'DELETE' THEN OLD.purpose ELSE NEW.purpose END) <> 'location' THEN
        RETURN NULL;
    END IF;
    FOR vehicle IN
        SELECT vin FROM vehicle_ownership WHERE customer_id = row_customer AND ended_at IS NULL
    LOOP
        PERFORM pg_notify('vehicle_location_consent', vehicle);
    END LOOP;
    RETURN NULL;
END
$$;

CREATE TRIGGER customer_consents_location_changed
AFTER INSERT OR UPDATE OR DELETE ON customer_consents
FOR EACH ROW EXECUTE FUNCTION api_notify_location_consent_of_owner();

CREATE FUNCTION api_notify_location_consent_of_vehicle() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('vehicle_location_consent',
                      CASE WHEN TG_OP = 'DELETE' THEN OLD.vin ELSE NEW.vin END);
    RETURN NULL;
END
$$;

CREATE TRIGGER vehicle_ownership_location_changed
AFTER INSERT OR UPDATE OR DELETE ON vehicle_ownership
FOR EACH ROW EXECUTE FUNCTION api_notify_location_consent_of_vehicle();

CREATE TRIGGER vehicles_location_consent_new
AFTER INSERT ON vehicles
FOR EACH ROW EXECUTE FUNCTION api_notify_location_consent_of_vehicle();
