-- PostgreSQL's spelling of sqlite/007_release_audit.sql.
ALTER TABLE pipelines ADD COLUMN released_by TEXT;
ALTER TABLE pipelines ADD COLUMN released_at BIGINT;   -- ms since the epoch

CREATE INDEX files_unreleased ON files (push_id) WHERE released = 0;
