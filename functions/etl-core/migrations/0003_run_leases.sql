-- One run per (pipeline, logical date) at a time, and no attempt left "running" by a process
-- that died (docs/operations.md § The run ledger).
--
-- The lease: the execution running a date and until when. Taken by the first stage of a run
-- for its date, renewed by every later stage (and while a stage works), released by
-- record-run. A row outlives its release, naming the last holder.
CREATE TABLE etl.leases (
    pipeline     text        NOT NULL,
    logical_date date        NOT NULL,
    -- The execution name, or a direct invocation's own label (it holds the lease for one stage).
    owner        text        NOT NULL CHECK (owner <> ''),
    -- The execution, NULL for a direct invocation: what etl.runs.execution holds.
    execution    text,
    acquired_at  timestamptz NOT NULL DEFAULT now(),
    renewed_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    released_at  timestamptz,
    PRIMARY KEY (pipeline, logical_date)
);

-- How long a lease lives without renewal: one value every function reads, changed without a
-- deploy (UPDATE etl.lease_policy SET ttl = '45 min'). Longer than the longest wait between
-- two stages of a run (a Retry of RetryIntervalSeconds, 300 s by default, plus cold starts).
CREATE TABLE etl.lease_policy (
    singleton boolean  PRIMARY KEY DEFAULT true CHECK (singleton),
    ttl       interval NOT NULL CHECK (ttl > interval '0')
);
INSERT INTO etl.lease_policy (ttl) VALUES (interval '30 minutes');

-- An attempt whose process died is marked abandoned, its reason in error_cause.
ALTER TABLE etl.runs DROP CONSTRAINT runs_status_check;
ALTER TABLE etl.runs ADD CONSTRAINT runs_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'abandoned'));

-- Finding the running attempts of a date (takeover, supersession, the reaper) stays cheap.
CREATE INDEX runs_running_idx ON etl.runs (pipeline, logical_date) WHERE status = 'running';
