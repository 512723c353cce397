CREATE TABLE conferences (
    id          BLOB PRIMARY KEY,
    name        TEXT NOT NULL,
    currency    TEXT NOT NULL,
    starts_on   TEXT NOT NULL,
    ends_on     TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE ticket_types (
    id              BLOB PRIMARY KEY,
    conference_id   BLOB NOT NULL REFERENCES conferences (id),
    name            TEXT NOT NULL,
    price_amount    INTEGER NOT NULL,
    price_currency  TEXT NOT NULL,
    capacity        INTEGER NOT NULL,
    sold            INTEGER NOT NULL DEFAULT 0,
    visibility      TEXT NOT NULL,
    sale_starts_at  TEXT,
    sale_ends_at    TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    -- The last line of defence against overselling: the purchase path checks first.
    CONSTRAINT ticket_types_sold_within_capacity CHECK (sold >= 0 AND sold <= capacity)
);
CREATE INDEX ticket_types_by_conference ON ticket_types (conference_id, id);

CREATE TABLE ticket_purchases (
    id                  BLOB PRIMARY KEY,
    conference_id       BLOB NOT NULL REFERENCES conferences (id),
    client_key          TEXT NOT NULL,
    purchaser_name      TEXT NOT NULL,
    purchaser_email     TEXT NOT NULL,
    status              TEXT NOT NULL,
    complimentary       INTEGER NOT NULL,
    total_amount        INTEGER NOT NULL,
    currency            TEXT NOT NULL,
    external_reference  TEXT,
    created_at          TEXT NOT NULL,
    expires_at          TEXT,
    paid_at             TEXT,
    cancelled_at        TEXT,
    expired_at          TEXT,
    CONSTRAINT ticket_purchases_external_reference_unique UNIQUE (client_key, external_reference)
);
CREATE INDEX ticket_purchases_by_conference ON ticket_purchases (conference_id, id);
CREATE INDEX ticket_purchases_due_to_expire ON ticket_purchases (expires_at)
    WHERE status = 'PENDING_PAYMENT';

CREATE TABLE ticket_purchase_lines (
    purchase_id     BLOB NOT NULL REFERENCES ticket_purchases (id),
    line_no         INTEGER NOT NULL,
    ticket_type_id  BLOB NOT NULL REFERENCES ticket_types (id),
    quantity        INTEGER NOT NULL,
    unit_amount     INTEGER NOT NULL,
    PRIMARY KEY (purchase_id, line_no)
);

CREATE TABLE tickets (
    id              BLOB PRIMARY KEY,
    purchase_id     BLOB NOT NULL REFERENCES ticket_purchases (id),
    ticket_type_id  BLOB NOT NULL REFERENCES ticket_types (id),
    attendee_name   TEXT,
    attendee_email  TEXT,
    assigned_at     TEXT
);
CREATE INDEX tickets_by_purchase ON tickets (purchase_id);

CREATE TABLE idempotency_keys (
    client_key      TEXT NOT NULL,
    key             TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    purchase_id     BLOB NOT NULL,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (client_key, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

-- The event log and outbox. Positions come from ticket_event_head, whose row lock is held
-- to commit, so positions become visible in order and a reader tailing by position never
-- skips an event that commits late.
CREATE TABLE ticket_events (
    position     INTEGER PRIMARY KEY,
    id           BLOB NOT NULL UNIQUE,
    event_type   TEXT NOT NULL,
    payload      TEXT NOT NULL,
    occurred_at  TEXT NOT NULL
);

CREATE TABLE ticket_event_head (
    singleton  INTEGER PRIMARY KEY DEFAULT 1 CHECK (singleton = 1),
    position   INTEGER NOT NULL
);
INSERT INTO ticket_event_head (singleton, position) VALUES (1, 0);

-- How far the outbox relay has published.
CREATE TABLE ticket_outbox_offset (
    singleton  INTEGER PRIMARY KEY DEFAULT 1 CHECK (singleton = 1),
    position   INTEGER NOT NULL
);
INSERT INTO ticket_outbox_offset (singleton, position) VALUES (1, 0);
