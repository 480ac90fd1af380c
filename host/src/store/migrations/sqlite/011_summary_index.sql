-- A package's summary (its versions and their states, without metadata) is read on every write
-- and every render of a changed version: this index holds all it reads, so the read never
-- touches the rows, which carry each version's metadata (a 10,000-version package's summary
-- read 16 MB of row pages for 200 KB of answers).
CREATE INDEX files_summary ON files (package_id, id, version, qualifier, deprecated, yanked, released);
