-- Call records are listed newest first by start time, then id (keyset
-- paging in the portal and GET /api/v1/calls).
CREATE INDEX call_records_order_idx ON call_records (customer_id, started_at, id);
