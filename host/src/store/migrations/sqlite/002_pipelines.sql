-- A pipeline per push: the host's own jobs (metadata extraction) and the runner jobs of the
-- repository's pipeline file and the format's trigger.
CREATE TABLE pipelines (
    id          INTEGER PRIMARY KEY,
    repository  TEXT NOT NULL,
    push_id     INTEGER NOT NULL UNIQUE,
    source      TEXT NOT NULL,            -- package_push
    status      TEXT NOT NULL,            -- created pending running success failed canceled skipped
    variables   TEXT NOT NULL,            -- JSON object shared by every job
    extraction  TEXT NOT NULL,            -- JSON: how runners unpack the push's file (the plugin's answer)
    created_at  INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX pipelines_repository ON pipelines (repository, id);

CREATE TABLE jobs (
    id              INTEGER PRIMARY KEY,
    pipeline_id     INTEGER NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    stage           TEXT NOT NULL,
    stage_index     INTEGER NOT NULL,
    kind            TEXT NOT NULL,        -- host | config | runner
    script          TEXT NOT NULL,        -- JSON array of lines
    variables       TEXT NOT NULL,        -- JSON object
    allow_failure   INTEGER NOT NULL DEFAULT 0,
    timeout_seconds INTEGER NOT NULL,
    status          TEXT NOT NULL,
    token_hash      TEXT UNIQUE,          -- the job token while it runs
    runner          TEXT,
    exit_code       INTEGER,
    failure_reason  TEXT,
    log             TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    started_at      INTEGER,
    finished_at     INTEGER,
    touched_at      INTEGER               -- last sign of life from the runner
);
CREATE INDEX jobs_pending ON jobs (status, id);
CREATE INDEX jobs_pipeline ON jobs (pipeline_id);

-- A repository's pipeline file as replaced through the admin API (wins over the config file).
CREATE TABLE pipeline_configs (
    repository  TEXT PRIMARY KEY,
    yaml        TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- Webhook deliveries of pipeline status changes, with their retries.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY,
    repository      TEXT NOT NULL,
    url             TEXT NOT NULL,
    pipeline_id     INTEGER NOT NULL,
    payload         TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    status_code     INTEGER,
    error           TEXT,
    delivered       INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (delivered, next_attempt_at);
