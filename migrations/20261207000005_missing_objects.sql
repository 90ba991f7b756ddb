-- Reconciliation: an object whose bytes are gone from its backend is marked missing (the time
-- it was found so, Unix ms; 0 = present). A blob read from a missing object is not served,
-- and an upload of the same bytes writes the object again.
ALTER TABLE objects ADD COLUMN missing_since BIGINT NOT NULL DEFAULT 0;
