-- Connection state per vehicle, from the retained presence messages and last wills
-- (v1/vehicles/{VIN}/presence). Newest report wins; out-of-order reports are ignored.
CREATE TABLE vehicle_presence (
    vin                  text        PRIMARY KEY,
    online               boolean     NOT NULL,
    changed_at           timestamptz NOT NULL,
    last_connected_at    timestamptz,
    last_disconnected_at timestamptz
);
