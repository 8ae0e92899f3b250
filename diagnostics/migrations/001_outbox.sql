-- The transactional outbox (ADR 0007): work that must not be lost (notify the owner of an
-- alert, suggest a booking, offer an update) is written here in the same transaction as its
-- cause, and consumers take it from here. Any package appends through outbox_append(), so no
-- package has to import another to publish.
--
-- Consumers read in commit order by transaction id: a row is read only once every transaction
-- that could still add a smaller (txid, id) has ended (txid < the snapshot's xmin), so a slow
-- transaction committing after a faster one can never be skipped (the PgQ technique; an id
-- cursor alone would skip it).

CREATE TABLE outbox (
    id          bigserial   PRIMARY KEY,
    txid        xid8        NOT NULL DEFAULT pg_current_xact_id(),
    topic       text        NOT NULL CHECK (topic ~ '^[a-z][a-z_]*(\.[a-z][a-z_]*)+$'),
    subject     text        NOT NULL,   -- the object it is about, e.g. 'alert:42'
    vin         text,
    customer_id uuid,
    payload     jsonb       NOT NULL,
    occurred_at timestamptz NOT NULL
);
CREATE INDEX outbox_commit_order ON outbox (txid, id);
CREATE INDEX outbox_occurred ON outbox (occurred_at);

-- Where each named consumer has got to; all replicas of a consumer share one row and take
-- turns (the row lock serialises them).
CREATE TABLE outbox_cursors (
    consumer   text        PRIMARY KEY,
    txid       xid8        NOT NULL DEFAULT '0',
    id         bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Events a consumer's handler failed on (after the retries): skipped so that one bad event
-- cannot stall the consumer, and kept here to be looked at and replayed.
CREATE TABLE outbox_failures (
    consumer  text        NOT NULL,
    outbox_id bigint      NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    error     text        NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, outbox_id)
);

CREATE FUNCTION outbox_append(
    p_topic text, p_subject text, p_vin text, p_customer_id uuid, p_payload jsonb,
    p_occurred_at timestamptz
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    new_id bigint;
BEGIN
    INSERT INTO outbox (topic, subject, vin, customer_id, payload, occurred_at)
    VALUES (p_topic, p_subject, p_vin, p_customer_id, p_payload, p_occurred_at)
    RETURNING id INTO new_id;
    -- Delivered at commit, and only if the transaction commits: consumers wake at once.
    PERFORM pg_notify('outbox', p_topic);
    RETURN new_id;
END
$$;
