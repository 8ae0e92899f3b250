-- Offers (issue 10), the diagnostics side: the places and geofences offers refer to, and the
-- offer rules. Rules are data, not code: every edit writes a new version, and the versions are
-- kept, so a decision recorded months ago still names the exact rule text it applied.
--
-- The decisions, offers and partners refer to customers and live in api migration 008 (api
-- migrates after diagnostics).

-- Points of interest and areas: fuel and charging stations, dealers, service centres, partners.
-- A circle (centre and radius) or a polygon (GeoJSON rings, [lon, lat], in `polygon`).
CREATE TABLE offer_places (
    id          text        PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9._:-]{1,64}$'),
    kind        text        NOT NULL CHECK (kind IN (
                    'fuel_station', 'charging_station', 'dealer', 'service_centre', 'partner')),
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    brand       text        NOT NULL DEFAULT '',
    partner_id  text,
    lat         double precision CHECK (lat BETWEEN -90 AND 90),
    lon         double precision CHECK (lon BETWEEN -180 AND 180),
    radius_m    double precision CHECK (radius_m > 0 AND radius_m <= 50000),
    polygon     jsonb,
    updated_at  timestamptz NOT NULL,
    CHECK ((polygon IS NULL) = (radius_m IS NOT NULL AND lat IS NOT NULL AND lon IS NOT NULL))
);
CREATE INDEX offer_places_kind ON offer_places (kind, id);

CREATE TABLE offer_rules (
    id          text        PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{2,63}$'),
    version     integer     NOT NULL CHECK (version >= 1),
    kind        text        NOT NULL,
    enabled     boolean     NOT NULL,
    definition  jsonb       NOT NULL,   -- the whole rule (diagnostics.offers.rules.OfferRule)
    updated_at  timestamptz NOT NULL,
    updated_by  text        NOT NULL
);

-- Append-only history: version N of every rule, as it was.
CREATE TABLE offer_rule_versions (
    rule_id     text        NOT NULL REFERENCES offer_rules (id) ON DELETE CASCADE,
    version     integer     NOT NULL,
    definition  jsonb       NOT NULL,
    created_at  timestamptz NOT NULL,
    created_by  text        NOT NULL,
    PRIMARY KEY (rule_id, version)
);

-- The engines reload rules and places when either changes.
CREATE FUNCTION diagnostics_offer_config_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('offer_config', TG_TABLE_NAME);
    RETURN NULL;
END
$$;
CREATE TRIGGER offer_rules_changed AFTER INSERT OR UPDATE OR DELETE ON offer_rules
FOR EACH STATEMENT EXECUTE FUNCTION diagnostics_offer_config_changed();
CREATE TRIGGER offer_places_changed AFTER INSERT OR UPDATE OR DELETE ON offer_places
FOR EACH STATEMENT EXECUTE FUNCTION diagnostics_offer_config_changed();
