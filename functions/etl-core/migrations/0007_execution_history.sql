-- Each local execution's event history, in the shape of Step Functions' GetExecutionHistory
-- (`etl history`, the viewer's run page): one row per event, numbered from 1 across every
-- attempt of the execution (a redrive appends after the earlier attempts' events, as the
-- service does). `details` is the event's type-specific object keyed as the service keys it,
-- e.g. {"stateEnteredEventDetails": {"name": "Hire"}}. Beside etl.executions, whose row it
-- belongs to.
CREATE TABLE etl.execution_events (
    execution         text        NOT NULL REFERENCES etl.executions (name) ON DELETE CASCADE,
    id                bigint      NOT NULL CHECK (id >= 1),
    previous_event_id bigint      NOT NULL CHECK (previous_event_id >= 0),
    "timestamp"       timestamptz NOT NULL,
    type              text        NOT NULL,
    details           jsonb       NOT NULL DEFAULT '{}',
    PRIMARY KEY (execution, id)
);
