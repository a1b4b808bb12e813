-- The SIP address of the edge that holds a binding's flow (the device's UDP
-- NAT binding or TCP/TLS/WebSocket connection ends there): another edge
-- reaches the device through that edge (an edge-to-edge hop). Empty for
-- bindings written before this column: reached directly, as before.
ALTER TABLE registrations ADD COLUMN edge_addr TEXT NOT NULL DEFAULT '';
