-- Glue between the cars' commands channel and the tables it concerns. In the database, so that
-- ingest (which stores the cars' events and presence) knows nothing of notifications or
-- entitlements: it migrates before api and never imports it.
--
-- 1. command_ack events (docs/protocol.md 5.8). ingest stores them in vehicle_events; an
--    acknowledged `notify-<delivery id>` marks that in-car delivery `delivered` (issue 7), an
--    acknowledged `entitlements-<VIN>-<version>` records the version the car applied. Only the
--    car a command went to can acknowledge it.
-- 2. Any change to a vehicle's entitlements (the admin routes, GDPR erasure, any later writer)
--    allocates the next entitlement document version in the same transaction and queues its
--    push (ota migration 003); the row keeps the version that carries its change.
-- 3. A vehicle coming online gets its newest entitlement document again: a revocation made
--    while it was offline reaches it at its next connection.
--
-- 1 and 3 run inside ingest's batch transaction: a failure there is logged as a warning and
-- never costs ingest the batch (the cars' data matters more than a delivery state).

CREATE FUNCTION api_command_acknowledged() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    command text := NEW.body ->> 'id';
    parts text[];
BEGIN
    IF command IS NULL THEN
        RETURN NULL;
    END IF;
    BEGIN
        parts := regexp_match(command, '^notify-([0-9]{1,18})$');
        IF parts IS NOT NULL THEN
            UPDATE notification_deliveries d
            SET state = 'delivered', delivered_at = NEW.ts, sent_at = coalesce(d.sent_at, NEW.ts),
                next_attempt_at = NULL, reason = NULL
            FROM notifications n
            WHERE d.id = parts[1]::bigint AND d.channel = 'in_car' AND n.id = d.notification_id
              AND n.vin = NEW.vin AND d.state IN ('queued', 'sent', 'failed');
            RETURN NULL;
        END IF;
        parts := regexp_match(command, '^entitlements-([0-9A-HJ-NPR-Z]{17})-([0-9]{1,18})$');
        IF parts IS NOT NULL AND parts[1] = NEW.vin THEN
            PERFORM ota_entitlements_acknowledged(NEW.vin, parts[2]::bigint, NEW.ts);
        END IF;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'command_ack % of %: % (%)', command, NEW.vin, SQLERRM, SQLSTATE;
    END;
    RETURN NULL;
END
$$;

CREATE TRIGGER vehicle_events_command_ack
AFTER INSERT ON vehicle_events
FOR EACH ROW WHEN (NEW.type = 'command_ack')
EXECUTE FUNCTION api_command_acknowledged();

CREATE FUNCTION api_entitlements_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM ota_entitlements_changed(OLD.vin, now());
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF (NEW.vin, NEW.feature, NEW.kind, NEW.subscription_id, NEW.valid_from, NEW.valid_until,
            NEW.revoked_at) IS NOT DISTINCT FROM (OLD.vin, OLD.feature, OLD.kind,
            OLD.subscription_id, OLD.valid_from, OLD.valid_until, OLD.revoked_at) THEN
            RETURN NEW;  -- nothing a car would see changed
        END IF;
        IF NEW.vin <> OLD.vin THEN
            PERFORM ota_entitlements_changed(OLD.vin, now());
        END IF;
    END IF;
    NEW.version := ota_entitlements_changed(NEW.vin, now());
    RETURN NEW;
END
$$;

CREATE TRIGGER entitlements_document_version
BEFORE INSERT OR UPDATE OR DELETE ON entitlements
FOR EACH ROW EXECUTE FUNCTION api_entitlements_changed();

CREATE FUNCTION api_vehicle_connected() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT NEW.online OR NEW.last_connected_at IS NULL OR (TG_OP = 'UPDATE'
       AND NEW.last_connected_at IS NOT DISTINCT FROM OLD.last_connected_at) THEN
        RETURN NULL;
    END IF;
    BEGIN
        PERFORM ota_entitlements_connected(NEW.vin);
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'entitlement push on connection of %: % (%)', NEW.vin, SQLERRM, SQLSTATE;
    END;
    RETURN NULL;
END
$$;

CREATE TRIGGER vehicle_presence_connected
AFTER INSERT OR UPDATE OF online, last_connected_at ON vehicle_presence
FOR EACH ROW EXECUTE FUNCTION api_vehicle_connected();
