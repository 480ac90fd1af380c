-- PostgreSQL's spelling of sqlite/006_manual_jobs.sql.
ALTER TABLE jobs ADD COLUMN manual BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN approved_by TEXT;    -- the approving token's name
ALTER TABLE jobs ADD COLUMN approved_at BIGINT;  -- ms since the epoch
