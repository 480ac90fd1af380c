-- Why an admin released a held version past its pipeline, beside who and when (007): the audit
-- record of an override. A column on the pipeline, as 007's are, because a push has one pipeline
-- and is released past it at most once (a second release is refused), so there is never more
-- than one reason to keep. Required for a failed pipeline (domain/gate.rs); NULL for releases
-- made before this migration, or without one where it is optional. The same SQL on both databases.
ALTER TABLE pipelines ADD COLUMN release_reason TEXT;
