-- The vehicle registry: who may connect (credentials as argon2 hashes) and what each car is.
CREATE TABLE vehicles (
    vin         text        PRIMARY KEY CHECK (vin ~ '^[0-9A-HJ-NPR-Z]{17}$'),
    brand       text        NOT NULL,
    model       text        NOT NULL,
    model_year  integer     NOT NULL CHECK (model_year BETWEEN 1980 AND 2100),
    powertrain  text        NOT NULL CHECK (powertrain IN ('ice', 'bev', 'phev', 'hev')),
    secret_hash text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX vehicles_created ON vehicles (created_at, vin);
