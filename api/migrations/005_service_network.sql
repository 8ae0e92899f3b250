-- The service network (issue 7, phase 2): centres and mobile vans, bookings, work orders,
-- recall campaigns and warranty terms, and the log of booking suggestions made from alerts.
-- docs/service-network.md describes the lifecycle and who may do what.

-- Workshops. Slots are a grid per opening interval (from its opening time, every
-- slot_minutes); `bays` bookings may overlap at any instant (capacity per slot).
CREATE TABLE service_centres (
    id           text             PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name         text             NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    brand        text             CHECK (length(brand) BETWEEN 1 AND 64),
    address      text             NOT NULL CHECK (length(address) BETWEEN 1 AND 300),
    lat          double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon          double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    timezone     text             NOT NULL,   -- IANA name: opening hours are local time
    bays         integer          NOT NULL CHECK (bays BETWEEN 1 AND 200),
    skills       text[]           NOT NULL DEFAULT '{}',
    slot_minutes integer          NOT NULL DEFAULT 60
        CHECK (slot_minutes BETWEEN 15 AND 480 AND slot_minutes % 15 = 0),
    active       boolean          NOT NULL DEFAULT true,
    -- Bumped by every booking of this centre or its vans: the row lock that serialises the
    -- capacity check below (an UPDATE, not SELECT FOR UPDATE, so that a REPEATABLE READ
    -- transaction racing another gets a serialisation failure instead of a stale count).
    booking_seq  bigint           NOT NULL DEFAULT 0,
    created_at   timestamptz      NOT NULL,
    updated_at   timestamptz      NOT NULL
);

-- Local opening hours per ISO weekday (1 = Monday); several intervals a day are allowed.
CREATE TABLE service_opening_hours (
    centre_id text     NOT NULL REFERENCES service_centres (id) ON DELETE CASCADE,
    weekday   smallint NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    opens     time     NOT NULL,
    closes    time     NOT NULL,
    CHECK (opens < closes),
    PRIMARY KEY (centre_id, weekday, opens)
);

-- Mobile service vans: they work their home centre's opening hours, go up to range_km from
-- it, and do one job at a time.
CREATE TABLE service_vans (
    id             text             PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name           text             NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    home_centre_id text             NOT NULL REFERENCES service_centres (id),
    range_km       double precision NOT NULL CHECK (range_km > 0 AND range_km <= 500),
    skills         text[]           NOT NULL DEFAULT '{}',
    slot_minutes   integer          NOT NULL DEFAULT 120
        CHECK (slot_minutes BETWEEN 15 AND 480 AND slot_minutes % 15 = 0),
    active         boolean          NOT NULL DEFAULT true,
    created_at     timestamptz      NOT NULL,
    updated_at     timestamptz      NOT NULL
);
CREATE INDEX service_vans_home ON service_vans (home_centre_id);

CREATE TABLE bookings (
    id              bigserial        PRIMARY KEY,
    vin             text             NOT NULL REFERENCES vehicles (vin) ON DELETE CASCADE,
    -- NULL: booked by an admin for a car without owner, or the customer was erased.
    customer_id     uuid             REFERENCES customers (id) ON DELETE SET NULL,
    -- The centre responsible (for a van booking: the van's home centre, which sees the car).
    centre_id       text             NOT NULL REFERENCES service_centres (id),
    van_id          text             REFERENCES service_vans (id),
    -- Where the van goes (van bookings only); personal data, cleared on erasure.
    service_lat     double precision CHECK (service_lat BETWEEN -90 AND 90),
    service_lon     double precision CHECK (service_lon BETWEEN -180 AND 180),
    slot_start      timestamptz      NOT NULL,
    slot_end        timestamptz      NOT NULL,
    required_skills text[]           NOT NULL DEFAULT '{}',
    status          text             NOT NULL DEFAULT 'requested' CHECK (status IN
        ('requested', 'confirmed', 'checked_in', 'completed', 'cancelled', 'no_show')),
    source          text             NOT NULL
        CHECK (source IN ('customer', 'suggestion', 'service_center', 'admin')),
    alert_id        bigint           REFERENCES alerts (id) ON DELETE SET NULL,
    notes           text             CHECK (length(notes) <= 2000),
    requested_at    timestamptz      NOT NULL,
    confirmed_at    timestamptz,
    checked_in_at   timestamptz,
    completed_at    timestamptz,
    cancelled_at    timestamptz,
    no_show_at      timestamptz,
    -- Who cancelled: a role, never a person ('system': erasure or the alert went away).
    cancelled_by    text             CHECK (cancelled_by IN
        ('customer', 'service_center', 'fleet_admin', 'system')),
    updated_at      timestamptz      NOT NULL,
    revision        integer          NOT NULL DEFAULT 1,
    CHECK (slot_end > slot_start),
    CHECK ((service_lat IS NULL) = (service_lon IS NULL)),
    CHECK (van_id IS NOT NULL OR service_lat IS NULL),
    CHECK ((status = 'confirmed') <= (confirmed_at IS NOT NULL)),
    CHECK ((status = 'checked_in') <= (checked_in_at IS NOT NULL)),
    CHECK ((status = 'completed') <= (completed_at IS NOT NULL)),
    CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL)),
    CHECK ((status = 'no_show') = (no_show_at IS NOT NULL))
);
CREATE INDEX bookings_resource ON bookings (centre_id, slot_start)
    WHERE status IN ('requested', 'confirmed', 'checked_in');
