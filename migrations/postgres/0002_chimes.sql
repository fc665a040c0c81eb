-- Chimes as their spec (JSON, validated by the hub) and where they came from:
-- 'config' chimes are replaced from the config file at every start,
-- 'runtime' ones (HTTP, MQTT, CLI) are kept.
CREATE TABLE chimes (
    id         TEXT PRIMARY KEY,
    spec       TEXT NOT NULL,
    source     TEXT NOT NULL CHECK (source IN ('config', 'runtime')),
    updated_at BIGINT NOT NULL
);

-- One row per occurrence, inserted before the chime plays: the primary key
-- makes a second claim of the same occurrence fail, whichever hub tries.
CREATE TABLE chime_runs (
    chime_id      TEXT NOT NULL,
    scheduled_for BIGINT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('played', 'missed')),
    recorded_at   BIGINT NOT NULL,
    PRIMARY KEY (chime_id, scheduled_for)
);
