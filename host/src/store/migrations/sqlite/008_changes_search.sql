-- The change log: one row for every change clients can see, written by triggers in the same
-- transaction as the change, whichever statement made it (a publish, a pipeline's release, a
-- yank, a tag, a delete). Kept documents compare their render's `seq` with it, and append-only
-- documents (a compact index's version list) are extended from it.
CREATE TABLE changes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    repository  TEXT NOT NULL,
    key         TEXT NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,            -- added | removed | updated
    version     TEXT NOT NULL DEFAULT '',
    qualifier   TEXT NOT NULL DEFAULT '',
    at          INTEGER NOT NULL          -- ms since the epoch
);
CREATE INDEX changes_repository ON changes (repository, seq);

CREATE TRIGGER files_added AFTER INSERT ON files BEGIN
    INSERT INTO changes (repository, key, name, kind, version, qualifier, at)
    SELECT p.repository, p.key, p.name,
           CASE WHEN NEW.released = 1 AND NEW.yanked = 0 THEN 'added' ELSE 'updated' END,
           NEW.version, NEW.qualifier, CAST(unixepoch('subsec') * 1000 AS INTEGER)
    FROM packages p WHERE p.id = NEW.package_id;
END;

CREATE TRIGGER files_changed AFTER UPDATE OF released, yanked, deprecated ON files BEGIN
    INSERT INTO changes (repository, key, name, kind, version, qualifier, at)
    SELECT p.repository, p.key, p.name,
           CASE
               WHEN (OLD.released = 0 OR OLD.yanked = 1) AND NEW.released = 1 AND NEW.yanked = 0 THEN 'added'
               WHEN OLD.released = 1 AND OLD.yanked = 0 AND (NEW.released = 0 OR NEW.yanked = 1) THEN 'removed'
               ELSE 'updated'
           END,
           NEW.version, NEW.qualifier, CAST(unixepoch('subsec') * 1000 AS INTEGER)
    FROM packages p WHERE p.id = NEW.package_id;
END;

-- The store deletes a package's files before the package row, so the package is still there.
CREATE TRIGGER files_removed AFTER DELETE ON files BEGIN
    INSERT INTO changes (repository, key, name, kind, version, qualifier, at)
    SELECT p.repository, p.key, p.name,
           CASE WHEN OLD.released = 1 AND OLD.yanked = 0 THEN 'removed' ELSE 'updated' END,
           OLD.version, OLD.qualifier, CAST(unixepoch('subsec') * 1000 AS INTEGER)
    FROM packages p WHERE p.id = OLD.package_id;
END;

CREATE TRIGGER tags_added AFTER INSERT ON tags BEGIN
    INSERT INTO changes (repository, key, name, kind, at)
    SELECT p.repository, p.key, p.name, 'updated', CAST(unixepoch('subsec') * 1000 AS INTEGER)
    FROM packages p WHERE p.id = NEW.package_id;
END;

CREATE TRIGGER tags_changed AFTER UPDATE ON tags BEGIN
    INSERT INTO changes (repository, key, name, kind, at)
    SELECT p.repository, p.key, p.name, 'updated', CAST(unixepoch('subsec') * 1000 AS INTEGER)
    FROM packages p WHERE p.id = NEW.package_id;
END;

CREATE TRIGGER tags_removed AFTER DELETE ON tags BEGIN
    INSERT INTO changes (repository, key, name, kind, at)
    SELECT p.repository, p.key, p.name, 'updated', CAST(unixepoch('subsec') * 1000 AS INTEGER)
    FROM packages p WHERE p.id = OLD.package_id;
END;

-- Search: names and summaries in an FTS5 index with the trigram tokenizer, so that "contains"
-- keeps its meaning (any substring of three or more characters) and is answered from the index
-- instead of a scan of every package. The summary is the newest file's.
CREATE VIRTUAL TABLE package_search USING fts5 (name, summary, tokenize = 'trigram');

INSERT INTO package_search (rowid, name, summary)
SELECT p.id, p.name, coalesce((SELECT json_extract(f.metadata, '$.summary') FROM files f
                               WHERE f.package_id = p.id ORDER BY f.id DESC LIMIT 1), '')
FROM packages p;

CREATE TRIGGER package_search_file AFTER INSERT ON files BEGIN
    DELETE FROM package_search WHERE rowid = NEW.package_id;
    INSERT INTO package_search (rowid, name, summary)
    SELECT p.id, p.name, coalesce(json_extract(NEW.metadata, '$.summary'), '') FROM packages p
    WHERE p.id = NEW.package_id;
END;

CREATE TRIGGER package_search_gone AFTER DELETE ON packages BEGIN
    DELETE FROM package_search WHERE rowid = OLD.id;
END;
