-- When ticketing cancelled the purchase a request booked (heard on the bus): the sponsor is
-- flagged for review; nothing is re-booked automatically.
ALTER TABLE ticket_allocation_requests ADD COLUMN purchase_cancelled_at TEXT;
