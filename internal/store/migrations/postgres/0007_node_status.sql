-- What each node reports at its heartbeat, for `sipdesk admin node list`:
-- its listeners, build version, live calls, bindings, and whether it drains.
ALTER TABLE nodes ADD COLUMN sip_addr TEXT NOT NULL DEFAULT '';
ALTER TABLE nodes ADD COLUMN http_addr TEXT NOT NULL DEFAULT '';
ALTER TABLE nodes ADD COLUMN version TEXT NOT NULL DEFAULT '';
ALTER TABLE nodes ADD COLUMN live_calls INTEGER NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN bindings INTEGER NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN draining INTEGER NOT NULL DEFAULT 0;
