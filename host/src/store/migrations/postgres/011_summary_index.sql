-- A package's summary (its versions and their states, without metadata) is read on every write
-- and every render of a changed version: an index-only scan of this index answers it without
-- touching the rows, which carry each version's metadata.
CREATE INDEX files_summary ON files (package_id, id) INCLUDE (version, qualifier, deprecated, yanked, released);
