-- Manual jobs (`when: manual` in a pipeline file): such a job waits in status `manual` until an
-- admin, or a token with the `approve` scope on its repository, plays it. Who played it and when
-- stays with the job (and is written to its log).
ALTER TABLE jobs ADD COLUMN manual INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN approved_by TEXT;   -- the approving token's name
ALTER TABLE jobs ADD COLUMN approved_at INTEGER; -- ms since the epoch
