-- Customer notifications (issue 7): what the notifier told a customer, and how each channel
-- carried it. The notifier (an outbox consumer, ADR 0007) writes a notification and one delivery
-- per channel in the transaction that advances its cursor; the delivery loop sends the queued
-- ones; the app reads the list and the SSE stream.
--
-- Erasure (GDPR art. 17): deleting the customer deletes their notifications and, through them,
-- every delivery (ON DELETE CASCADE), so api.customers.gdpr.erase needs no statement of its own.
-- No other table refers to a customer here: deliveries reach the person only through
-- notifications, and no address is copied into them (the delivery loop reads it at send time).

CREATE TABLE notifications (
    id           bigserial   PRIMARY KEY,
    customer_id  uuid        NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    vin          text,       -- the car it is about; no foreign key: the inbox outlives a car
    topic        text        NOT NULL,   -- the outbox topic it came from, e.g. alert.opened
    subject      text        NOT NULL,   -- the object it is about, e.g. alert:42
    outbox_id    bigint,                 -- the event (no foreign key: the outbox is pruned)
    -- Why the same event (or a duplicate append of it) never notifies twice: the template names
    -- what would be a repetition (alert.opened|alert:42, alert.updated|alert:42|critical).
    dedupe_key   text        NOT NULL,
    -- service_critical: safety, never held back by quiet hours; informational: deferred to the
    -- end of quiet hours on intrusive channels; promotion: offers (issue 10), deferred as well.
    category     text        NOT NULL
        CHECK (category IN ('service_critical', 'informational', 'promotion')),
    language     text        NOT NULL,   -- the language title and body are written in
    title        text        NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    body         text        NOT NULL CHECK (length(body) <= 2000),
    data         jsonb       NOT NULL DEFAULT '{}',   -- links: alert_id, booking_id, ...
    created_at   timestamptz NOT NULL,
    read_at      timestamptz
);
CREATE UNIQUE INDEX notifications_once ON notifications (customer_id, dedupe_key);
-- The inbox, newest first, and the SSE stream's "after id" reads. Ids are handed out in commit
-- order because only the notifier inserts here and its replicas serialise on their cursor row.
CREATE INDEX notifications_inbox ON notifications (customer_id, id DESC);
CREATE INDEX notifications_unread ON notifications (customer_id, id DESC) WHERE read_at IS NULL;
-- What the customer was already told about one object (alert.updated notifies on escalation).
CREATE INDEX notifications_subject ON notifications (customer_id, subject);

-- One row per notification and channel. queued -> sent -> delivered -> read, or failed, or
-- suppressed; `reason` says why a delivery was suppressed or failed, or why a queued one waits
-- (quiet_hours, with next_attempt_at at the end of the quiet period).
CREATE TABLE notification_deliveries (
    id              bigserial   PRIMARY KEY,
    notification_id bigint      NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    channel         text        NOT NULL CHECK (channel IN ('app', 'email', 'in_car', 'sms')),
    state           text        NOT NULL
        CHECK (state IN ('queued', 'sent', 'delivered', 'read', 'failed', 'suppressed')),
    reason          text        CHECK (reason ~ '^[a-z][a-z0-9_]*$'),
    attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- Queued: when it is due (a claimed one: when its lease runs out and another sender may
    -- take it). NULL once it left the queue.
    next_attempt_at timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL,
    last_attempt_at timestamptz,
    sent_at         timestamptz,
    delivered_at    timestamptz,
    read_at         timestamptz,
    failed_at       timestamptz,
    suppressed_at   timestamptz,
    UNIQUE (notification_id, channel),
    CHECK ((state = 'queued') = (next_attempt_at IS NOT NULL)),
    CHECK (state NOT IN ('failed', 'suppressed') OR reason IS NOT NULL)
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (next_attempt_at, id)
    WHERE state = 'queued';
