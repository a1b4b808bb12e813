-- The operator dashboard's charts count every customer's calls of the
-- last hour by started_at.
CREATE INDEX call_records_started_at_idx ON call_records (started_at);
