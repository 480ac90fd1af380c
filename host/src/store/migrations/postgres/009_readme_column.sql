-- A version's README in a column of its own, out of `files.metadata` (see the SQLite migration of
-- the same number for why). Rows written before move theirs here.
ALTER TABLE files ADD COLUMN readme TEXT;
UPDATE files
   SET readme = metadata::jsonb ->> 'readme',
       metadata = (metadata::jsonb - 'readme')::text
 WHERE metadata::jsonb ? 'readme';
