-- The logbook (issue 19): every press, state change, command,
-- availability change, automation run and chime play, with when (ms),
-- what (entity: button:desk, output:pi-1/light/lamp, input:pi-1/hall,
-- node:pi-1, automation:hall-motion, chime:tea), the kind of change, how
-- it came out (detail) and what caused it (source: mqtt, http, agent,
-- rule:<name>, automation, schedule). Written by the batched writer with
-- the rest of a message's rows; pruned after database.history_days.
--
-- id orders entries written in the same millisecond (the page cursor is
-- (at, id)); rows are only ever inserted and pruned from the old end.
CREATE TABLE logbook (
    id     INTEGER PRIMARY KEY,
    at     BIGINT NOT NULL,
    entity TEXT NOT NULL,
    kind   TEXT NOT NULL,
    detail TEXT NOT NULL,
    source TEXT NOT NULL
);
-- In SQLite every index carries the rowid (id), so (entity, at) is
-- (entity, at, id): the page query's ORDER BY at DESC, id DESC walks it
-- backwards with no sort.
-- logbook_entity serves "one entity, newest first, in a time range";
-- logbook_at serves the unfiltered page and the prune.
CREATE INDEX logbook_entity ON logbook (entity, at);
CREATE INDEX logbook_at ON logbook (at);
