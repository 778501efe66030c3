-- The run ledger: one row per (pipeline, stage, logical date, attempt). The backfill planner
-- reads it to find the dates that never succeeded.
CREATE TABLE etl.runs (
    run_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pipeline      text        NOT NULL,
    stage         text        NOT NULL,
    logical_date  date        NOT NULL,
    attempt       integer     NOT NULL CHECK (attempt >= 1),
    status        text        NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    execution     text,
    rows_in       bigint,
    rows_out      bigint,
    rows_rejected bigint,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    duration_ms   bigint,
    error_name    text,
    error_cause   text,
    CONSTRAINT runs_attempt_key UNIQUE (pipeline, stage, logical_date, attempt)
);

CREATE INDEX runs_pipeline_date_idx ON etl.runs (pipeline, logical_date);
