-- Live leases counted per customer, SIP account and direction, kept in step
-- with call_leases by the store: an acquisition reads a few counters
-- instead of counting every live call of the customer (a trunk customer
-- with a thousand live calls made the count most of a call's CPU).
CREATE TABLE channel_counts (
	customer_id    BIGINT  NOT NULL,
	sip_account_id BIGINT  NOT NULL,
	direction      TEXT    NOT NULL,
	n              INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (customer_id, sip_account_id, direction)
);
INSERT INTO channel_counts (customer_id, sip_account_id, direction, n)
	SELECT customer_id, sip_account_id, direction, COUNT(*) FROM call_leases GROUP BY customer_id, sip_account_id, direction;
