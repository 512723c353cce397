-- The sponsorship CRM's own database; ticketing's ids appear here only as opaque values.

CREATE TABLE sponsorship_levels (
    name              TEXT PRIMARY KEY,
    price_amount      BIGINT NOT NULL,
    price_currency    TEXT NOT NULL,
    ticket_allowance  BIGINT NOT NULL,
    rank              BIGINT NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    CONSTRAINT sponsorship_levels_allowance_not_negative CHECK (ticket_allowance >= 0)
);
INSERT INTO sponsorship_levels (name, price_amount, price_currency, ticket_allowance, rank, updated_at) VALUES
    ('Gold', 1000000, 'EUR', 5, 1, '2026-01-01T00:00:00Z'),
    ('Silver', 500000, 'EUR', 3, 2, '2026-01-01T00:00:00Z'),
    ('Bronze', 200000, 'EUR', 1, 3, '2026-01-01T00:00:00Z');

-- Conferences the CRM serves: ticketing's conference id, the restricted ticket type sponsor
-- tickets are issued from, and the early-signing date rule.
CREATE TABLE sponsor_conferences (
    conference_id           UUID PRIMARY KEY,
    sponsor_ticket_type_id  UUID,
    early_signing_before    DATE,
    early_signing_extra     BIGINT,
    updated_at              TIMESTAMPTZ NOT NULL
);

CREATE TABLE sponsors (
    id                         UUID PRIMARY KEY,
    conference_id              UUID NOT NULL REFERENCES sponsor_conferences (conference_id),
    company                    TEXT NOT NULL,
    contact_name               TEXT NOT NULL,
    contact_email              TEXT NOT NULL,
    level_name                 TEXT NOT NULL REFERENCES sponsorship_levels (name),
    ticket_allowance_override  BIGINT,
    contract_status            TEXT NOT NULL,
    contract_sent_at           TIMESTAMPTZ,
    contract_signed_at         TIMESTAMPTZ,
    contract_signed_on         DATE,
    contract_cancelled_at      TIMESTAMPTZ,
    onboarded_at               TIMESTAMPTZ,
    allocation_status          TEXT NOT NULL,
    created_at                 TIMESTAMPTZ NOT NULL,
    updated_at                 TIMESTAMPTZ NOT NULL
);
CREATE INDEX sponsors_by_level ON sponsors (level_name, id);
CREATE INDEX sponsors_by_allocation_status ON sponsors (allocation_status, id);

CREATE TABLE invoices (
    id           UUID PRIMARY KEY,
    sponsor_id   UUID NOT NULL REFERENCES sponsors (id),
    amount       BIGINT NOT NULL,
    currency     TEXT NOT NULL,
    due_on       DATE NOT NULL,
    status       TEXT NOT NULL,
    issued_at    TIMESTAMPTZ NOT NULL,
    paid_at      TIMESTAMPTZ,
    voided_at    TIMESTAMPTZ
);
CREATE INDEX invoices_by_sponsor ON invoices (sponsor_id, id);

-- The allocation queue: written in the same transaction as the event that makes a booking
-- due, worked off by the allocation process. A claim is a conditional UPDATE that sets a
-- lease (locked_until, lease_owner), so two workers never call ticketing for one request at
-- the same time, and a crashed worker's claim lapses by itself.
CREATE TABLE ticket_allocation_requests (
    id                  UUID PRIMARY KEY,
    sponsor_id          UUID NOT NULL REFERENCES sponsors (id),
    seq                 BIGINT NOT NULL,
    quantity            BIGINT NOT NULL,
    external_reference  TEXT NOT NULL UNIQUE,
    status              TEXT NOT NULL,
    attempts            BIGINT NOT NULL DEFAULT 0,
    next_attempt_at     TIMESTAMPTZ NOT NULL,
    last_attempt_at     TIMESTAMPTZ,
    last_error          TEXT,
    locked_until        TIMESTAMPTZ,
    lease_owner         UUID,
    purchase_id         UUID,
    created_at          TIMESTAMPTZ NOT NULL,
    booked_at           TIMESTAMPTZ,
    CONSTRAINT ticket_allocation_requests_seq_unique UNIQUE (sponsor_id, seq),
    CONSTRAINT ticket_allocation_requests_quantity_positive CHECK (quantity > 0)
);
CREATE INDEX ticket_allocation_requests_due ON ticket_allocation_requests (next_attempt_at)
    WHERE status = 'PENDING';
CREATE INDEX ticket_allocation_requests_by_purchase ON ticket_allocation_requests (purchase_id);

-- The event log and outbox, as in ticketing: positions come from sponsor_event_head, whose
-- row lock is held to commit, so positions become visible in order.
CREATE TABLE sponsor_events (
    position     BIGINT PRIMARY KEY,
    id           UUID NOT NULL UNIQUE,
    event_type   TEXT NOT NULL,
    payload      JSONB NOT NULL,
    occurred_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE sponsor_event_head (
    singleton  BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    position   BIGINT NOT NULL
);
INSERT INTO sponsor_event_head (singleton, position) VALUES (TRUE, 0);

CREATE TABLE sponsor_outbox_offset (
    singleton  BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    position   BIGINT NOT NULL
);
INSERT INTO sponsor_outbox_offset (singleton, position) VALUES (TRUE, 0);