CREATE INDEX bookings_centre_listing ON bookings (centre_id, slot_start DESC, id DESC);
CREATE INDEX bookings_vehicle ON bookings (vin, slot_start DESC);
CREATE INDEX bookings_customer ON bookings (customer_id, slot_start DESC, id DESC);
-- At most one open booking per alert (a suggestion handled twice cannot book twice).
CREATE UNIQUE INDEX bookings_one_open_per_alert ON bookings (alert_id)
    WHERE alert_id IS NOT NULL AND status IN ('requested', 'confirmed', 'checked_in');

-- No double booking, whatever writes the row: an open booking needs a free bay (a van: the
-- van) for its whole slot, and a car cannot be booked twice at the same time. The centre row
-- is updated first, so bookings of one centre serialise; the counts below then run with a
-- fresh snapshot (READ COMMITTED, one per statement) and see every committed competitor.
CREATE FUNCTION service_booking_capacity() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    capacity integer;
    taken integer;
BEGIN
    IF NEW.status NOT IN ('requested', 'confirmed', 'checked_in') THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE'
       AND OLD.status IN ('requested', 'confirmed', 'checked_in')
       AND (NEW.centre_id, NEW.van_id, NEW.slot_start, NEW.slot_end, NEW.vin)
           IS NOT DISTINCT FROM (OLD.centre_id, OLD.van_id, OLD.slot_start, OLD.slot_end, OLD.vin)
    THEN
        RETURN NEW;   -- a transition between open states takes nothing new
    END IF;
    PERFORM 1 FROM vehicles WHERE vin = NEW.vin FOR NO KEY UPDATE;
    UPDATE service_centres SET booking_seq = booking_seq + 1 WHERE id = NEW.centre_id
    RETURNING bays INTO capacity;
    IF NEW.van_id IS NOT NULL THEN
        capacity := 1;
    END IF;
    SELECT count(*) INTO taken FROM bookings
    WHERE centre_id = NEW.centre_id AND van_id IS NOT DISTINCT FROM NEW.van_id
      AND status IN ('requested', 'confirmed', 'checked_in')
      AND slot_start < NEW.slot_end AND slot_end > NEW.slot_start
      AND id <> NEW.id;
    IF taken >= capacity THEN
        RAISE EXCEPTION 'slot % to % at % is fully booked', NEW.slot_start, NEW.slot_end,
            coalesce(NEW.van_id, NEW.centre_id)
            USING ERRCODE = 'FLB01';
    END IF;
    IF EXISTS (SELECT 1 FROM bookings
               WHERE vin = NEW.vin AND id <> NEW.id
                 AND status IN ('requested', 'confirmed', 'checked_in')
                 AND slot_start < NEW.slot_end AND slot_end > NEW.slot_start) THEN
        RAISE EXCEPTION 'vehicle % already has a booking at that time', NEW.vin
            USING ERRCODE = 'FLB02';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER bookings_capacity
BEFORE INSERT OR UPDATE ON bookings
FOR EACH ROW EXECUTE FUNCTION service_booking_capacity();

-- Erasure (DELETE FROM customers) sets customer_id to NULL: the booking stays as the centre's
-- record of the car, without the person. Their notes and where the van was to come go with
-- them, and a visit not yet begun is cancelled (nobody is left to bring the car).
CREATE FUNCTION service_booking_forget_customer() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.customer_id IS NOT NULL AND NEW.customer_id IS NULL THEN
        NEW.notes := NULL;
        NEW.service_lat := NULL;
        NEW.service_lon := NULL;
        IF NEW.status IN ('requested', 'confirmed') THEN
            NEW.status := 'cancelled';
            NEW.cancelled_at := now();
            NEW.cancelled_by := 'system';
        END IF;
        NEW.revision := OLD.revision + 1;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER bookings_forget_customer
BEFORE UPDATE OF customer_id ON bookings
FOR EACH ROW EXECUTE FUNCTION service_booking_forget_customer();

