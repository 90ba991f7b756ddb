-- The file name an asset was uploaded with (sanitised to one key segment), so a placement whose
-- key names {name} can place it again when its visibility changes. '' for assets from before.
ALTER TABLE assets ADD COLUMN name TEXT NOT NULL DEFAULT '';
