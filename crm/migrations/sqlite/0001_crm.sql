-- The sponsorship CRM's own database; ticketing's ids appear here only as opaque values.

CREATE TABLE sponsorship_levels (
    name              TEXT PRIMARY KEY,
    price_amount      INTEGER NOT NULL,
    price_currency    TEXT NOT NULL,
    ticket_allowance  INTEGER NOT NULL,
    rank              INTEGER NOT NULL,
    updated_at        TEXT NOT NULL,
    CONSTRAINT sponsorship_levels_allowance_not_negative CHECK (ticket_allowance >= 0)
);
INSERT INTO sponsorship_levels (name, price_amount, price_currency, ticket_allowance, rank, updated_at) VALUES
    ('Gold', 1000000, 'EUR', 5, 1, '2026-01-01T00:00:00+00:00'),
    ('Silver', 500000, 'EUR', 3, 2, '2026-01-01T00:00:00+00:00'),
    ('Bronze', 200000, 'EUR', 1, 3, '2026-01-01T00:00:00+00:00');

-- Conferences the CRM serves: ticketing's conference id, the restricted ticket type sponsor
-- tickets are issued from, and the early-signing date rule.
CREATE TABLE sponsor_conferences (
    conference_id           BLOB PRIMARY KEY,
    sponsor_ticket_type_id  BLOB,
    early_signing_before    TEXT,
    early_signing_extra     INTEGER,
    updated_at              TEXT NOT NULL
);

CREATE TABLE sponsors (
    id                         BLOB PRIMARY KEY,
    conference_id              BLOB NOT NULL REFERENCES sponsor_conferences (conference_id),
    company                    TEXT NOT NULL,
    contact_name               TEXT NOT NULL,
    contact_email              TEXT NOT NULL,
    level_name                 TEXT NOT NULL REFERENCES sponsorship_levels (name),
    ticket_allowance_override  INTEGER,
    contract_status            TEXT NOT NULL,
    contract_sent_at           TEXT,
    contract_signed_at         TEXT,
    contract_signed_on         TEXT,
    contract_cancelled_at      TEXT,
    onboarded_at               TEXT,
    allocation_status          TEXT NOT NULL,
    created_at                 TEXT NOT NULL,
    updated_at                 TEXT NOT NULL
);
CREATE INDEX sponsors_by_level ON sponsors (level_name, id);
CREATE INDEX sponsors_by_allocation_status ON sponsors (allocation_status, id);

CREATE TABLE invoices (
    id           BLOB PRIMARY KEY,
    sponsor_id   BLOB NOT NULL REFERENCES sponsors (id),
    amount       INTEGER NOT NULL,
    currency     TEXT NOT NULL,
    due_on       TEXT NOT NULL,
    status       TEXT NOT NULL,
    issued_at    TEXT NOT NULL,
    paid_at      TEXT,
    voided_at    TEXT
);
CREATE INDEX invoices_by_sponsor ON invoices (sponsor_id, id);

-- The allocation queue: written in the same transaction as the event that makes a booking
-- due, worked off by the allocation process. A claim is a conditional UPDATE that sets a
-- lease (locked_until, lease_owner), so two workers never call ticketing for one request at
-- the same time, and a crashed worker's claim lapses by itself.
CREATE TABLE ticket_allocation_requests (
    id                  BLOB PRIMARY KEY,
    sponsor_id          BLOB NOT NULL REFERENCES sponsors (id),
    seq                 INTEGER NOT NULL,
    quantity            INTEGER NOT NULL,
    external_reference  TEXT NOT NULL UNIQUE,
    status              TEXT NOT NULL,
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     TEXT NOT NULL,
    last_attempt_at     TEXT,
    last_error          TEXT,
    locked_until        TEXT,
    lease_owner         BLOB,
    purchase_id         BLOB,
    created_at          TEXT NOT NULL,
    booked_at           TEXT,
    CONSTRAINT ticket_allocation_requests_seq_unique UNIQUE (sponsor_id, seq),
    CONSTRAINT ticket_allocation_requests_quantity_positive CHECK (quantity > 0)
);
CREATE INDEX ticket_allocation_requests_due ON ticket_allocation_requests (next_attempt_at)
    WHERE status = 'PENDING';
CREATE INDEX ticket_allocation_requests_by_purchase ON ticket_allocation_requests (purchase_id);

-- The event log and outbox, as in ticketing: positions come from sponsor_event_head, whose
-- row lock is held to commit, so positions become visible in order.
CREATE TABLE sponsor_events (
    position     INTEGER PRIMARY KEY,
    id           BLOB NOT NULL UNIQUE,
    event_type   TEXT NOT NULL,
    payload      TEXT NOT NULL,
    occurred_at  TEXT NOT NULL
);

CREATE TABLE sponsor_event_head (
    singleton  INTEGER PRIMARY KEY DEFAULT 1 CHECK (singleton = 1),
    position   INTEGER NOT NULL
);
INSERT INTO sponsor_event_head (singleton, position) VALUES (1, 0);

CREATE TABLE sponsor_outbox_offset (
    singleton  INTEGER PRIMARY KEY DEFAULT 1 CHECK (singleton = 1),
    position   INTEGER NOT NULL
);
INSERT INTO sponsor_outbox_offset (singleton, position) VALUES (1, 0);
