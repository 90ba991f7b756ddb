-- Durable jobs: moves, deletions, retention and reconciliation, stored so they survive a
-- restart and are retried with backoff. A job is claimed by one gateway at a time: with
-- FOR UPDATE SKIP LOCKED on PostgreSQL, by the single writer on SQLite, and on both with a
-- lease, so a job whose gateway died is claimed again once its lease has lapsed.
CREATE TABLE jobs (
    id           TEXT NOT NULL PRIMARY KEY,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts     BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    run_after    BIGINT NOT NULL,
    lease_until  BIGINT NOT NULL DEFAULT 0,
    lease_owner  TEXT NOT NULL DEFAULT '',
    last_error   TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE INDEX jobs_ready ON jobs (state, run_after);
