-- household.member_count / labor_force_count and employment.household_id, kept by PostgreSQL itself
-- in the same transaction as every change, whoever writes (ORM, Core, psql). History: migrations
-- 0002 (counts, employment.household_id), 0005 (members moving household, TRUNCATE), 0010 (only
-- members who have not left count: the household today; any other date reads household_status) and
-- 0013 (the counts' join by hash, also under row-level security).
--
-- Coverage over a province (~360,000 households) must not join every member row:
-- - member_count / labor_force_count: statement-level triggers on member (transition tables, one
--   grouped UPDATE per statement, so bulk loads stay fast);
-- - employment.household_id: copied from the member by a BEFORE INSERT/UPDATE trigger; a member
--   moved to another household carries its employments along (which refreshes both households'
--   employment status through the triggers of employment_status.sql);
-- - TRUNCATE member, which fires no row or statement DML trigger, resets every count.

CREATE OR REPLACE FUNCTION anju_member_counts() RETURNS trigger LANGUAGE plpgsql SET enable_nestloop = off AS $$
DECLARE
    ids bigint[];
BEGIN
    -- The households touched are found by primary key (`h.id = ANY(ids)`) and joined to their counts by hash
    -- (enable_nestloop off for this function): under row-level security PostgreSQL guessed one household and
    -- joined the per-household counts in a nested loop, re-aggregating them for every household of the county
    -- (54 s for a county officer's import of 35,000 members; 0.1 s now).
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        ids := ARRAY(SELECT DISTINCT household_id FROM new_rows);
        UPDATE household h SET member_count = h.member_count + d.n, labor_force_count = h.labor_force_count + d.lf
        FROM (SELECT household_id, count(*) FILTER (WHERE left_on IS NULL) AS n,
                     count(*) FILTER (WHERE labor_force AND left_on IS NULL) AS lf
              FROM new_rows GROUP BY household_id) d
        WHERE h.id = d.household_id AND h.id = ANY(ids);
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        ids := ARRAY(SELECT DISTINCT household_id FROM old_rows);
        UPDATE household h SET member_count = h.member_count - d.n, labor_force_count = h.labor_force_count - d.lf
        FROM (SELECT household_id, count(*) FILTER (WHERE left_on IS NULL) AS n,
                     count(*) FILTER (WHERE labor_force AND left_on IS NULL) AS lf
              FROM old_rows GROUP BY household_id) d
        WHERE h.id = d.household_id AND h.id = ANY(ids);
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS member_counts_insert ON member;
CREATE TRIGGER member_counts_insert AFTER INSERT ON member REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_member_counts();

DROP TRIGGER IF EXISTS member_counts_update ON member;
CREATE TRIGGER member_counts_update AFTER UPDATE ON member REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_member_counts();

DROP TRIGGER IF EXISTS member_counts_delete ON member;
CREATE TRIGGER member_counts_delete AFTER DELETE ON member REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_member_counts();

CREATE OR REPLACE FUNCTION anju_member_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE household SET member_count = 0, labor_force_count = 0 WHERE member_count <> 0 OR labor_force_count <> 0;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS member_truncated ON member;
CREATE TRIGGER member_truncated AFTER TRUNCATE ON member FOR EACH STATEMENT EXECUTE FUNCTION anju_member_truncated();

CREATE OR REPLACE FUNCTION anju_employment_household() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT household_id INTO NEW.household_id FROM member WHERE id = NEW.member_id;
    RETURN NEW;
END $$;

-- A member never moves household through this trigger; it still recomputes on a member_id change.
DROP TRIGGER IF EXISTS employment_household ON employment;
CREATE TRIGGER employment_household BEFORE INSERT OR UPDATE OF member_id ON employment
    FOR EACH ROW EXECUTE FUNCTION anju_employment_household();

CREATE OR REPLACE FUNCTION anju_member_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE employment SET household_id = NEW.household_id WHERE member_id = NEW.id;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS member_moved ON member;
CREATE TRIGGER member_moved AFTER UPDATE OF household_id ON member FOR EACH ROW
    WHEN (OLD.household_id IS DISTINCT FROM NEW.household_id) EXECUTE FUNCTION anju_member_moved();
