-- HR: the employees table the hire, export and sync stages share, and the rejects the hire
-- stage reports instead of dropping.
CREATE SCHEMA IF NOT EXISTS hr;

CREATE TABLE hr.employees (
    employee_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The deterministic key: a re-run of (date, seed) hits the same rows and adds nothing.
    logical_date date        NOT NULL,
    batch_seed   bigint      NOT NULL,
    batch_index  integer     NOT NULL CHECK (batch_index >= 0),
    full_name    varchar(50) NOT NULL CHECK (full_name <> ''),
    job_title    varchar(50) NOT NULL CHECK (job_title <> ''),
    department   varchar(50) NOT NULL CHECK (department <> ''),
    email        varchar(254) NOT NULL CHECK (position('@' in email) > 1),
    salary       numeric(12, 2) NOT NULL CHECK (salary > 0),
    hire_date    date        NOT NULL,
    loaded_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT employees_natural_key UNIQUE (logical_date, batch_seed, batch_index)
);

-- The sync stage reads one hire-date interval at a time.
CREATE INDEX employees_hire_date_idx ON hr.employees (hire_date);

CREATE TABLE hr.employee_rejects (
    logical_date date        NOT NULL,
    batch_seed   bigint      NOT NULL,
    batch_index  integer     NOT NULL,
    record       jsonb       NOT NULL,
    reason       text        NOT NULL,
    rejected_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (logical_date, batch_seed, batch_index)
);
