-- PostgreSQL's spelling of sqlite/005_tokens_receipts.sql.
ALTER TABLE tokens ADD COLUMN expires_at BIGINT;     -- ms since the epoch; NULL: never
ALTER TABLE tokens ADD COLUMN last_used_at BIGINT;   -- ms since the epoch; NULL: never used

CREATE TABLE webhook_receipts (
    repository   TEXT NOT NULL,
    delivery_id  TEXT NOT NULL,
    received_at  BIGINT NOT NULL,
    PRIMARY KEY (repository, delivery_id)
);
