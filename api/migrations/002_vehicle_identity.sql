-- Vehicle identity: ECUs, client certificates, the broker-side password hash, and change
-- notifications so brokers (embedded or Mosquitto) apply a revocation within seconds.

-- The same one-way hash of the device secret in Mosquitto's PBKDF2-SHA512 format ($7$), so a
-- Mosquitto password file can be generated without the secret (ADR 0004). NULL for vehicles
-- registered before this migration until their credentials are next rotated.
ALTER TABLE vehicles ADD COLUMN mosquitto_hash text;
ALTER TABLE vehicles ADD COLUMN credentials_rotated_at timestamptz;

CREATE TABLE vehicle_ecus (
    vin              text NOT NULL REFERENCES vehicles (vin) ON DELETE CASCADE,
    ecu_id           text NOT NULL CHECK (length(ecu_id) BETWEEN 1 AND 64),
    hardware_id      text NOT NULL CHECK (length(hardware_id) BETWEEN 1 AND 128),
    software_version text NOT NULL CHECK (length(software_version) BETWEEN 1 AND 64),
    PRIMARY KEY (vin, ecu_id)
);

CREATE TABLE vehicle_certificates (
    serial             numeric(50, 0) PRIMARY KEY,
    vin                text        NOT NULL REFERENCES vehicles (vin) ON DELETE CASCADE,
    fingerprint_sha256 text        NOT NULL UNIQUE,
    not_before         timestamptz NOT NULL,
    not_after          timestamptz NOT NULL,
    issued_at          timestamptz NOT NULL DEFAULT now(),
    revoked_at         timestamptz
);
CREATE INDEX vehicle_certificates_vin ON vehicle_certificates (vin);

-- Every change of who may connect: payload is the VIN. Listeners re-read the registry.
CREATE FUNCTION api_notify_vehicle_identity() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('vehicle_identity', NEW.vin);
    RETURN NULL;
END
$$;

CREATE TRIGGER vehicles_identity_changed
AFTER INSERT OR UPDATE OF secret_hash, mosquitto_hash, revoked_at ON vehicles
FOR EACH ROW EXECUTE FUNCTION api_notify_vehicle_identity();

CREATE TRIGGER vehicle_certificates_changed
AFTER INSERT OR UPDATE OF revoked_at ON vehicle_certificates
FOR EACH ROW EXECUTE FUNCTION api_notify_vehicle_identity();
