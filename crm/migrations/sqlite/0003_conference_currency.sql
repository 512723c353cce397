-- The currency a served conference sells in, learned from ticketing when an admin registers
-- the conference (configureSponsorTickets). Sponsors and invoices are recorded only for
-- conferences with one, invoices only in it. Rows from earlier versions stay NULL, that is
-- not served, until registered again.
ALTER TABLE sponsor_conferences ADD COLUMN currency TEXT;
