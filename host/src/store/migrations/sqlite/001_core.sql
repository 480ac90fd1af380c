-- Tokens are stored as the sha256 of the secret; the secret is shown once.
CREATE TABLE tokens (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE,
    scopes      TEXT NOT NULL,            -- comma-separated: read,publish,admin,runner
    repository  TEXT,                     -- NULL: every repository
    kind        TEXT NOT NULL DEFAULT 'personal',  -- personal | deploy | job
    created_at  INTEGER NOT NULL,         -- ms since the epoch
    revoked     INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE packages (
    id          INTEGER PRIMARY KEY,
    repository  TEXT NOT NULL,
    key         TEXT NOT NULL,            -- the name as compared (lower-cased where the format says)
    name        TEXT NOT NULL,            -- the name as first published
    created_at  INTEGER NOT NULL,
    modified_at INTEGER NOT NULL,
    UNIQUE (repository, key)
);

-- One stored file of a version; several for formats with qualifiers (platform gems).
CREATE TABLE files (
    id          INTEGER PRIMARY KEY,
    package_id  INTEGER NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
    version     TEXT NOT NULL,
    qualifier   TEXT NOT NULL DEFAULT '',
    file_name   TEXT NOT NULL,
    size        INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    sha512      TEXT NOT NULL,
    sha1        TEXT NOT NULL,
    metadata    TEXT NOT NULL,            -- JSON of the plugin's metadata record
    created_at  INTEGER NOT NULL,
    push_id     INTEGER NOT NULL,
    released    INTEGER NOT NULL DEFAULT 0, -- 1 once the push's pipeline passed (gated repositories)
    pending_tags TEXT NOT NULL DEFAULT '[]', -- JSON: tags to point here once released
    deprecated  TEXT,
    yanked      INTEGER NOT NULL DEFAULT 0,
    UNIQUE (package_id, version, qualifier),
    UNIQUE (package_id, file_name)
);
CREATE INDEX files_sha256 ON files (sha256);

CREATE TABLE tags (
    package_id  INTEGER NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
    tag         TEXT NOT NULL,
    version     TEXT NOT NULL,
    PRIMARY KEY (package_id, tag)
);

-- The audit log: every push, whether or not its file is still stored.
CREATE TABLE pushes (
    id          INTEGER PRIMARY KEY,
    repository  TEXT NOT NULL,
    package     TEXT NOT NULL,
    version     TEXT NOT NULL,
    qualifier   TEXT NOT NULL DEFAULT '',
    file_name   TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    token_id    INTEGER,
    token_name  TEXT,
    actor       TEXT NOT NULL,            -- who: a token's name, a webhook sender, `poller`
    client_addr TEXT,
    user_agent  TEXT,
    commit_sha  TEXT,                     -- git-tag formats: the tagged commit
    created_at  INTEGER NOT NULL
);
CREATE INDEX pushes_repository ON pushes (repository, id);
CREATE INDEX pushes_sha256 ON pushes (sha256);