-- Recall campaigns: which cars are affected (brand, model, model years, VIN serial range:
-- positions 12-17, compared as strings of equal length) and the remedy.
CREATE TABLE recall_campaigns (
    code            text        PRIMARY KEY CHECK (code ~ '^[A-Z0-9][A-Z0-9-]{2,31}$'),
    title           text        NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    brand           text        NOT NULL,
    model           text,       -- NULL: every model of the brand
    model_year_from integer     CHECK (model_year_from BETWEEN 1980 AND 2100),
    model_year_to   integer     CHECK (model_year_to BETWEEN 1980 AND 2100),
    serial_from     text        CHECK (serial_from ~ '^[0-9A-HJ-NPR-Z]{6}$'),
    serial_to       text        CHECK (serial_to ~ '^[0-9A-HJ-NPR-Z]{6}$'),
    remedy          text        NOT NULL CHECK (length(remedy) BETWEEN 1 AND 2000),
    active          boolean     NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    CHECK (model_year_from <= model_year_to),
    CHECK (serial_from <= serial_to)
);
CREATE INDEX recall_campaigns_brand ON recall_campaigns (lower(brand)) WHERE active;

-- New-vehicle warranty per brand: whichever limit comes first (km NULL: no mileage limit).
CREATE TABLE warranty_terms (
    brand      text        PRIMARY KEY CHECK (length(brand) BETWEEN 1 AND 64),
    years      integer     NOT NULL CHECK (years BETWEEN 1 AND 30),
    km         integer     CHECK (km BETWEEN 1 AND 10000000),
    updated_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX warranty_terms_brand ON warranty_terms (lower(brand));

CREATE TABLE work_orders (
    id                    bigserial   PRIMARY KEY,
    booking_id            bigint      NOT NULL UNIQUE REFERENCES bookings (id) ON DELETE CASCADE,
    vin                   text        NOT NULL,
    centre_id             text        NOT NULL REFERENCES service_centres (id),
    status                text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    complaint             text        NOT NULL CHECK (length(complaint) BETWEEN 1 AND 4000),
    odometer_km           double precision CHECK (odometer_km >= 0),
    -- The checks as made when the work order was opened (what the customer was told).
    recalls               jsonb       NOT NULL DEFAULT '[]',
    warranty              jsonb       NOT NULL,
    alert_ids             bigint[]    NOT NULL DEFAULT '{}',
    resolved_alert_ids    bigint[]    NOT NULL DEFAULT '{}',
    currency              text        NOT NULL DEFAULT 'EUR' CHECK (currency ~ '^[A-Z]{3}$'),
    parts_total_cents     bigint      NOT NULL DEFAULT 0,
    labour_total_cents    bigint      NOT NULL DEFAULT 0,
    covered_total_cents   bigint      NOT NULL DEFAULT 0,
    customer_total_cents  bigint      NOT NULL DEFAULT 0,
    opened_at             timestamptz NOT NULL,
    closed_at             timestamptz,
    updated_at            timestamptz NOT NULL,
    revision              integer     NOT NULL DEFAULT 1,
    CHECK ((status = 'closed') = (closed_at IS NOT NULL))
);
CREATE INDEX work_orders_centre ON work_orders (centre_id, opened_at DESC, id DESC);
CREATE INDEX work_orders_vehicle ON work_orders (vin, opened_at DESC);

-- Parts and labour. Labour: quantity in hours, unit price per hour.
CREATE TABLE work_order_lines (
    id               bigserial     PRIMARY KEY,
    work_order_id    bigint        NOT NULL REFERENCES work_orders (id) ON DELETE CASCADE,
    kind             text          NOT NULL CHECK (kind IN ('part', 'labour')),
    code             text          NOT NULL CHECK (length(code) BETWEEN 1 AND 64),
    description      text          NOT NULL CHECK (length(description) BETWEEN 1 AND 300),
    quantity         numeric(10,2) NOT NULL CHECK (quantity > 0),
    unit_price_cents bigint        NOT NULL CHECK (unit_price_cents >= 0),
    coverage         text          NOT NULL DEFAULT 'customer'
        CHECK (coverage IN ('customer', 'warranty', 'recall', 'goodwill')),
    recall_code      text          REFERENCES recall_campaigns (code),
    created_at       timestamptz   NOT NULL,
    CHECK ((coverage = 'recall') = (recall_code IS NOT NULL))
);
CREATE INDEX work_order_lines_order ON work_order_lines (work_order_id, id);

-- A recall remedy done on a car: the recall check stops listing it.
CREATE TABLE recall_completions (
    vin           text        NOT NULL,
    recall_code   text        NOT NULL REFERENCES recall_campaigns (code),
    work_order_id bigint      NOT NULL REFERENCES work_orders (id) ON DELETE CASCADE,
    completed_at  timestamptz NOT NULL,
    PRIMARY KEY (vin, recall_code)
);

-- What the booking suggester decided per alert, and the severity it decided at: an alert is
-- reconsidered only when its severity rises, so handling an event twice books nothing twice.
CREATE TABLE booking_suggestions (
    alert_id   bigint      PRIMARY KEY,
    vin        text        NOT NULL,
    severity   text        NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    outcome    text        NOT NULL CHECK (outcome IN ('booked', 'booked_late',
        'below_threshold', 'already_booked', 'no_owner', 'no_position', 'no_capacity',
        'alert_closed')),
    booking_id bigint      REFERENCES bookings (id) ON DELETE SET NULL,
    decided_at timestamptz NOT NULL
);
