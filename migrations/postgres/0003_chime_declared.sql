-- The spec a config chime had in the config file when the hub last synced
-- it (NULL for chimes made at run time). A start re-applies a config chime
-- only when its declaration in the file changed, so what was changed at run
-- time (switched off from Home Assistant, moved to 07:30 over HTTP) survives
-- restarts until the file itself says something new.
ALTER TABLE chimes ADD COLUMN declared TEXT;
