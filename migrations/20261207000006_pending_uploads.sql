-- Presigned uploads not completed yet: whose asset each becomes and the key the client was
-- allowed to upload to. A row goes when the upload is completed or refused, or when retention
-- removes an unfinished one.
CREATE TABLE uploads (
    id          TEXT NOT NULL PRIMARY KEY,
    owner       TEXT NOT NULL,
    module      TEXT NOT NULL,
    visibility  TEXT NOT NULL,
    name        TEXT NOT NULL,
    backend     TEXT NOT NULL,
    storage_key TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE INDEX uploads_by_age ON uploads (created_at);
