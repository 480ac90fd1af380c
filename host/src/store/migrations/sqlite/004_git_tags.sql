-- Git tags seen in the sources of git-tag repositories, and what became of each: published as
-- a push, rejected (with the reason, reported), or ignored (not a version tag).
CREATE TABLE git_tags (
    repository  TEXT NOT NULL,
    source      TEXT NOT NULL,            -- the configured git URL or path
    tag         TEXT NOT NULL,
    commit_sha  TEXT NOT NULL,            -- the commit first seen; a moved tag keeps it
    status      TEXT NOT NULL,            -- published | rejected | ignored
    reason      TEXT,
    push_id     INTEGER,
    moved_to    TEXT,                     -- a later commit the tag was moved to (not served)
    seen_at     INTEGER NOT NULL,
    PRIMARY KEY (repository, source, tag)
);
