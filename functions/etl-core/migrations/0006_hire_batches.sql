-- Hire batches replaced as a unit (#18): a re-run of (logical date, seed) deletes that batch's
-- rows and binary-COPYs them again in one transaction, instead of merging row by row.
--
-- Employee ids must survive that: hr-sync uses them as the search documents' _id and hr-export
-- orders by them. So each batch owns a block of 2^21 ids (more than hr-hire's 2,000,000-row
-- limit), registered here on its first load, and row i of the batch is id_base + i. Blocks
-- start at 2^40, above anything the identity column will reach (capped below), and stay under
-- 2^53 so that JSON readers (Kibana) see the ids exactly.
CREATE SEQUENCE hr.employee_id_blocks AS bigint MINVALUE 0 START 0 MAXVALUE 4294443007;

CREATE TABLE hr.hire_batches (
    logical_date   date   NOT NULL,
    batch_seed     bigint NOT NULL,
    -- NULL: the batch was loaded before this migration, its ids came from the identity and are
    -- kept (hr-hire merges such a batch instead of replacing it).
    id_base        bigint UNIQUE
        DEFAULT 1099511627776 + nextval('hr.employee_id_blocks') * 2097152
        CHECK (id_base >= 1099511627776 AND id_base % 2097152 = 0),
    -- What the latest load asked for and did.
    locale         text,
    rows_requested bigint,
    rows_loaded    bigint,
    rows_rejected  bigint,
    loaded_at      timestamptz,
    PRIMARY KEY (logical_date, batch_seed)
);
ALTER SEQUENCE hr.employee_id_blocks OWNED BY hr.hire_batches.id_base;

-- Identity ids (rows of batches loaded before this migration) never reach the blocks.
ALTER TABLE hr.employees ALTER COLUMN employee_id SET MAXVALUE 1099511627775;
