-- An admin's release of a held version (past a pending, failed or canceled pipeline) is an
-- audited act: the pipeline records who released its push and when.
ALTER TABLE pipelines ADD COLUMN released_by TEXT;
ALTER TABLE pipelines ADD COLUMN released_at INTEGER;   -- ms since the epoch

-- The gate's held view lists a repository's unreleased files; in a large repository nearly all
-- files are released, so a partial index keeps that list from reading them all.
CREATE INDEX files_unreleased ON files (push_id) WHERE released = 0;
