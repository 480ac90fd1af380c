-- Tokens can expire, and record when they were last used (updated at most once a minute, so a
-- busy token does not turn every read into a write).
ALTER TABLE tokens ADD COLUMN expires_at INTEGER;     -- ms since the epoch; NULL: never
ALTER TABLE tokens ADD COLUMN last_used_at INTEGER;   -- ms since the epoch; NULL: never used

-- Signed git webhook deliveries already acted on, by the id the git host gives each delivery,
-- so that a replayed delivery is ignored.
CREATE TABLE webhook_receipts (
    repository   TEXT NOT NULL,
    delivery_id  TEXT NOT NULL,
    received_at  INTEGER NOT NULL,
    PRIMARY KEY (repository, delivery_id)
);
