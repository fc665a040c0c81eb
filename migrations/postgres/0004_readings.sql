-- Readings of any quantity, one row per (node, quantity, instant): a new
-- quantity (CO2, say) needs no new column. Pruned after
-- database.history_days. The primary key serves the history query (one
-- node, each quantity, since an instant); readings_at serves the
-- prune.
CREATE TABLE readings (
    node     TEXT NOT NULL,
    quantity TEXT NOT NULL,
    at       BIGINT NOT NULL,
    value    DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (node, quantity, at)
);
CREATE INDEX readings_at ON readings (at);

-- Each node's last reading per quantity, kept past the history's retention
-- (a node silent for months still shows what it last said).
CREATE TABLE last_readings (
    node     TEXT NOT NULL,
    quantity TEXT NOT NULL,
    value    DOUBLE PRECISION NOT NULL,
    at       BIGINT NOT NULL,
    PRIMARY KEY (node, quantity)
);

-- Every climate reading so far, in the same transaction as the tables.
INSERT INTO readings (node, quantity, at, value)
    SELECT node, 'temperature', at, temperature FROM sensor_readings;
INSERT INTO readings (node, quantity, at, value)
    SELECT node, 'humidity', at, humidity FROM sensor_readings;
-- A node's last climate counted only when all three were set (store load).
INSERT INTO last_readings (node, quantity, value, at)
    SELECT id, 'temperature', temperature, climate_at FROM nodes
    WHERE temperature IS NOT NULL AND humidity IS NOT NULL AND climate_at IS NOT NULL;
INSERT INTO last_readings (node, quantity, value, at)
    SELECT id, 'humidity', humidity, climate_at FROM nodes
    WHERE temperature IS NOT NULL AND humidity IS NOT NULL AND climate_at IS NOT NULL;

-- sensor_readings and the nodes columns temperature, humidity and
-- climate_at are left as they are, no longer written: during a rolling
-- upgrade of two hubs on one Postgres the old replica keeps writing them
-- until it stops, and dropping them under it would fail its every commit.
-- The hub still prunes sensor_readings, so it empties within
-- history_days; a later migration can drop them.
