-- Offers (issue 10), the customer side: every decision the offers engine made (sent or
-- suppressed, and why), the offers sent with their unique codes, and the partners who redeem
-- them. The rules and places are diagnostics' (diagnostics migration 004).
--
-- Erasure (GDPR art. 17): decisions and offers keep their counts for the KPIs but lose the
-- person: api.customers.gdpr.erase first blanks where the car was (place, subject, details),
-- then customer_id goes NULL through ON DELETE SET NULL.

-- Who may redeem codes: a partner (a fuel brand, a car wash) with an API key (SHA-256 of a
-- 256-bit random key: a key is not a password, a fast hash is the right one).
CREATE TABLE offer_partners (
    id          text        PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{2,63}$'),
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    key_hash    bytea       NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL,
    disabled_at timestamptz
);

CREATE TABLE offers (
    id            uuid        PRIMARY KEY,
    rule_id       text        NOT NULL,
    rule_version  integer     NOT NULL,
    campaign      text        NOT NULL,
    kind          text        NOT NULL,
    category      text        NOT NULL CHECK (category IN ('promotion', 'service')),
    vin           text        NOT NULL,
    customer_id   uuid        REFERENCES customers (id) ON DELETE SET NULL,
    -- What makes two triggers the same offer (a contract's end date, a station): one offer each.
    subject_key   text        NOT NULL,
    code          text        NOT NULL UNIQUE,
    partner_id    text        REFERENCES offer_partners (id),
    place_id      text,
    title         text        NOT NULL,
    details       jsonb       NOT NULL DEFAULT '{}',
    -- Event time of the data that triggered it; wall time the engine saw that data; decided.
    triggered_at  timestamptz NOT NULL,
    detected_at   timestamptz NOT NULL,
    decided_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    opened_at     timestamptz,
    clicked_at    timestamptz,
    redeemed_at   timestamptz,
    redeemed_place_id text
);
CREATE INDEX offers_customer ON offers (customer_id, triggered_at DESC);
CREATE INDEX offers_rule ON offers (rule_id, vin, subject_key);

CREATE TABLE offer_decisions (
    id            bigserial   PRIMARY KEY,
    rule_id       text        NOT NULL,
    rule_version  integer     NOT NULL,
    campaign      text        NOT NULL,
    vin           text        NOT NULL,
    customer_id   uuid        REFERENCES customers (id) ON DELETE SET NULL,
    subject_key   text        NOT NULL,
    outcome       text        NOT NULL CHECK (outcome IN ('sent', 'suppressed')),
    reason        text        CHECK (reason ~ '^[a-z][a-z0-9_]*$'),
    offer_id      uuid        REFERENCES offers (id) ON DELETE CASCADE,
    triggered_at  timestamptz NOT NULL,
    detected_at   timestamptz NOT NULL,
    decided_at    timestamptz NOT NULL,
    CHECK ((outcome = 'sent') = (offer_id IS NOT NULL)),
    CHECK ((outcome = 'suppressed') = (reason IS NOT NULL))
);
CREATE INDEX offer_decisions_rule ON offer_decisions (rule_id, decided_at);
CREATE INDEX offer_decisions_vin ON offer_decisions (vin, rule_id, subject_key);
-- Export and erasure (ON DELETE SET NULL) find a customer's decisions without a scan.
CREATE INDEX offer_decisions_customer ON offer_decisions (customer_id);
