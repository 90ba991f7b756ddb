-- Placements: an asset's bytes live where the server's placement put them (a backend and a
-- key rendered from a template), so one blob may have several objects — one per (blob,
-- placement): owners sharing a content-addressed placement share one object, a template
-- naming {user} gives each owner their own.
--
-- `backend` '' means the store's default backend (`[assets] originals`): every row written
-- before placements existed lives there.

CREATE TABLE objects (
    backend     TEXT NOT NULL,
    storage_key TEXT NOT NULL,
    blob_hash   TEXT NOT NULL REFERENCES blobs (content_hash),
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (backend, storage_key)
);

CREATE INDEX objects_by_blob ON objects (blob_hash);

-- The object a blob's variants are read from (the first one stored).
ALTER TABLE blobs ADD COLUMN backend TEXT NOT NULL DEFAULT '';

-- The object an asset's bytes are served from.
ALTER TABLE assets ADD COLUMN backend TEXT NOT NULL DEFAULT '';
ALTER TABLE assets ADD COLUMN storage_key TEXT NOT NULL DEFAULT '';

INSERT INTO objects (backend, storage_key, blob_hash, created_at)
    SELECT '', storage_key, content_hash, created_at FROM blobs;

UPDATE assets SET storage_key = (
    SELECT blobs.storage_key FROM blobs WHERE blobs.content_hash = assets.blob_hash
);
