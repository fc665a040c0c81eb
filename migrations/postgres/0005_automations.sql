-- Automations (docs/automations.md) as their spec (JSON, validated by the
-- hub, `enabled` included) and where they came from, as chimes: 'config'
-- ones follow the config file (`declared` is the file's entry when last
-- synced, so a run-time change survives restarts until the file changes),
-- 'runtime' ones (HTTP, MQTT, CLI) are kept.
CREATE TABLE automations (
    id         TEXT PRIMARY KEY,
    spec       TEXT NOT NULL,
    source     TEXT NOT NULL CHECK (source IN ('config', 'runtime')),
    declared   TEXT,
    updated_at BIGINT NOT NULL
);

-- Scenes, the same way.
CREATE TABLE scenes (
    id         TEXT PRIMARY KEY,
    spec       TEXT NOT NULL,
    source     TEXT NOT NULL CHECK (source IN ('config', 'runtime')),
    declared   TEXT,
    updated_at BIGINT NOT NULL
);

-- Runs waiting on a delay or a wait, with their deadline: a restarted hub
-- or a new leader picks them up (runs late within the catch-up window, or
-- records them missed). A row goes when its run ends.
CREATE TABLE automation_runs (
    automation_id TEXT NOT NULL,
    run           BIGINT NOT NULL,
    state         TEXT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (automation_id, run)
);

-- What each run (or each trigger that did not start one) saw and did.
-- The primary key serves "the last runs of one automation"; the index on
-- started_at serves the prune after database.history_days.
CREATE TABLE automation_traces (
    automation_id TEXT NOT NULL,
    run           BIGINT NOT NULL,
    started_at    BIGINT NOT NULL,
    outcome       TEXT NOT NULL,
    trace         TEXT NOT NULL,
    PRIMARY KEY (automation_id, run)
);
CREATE INDEX automation_traces_started_at ON automation_traces (started_at);
