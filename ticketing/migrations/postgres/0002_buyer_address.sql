-- Where a buyer without a token bought from (an IPv4 address or an IPv6 /64), kept only
-- while the purchase awaits payment: the cap on one buyer's unpaid seats counts by it, and
-- it is cleared when the purchase is paid, cancelled or expires.
ALTER TABLE ticket_purchases ADD COLUMN buyer_address TEXT;
CREATE INDEX ticket_purchases_unpaid_by_buyer ON ticket_purchases (buyer_address)
    WHERE status = 'PENDING_PAYMENT' AND buyer_address IS NOT NULL;
