-- Privacy by default once a car has had an owner (review of issue 7, phase 1): a car without a
-- customer linked was always answered "location granted" as the OEM's own (dealer stock, test
-- benches, the simulator). But a car whose owner was unlinked or erased is most likely still
-- driven by that person: its positions are not stored until an owner with location consent is
-- linked again. location_without_owner says how a car with no owner is treated: true for cars
-- that never had one, false from their first ownership on.
ALTER TABLE vehicles ADD COLUMN location_without_owner boolean NOT NULL DEFAULT true;
UPDATE vehicles SET location_without_owner = false
WHERE vin IN (SELECT vin FROM vehicle_ownership);

CREATE FUNCTION api_vehicle_had_an_owner() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE vehicles SET location_without_owner = false
    WHERE vin = NEW.vin AND location_without_owner;
    RETURN NULL;
END
$$;

CREATE TRIGGER vehicle_ownership_marks_the_vehicle
AFTER INSERT ON vehicle_ownership
FOR EACH ROW EXECUTE FUNCTION api_vehicle_had_an_owner();

CREATE OR REPLACE VIEW vehicle_location_consent AS
SELECT v.vin,
       o.customer_id IS NOT NULL AS owned,
       CASE WHEN o.customer_id IS NULL THEN v.location_without_owner
            ELSE coalesce(c.granted, false) END AS granted
FROM vehicles v
LEFT JOIN vehicle_ownership o ON o.vin = v.vin AND o.ended_at IS NULL
LEFT JOIN customer_consents c ON c.customer_id = o.customer_id AND c.purpose = 'location';
