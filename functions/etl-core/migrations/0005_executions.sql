-- The executions `etl run` ran locally, as Step Functions keeps them: the exact definition and
-- input, how each ended, and the journal of the state entries that completed, which
-- `etl run --redrive` replays to resume a failed execution from where it failed (the service's
-- RedriveExecution). Beside the run ledger, which records stages, not executions.
CREATE TABLE etl.executions (
    name           text PRIMARY KEY,
    machine        text        NOT NULL,
    definition     text        NOT NULL,
    input          jsonb       NOT NULL,
    status         text        NOT NULL
        CHECK (status IN ('RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED')),
    error          text,
    cause          text,
    output         jsonb,
    redrive_count  integer     NOT NULL DEFAULT 0 CHECK (redrive_count >= 0),
    history_events bigint      NOT NULL DEFAULT 0,
    journal        jsonb       NOT NULL DEFAULT '{}',
    started_at     timestamptz NOT NULL,
    stopped_at     timestamptz
);

CREATE INDEX executions_machine_started_idx ON etl.executions (machine, started_at DESC);
