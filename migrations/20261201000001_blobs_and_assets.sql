-- The asset metadata store: bytes and ownership kept apart.
-- One blob per distinct content (SHA-256), stored once under a key derived from its hash;
-- one asset per (blob, owner, module), so two owners of identical bytes share the blob.
-- Portable SQL: the same file runs on SQLite (embedded default) and PostgreSQL. Times are
-- Unix milliseconds.

CREATE TABLE blobs (
    content_hash TEXT NOT NULL PRIMARY KEY,
    storage_key  TEXT NOT NULL,
    size_bytes   BIGINT NOT NULL,
    mime_type    TEXT NOT NULL,
    width        BIGINT,
    height       BIGINT,
    state        TEXT NOT NULL DEFAULT 'stored' CHECK (state IN ('pending', 'stored', 'deleted')),
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE assets (
    id          TEXT NOT NULL PRIMARY KEY,
    blob_hash   TEXT NOT NULL REFERENCES blobs (content_hash),
    owner       TEXT NOT NULL,
    module      TEXT NOT NULL,
    visibility  TEXT NOT NULL CHECK (visibility IN ('private', 'public', 'admin-private')),
    state       TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'deleted')),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (blob_hash, owner, module)
);

CREATE INDEX assets_by_blob ON assets (blob_hash);
CREATE INDEX assets_by_owner ON assets (owner);
