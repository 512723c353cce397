CREATE TABLE conferences (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    currency    TEXT NOT NULL,
    starts_on   DATE NOT NULL,
    ends_on     DATE NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE ticket_types (
    id              UUID PRIMARY KEY,
    conference_id   UUID NOT NULL REFERENCES conferences (id),
    name            TEXT NOT NULL,
    price_amount    BIGINT NOT NULL,
    price_currency  TEXT NOT NULL,
    capacity        BIGINT NOT NULL,
    sold            BIGINT NOT NULL DEFAULT 0,
    visibility      TEXT NOT NULL,
    sale_starts_at  TIMESTAMPTZ,
    sale_ends_at    TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    -- The last line of defence against overselling: the purchase path checks first.
    CONSTRAINT ticket_types_sold_within_capacity CHECK (sold >= 0 AND sold <= capacity)
);
CREATE INDEX ticket_types_by_conference ON ticket_types (conference_id, id);

CREATE TABLE ticket_purchases (
    id                  UUID PRIMARY KEY,
    conference_id       UUID NOT NULL REFERENCES conferences (id),
    client_key          TEXT NOT NULL,
    purchaser_name      TEXT NOT NULL,
    purchaser_email     TEXT NOT NULL,
    status              TEXT NOT NULL,
    complimentary       BOOLEAN NOT NULL,
    total_amount        BIGINT NOT NULL,
    currency            TEXT NOT NULL,
    external_reference  TEXT,
    created_at          TIMESTAMPTZ NOT NULL,
    expires_at          TIMESTAMPTZ,
    paid_at             TIMESTAMPTZ,
    cancelled_at        TIMESTAMPTZ,
    expired_at          TIMESTAMPTZ,
    CONSTRAINT ticket_purchases_external_reference_unique UNIQUE (client_key, external_reference)
);
CREATE INDEX ticket_purchases_by_conference ON ticket_purchases (conference_id, id);
CREATE INDEX ticket_purchases_due_to_expire ON ticket_purchases (expires_at)
    WHERE status = 'PENDING_PAYMENT';

CREATE TABLE ticket_purchase_lines (
    purchase_id     UUID NOT NULL REFERENCES ticket_purchases (id),
    line_no         INTEGER NOT NULL,
    ticket_type_id  UUID NOT NULL REFERENCES ticket_types (id),
    quantity        BIGINT NOT NULL,
    unit_amount     BIGINT NOT NULL,
    PRIMARY KEY (purchase_id, line_no)
);

CREATE TABLE tickets (
    id              UUID PRIMARY KEY,
    purchase_id     UUID NOT NULL REFERENCES ticket_purchases (id),
    ticket_type_id  UUID NOT NULL REFERENCES ticket_types (id),
    attendee_name   TEXT,
    attendee_email  TEXT,
    assigned_at     TIMESTAMPTZ
);
CREATE INDEX tickets_by_purchase ON tickets (purchase_id);

CREATE TABLE idempotency_keys (
    client_key      TEXT NOT NULL,
    key             TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    purchase_id     UUID NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (client_key, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

-- The event log and outbox. Positions come from ticket_event_head, whose row lock is held
-- to commit, so positions become visible in order and a reader tailing by position never
-- skips an event that commits late.
CREATE TABLE ticket_events (
    position     BIGINT PRIMARY KEY,
    id           UUID NOT NULL UNIQUE,
    event_type   TEXT NOT NULL,
    payload      JSONB NOT NULL,
    occurred_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE ticket_event_head (
    singleton  BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    position   BIGINT NOT NULL
);
INSERT INTO ticket_event_head (singleton, position) VALUES (TRUE, 0);

-- How far the outbox relay has published.
CREATE TABLE ticket_outbox_offset (
    singleton  BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    position   BIGINT NOT NULL
);
INSERT INTO ticket_outbox_offset (singleton, position) VALUES (TRUE, 0);
