-- What another edge needs to end a call whose edge died: the dialog state
-- of its legs (JSON written by the edge when the call is confirmed) and, once
-- a living edge has claimed an expired lease, the node that held it. The
-- dialog goes with the lease (same row).
ALTER TABLE call_leases ADD COLUMN dialog TEXT NOT NULL DEFAULT '';
ALTER TABLE call_leases ADD COLUMN lost_node TEXT NOT NULL DEFAULT '';
CREATE INDEX call_leases_expires_idx ON call_leases (expires_at);
-- Closing a lost call's record finds it by Call-ID; records left
-- in_progress (a final update that never reached the store) are found by
-- this partial index.
CREATE INDEX call_records_call_id_idx ON call_records (call_id);
CREATE INDEX call_records_active_idx ON call_records (started_at) WHERE disposition = 'in_progress';
