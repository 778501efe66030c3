-- An operator gives up on a date (`etl runs skip`): a `pipeline` row with status skipped, the
-- reason in error_cause. The planner retries a date whose latest pipeline run failed, however
-- old, until it succeeds or is skipped (docs/operations.md § The run ledger).
ALTER TABLE etl.runs DROP CONSTRAINT runs_status_check;
ALTER TABLE etl.runs ADD CONSTRAINT runs_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'abandoned', 'skipped'));

-- Finding the dates whose latest pipeline run failed stays cheap.
CREATE INDEX runs_pipeline_outcome_idx ON etl.runs (pipeline, logical_date, attempt DESC)
    WHERE stage = 'pipeline';
