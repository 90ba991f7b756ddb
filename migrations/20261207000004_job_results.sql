-- What a finished job reports (JSON, e.g. a retention run's deleted assets), shown by the
-- jobs API; empty for jobs that report nothing.
ALTER TABLE jobs ADD COLUMN result TEXT NOT NULL DEFAULT '';
