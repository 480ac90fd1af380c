-- A version's README in a column of its own, out of `files.metadata`: every protocol render reads
-- the metadata of every version of a package, and a real package's README (tens of KB) times its
-- versions (thousands) was read and parsed on each render only to be dropped. Rows written before
-- move theirs here.
ALTER TABLE files ADD COLUMN readme TEXT;
UPDATE files
   SET readme = json_extract(metadata, '$.readme'),
       metadata = json_remove(metadata, '$.readme')
 WHERE json_valid(metadata) AND json_type(metadata, '$.readme') IS NOT NULL;
