-- PostgreSQL's spelling of sqlite/004_git_tags.sql.
CREATE TABLE git_tags (
    repository  TEXT NOT NULL,
    source      TEXT NOT NULL,            -- the configured git URL or path
    tag         TEXT COLLATE "C" NOT NULL,
    commit_sha  TEXT NOT NULL,            -- the commit first seen; a moved tag keeps it
    status      TEXT NOT NULL,            -- published | rejected | ignored
    reason      TEXT,
    push_id     BIGINT,
    moved_to    TEXT,                     -- a later commit the tag was moved to (not served)
    seen_at     BIGINT NOT NULL,
    PRIMARY KEY (repository, source, tag)
);
