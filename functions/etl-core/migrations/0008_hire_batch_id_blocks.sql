-- Hire batches larger than one block of ids (#18: 10M employees in one hire). Migration 6
-- gave each batch one block of 2^21 ids (`id_base`); a batch with more rows now also owns
-- further blocks, drawn from the same sequence when a load first needs them and kept from
-- then on, so row i gets the same id on every re-run whatever count a later run asks for:
-- block floor(i / 2^21) (0 is `id_base`, k >= 1 is `more_id_bases[k]`) plus i mod 2^21.
-- Existing batches have none ('{}'), so their ids do not move.
CREATE FUNCTION hr.next_id_block() RETURNS bigint
    LANGUAGE sql VOLATILE
    -- The formula of hire_batches.id_base's default (migration 6).
    AS $$ SELECT 1099511627776 + nextval('hr.employee_id_blocks') * 2097152 $$;

ALTER TABLE hr.hire_batches
    ADD COLUMN more_id_bases bigint[] NOT NULL DEFAULT '{}'
        -- Only a batch with a block of its own may have more (a legacy batch has none).
        CHECK (cardinality(more_id_bases) = 0 OR id_base IS NOT NULL);
