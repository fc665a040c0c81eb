-- Button state as the house last saw it; press_count counts every accepted press.
CREATE TABLE buttons (
    id            TEXT PRIMARY KEY NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('ON', 'OFF')),
    changed_at    BIGINT NOT NULL,
    last_action   TEXT CHECK (last_action IN ('single', 'double', 'long')),
    last_press_at BIGINT,
    press_count   BIGINT NOT NULL DEFAULT 0
);

-- Last confirmed state of each node output (from the agent's state topic).
CREATE TABLE outputs (
    node       TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('light', 'switch', 'sequence')),
    name       TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('ON', 'OFF')),
    changed_at BIGINT NOT NULL,
    PRIMARY KEY (node, kind, name)
);

CREATE TABLE nodes (
    id           TEXT PRIMARY KEY NOT NULL,
    availability TEXT CHECK (availability IN ('online', 'offline')),
    last_seen    BIGINT,
    temperature  DOUBLE PRECISION,
    humidity     DOUBLE PRECISION,
    climate_at   BIGINT
);

-- Climate history, pruned after database.history_days.
CREATE TABLE sensor_readings (
    node        TEXT NOT NULL,
    at          BIGINT NOT NULL,
    temperature DOUBLE PRECISION NOT NULL,
    humidity    DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (node, at)
);

-- Ids of recently processed messages that carried one, so a redelivery after
-- a crash is recognised and not applied twice.
CREATE TABLE processed_messages (
    id TEXT PRIMARY KEY NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX processed_messages_at ON processed_messages (at);
