-- call_records_order_idx (customer_id, started_at, id) serves every lookup
-- of a customer's records (the list pages by started_at, id). These two
-- only cost a write per call: (customer_id, started_at) is its prefix, and
-- no query orders a customer's records by id alone.
DROP INDEX IF EXISTS call_records_started_idx;
DROP INDEX IF EXISTS call_records_customer_idx;
