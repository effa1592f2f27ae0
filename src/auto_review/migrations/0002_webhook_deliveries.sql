-- Webhook deliveries the gateway has accepted, for replay dedup. Rows are recorded only after a
-- delivery was accepted (a failed one may be retried by the forge) and pruned after
-- AR_DEDUP_TTL_SECS so the table cannot grow forever.
CREATE TABLE webhook_deliveries (
    delivery_id TEXT PRIMARY KEY,
    event       TEXT NOT NULL,
    accepted_at REAL NOT NULL
) STRICT;
CREATE INDEX webhook_deliveries_accepted_at ON webhook_deliveries (accepted_at);
