-- household_employment_status: each household's employment counts as a step function of the date,
-- kept by statement-level triggers on employment and household in the same transaction as every
-- change, whoever writes. History: migrations 0003 (table, triggers) and 0005 (row locks, TRUNCATE).
--
-- For every household the table holds the segments [valid_from, valid_to) between the dates where
-- any member's employment starts or ends (end_on + 1), with the counts that hold throughout the
-- segment: distinct members employed, stably employed, and employed per channel (one column per
-- employment_channel label). The first segment starts at -infinity, the last ends at +infinity, so
-- every date falls in exactly one segment of every household. Definitions: API.md ("active",
-- "employed", "stably employed").

-- anju_refresh_employment_status(ids): recompute the segments of the households ids.
-- It locks the households' rows first (FOR UPDATE, in id order), so two transactions refreshing the
-- same household serialise instead of colliding on the primary key.
-- The channel columns and their counts are spelled out from the employment_channel type, the
-- database's copy of models.EmploymentChannel (one column per label, same name): %1$s below becomes
-- "labor_export, workshop, …" and %2$s "count(DISTINCT e.member_id) FILTER (WHERE e.channel =
-- 'labor_export'), …". The function itself is plain SQL, planned once like any other.
DO $do$
DECLARE
    channels text[] := ARRAY(SELECT unnest(enum_range(NULL::employment_channel))::text);
BEGIN
    EXECUTE format($fn$
CREATE OR REPLACE FUNCTION anju_refresh_employment_status(ids bigint[]) RETURNS void LANGUAGE sql AS $$
    SELECT 1 FROM household WHERE id = ANY(ids) ORDER BY id FOR UPDATE;
    DELETE FROM household_employment_status WHERE household_id = ANY(ids);
    INSERT INTO household_employment_status (household_id, valid_from, valid_to, employed, stably_employed, %1$s)
    WITH bounds AS (
        SELECT h.id AS household_id, date '-infinity' AS d FROM household h WHERE h.id = ANY(ids)
        UNION SELECT e.household_id, e.start_on FROM employment e WHERE e.household_id = ANY(ids)
        UNION SELECT e.household_id, e.end_on + 1 FROM employment e
              WHERE e.household_id = ANY(ids) AND e.end_on IS NOT NULL
    ),
    segments AS (
        SELECT household_id, d AS valid_from,
               lead(d, 1, date 'infinity') OVER (PARTITION BY household_id ORDER BY d) AS valid_to
        FROM bounds
    )
    SELECT s.household_id, s.valid_from, s.valid_to,
           count(DISTINCT e.member_id), count(DISTINCT e.member_id) FILTER (WHERE e.stable), %2$s
    FROM segments s
    LEFT JOIN employment e ON e.household_id = s.household_id
         AND e.start_on <= s.valid_from AND (e.end_on IS NULL OR e.end_on >= s.valid_from)
    GROUP BY s.household_id, s.valid_from, s.valid_to;
$$
$fn$,
        (SELECT string_agg(format('%I', c), ', ' ORDER BY i) FROM unnest(channels) WITH ORDINALITY AS t(c, i)),
        (SELECT string_agg(format('count(DISTINCT e.member_id) FILTER (WHERE e.channel = %L)', c), ', ' ORDER BY i)
         FROM unnest(channels) WITH ORDINALITY AS t(c, i)));
END $do$;

CREATE OR REPLACE FUNCTION anju_employment_status_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM anju_refresh_employment_status(ARRAY(SELECT DISTINCT household_id FROM new_rows));
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION anju_employment_status_old() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM anju_refresh_employment_status(ARRAY(SELECT DISTINCT household_id FROM old_rows));
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION anju_employment_status_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM anju_refresh_employment_status(ARRAY(SELECT household_id FROM new_rows
                                                 UNION SELECT household_id FROM old_rows));
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS employment_status_insert ON employment;
CREATE TRIGGER employment_status_insert AFTER INSERT ON employment REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_employment_status_new();

DROP TRIGGER IF EXISTS employment_status_update ON employment;
CREATE TRIGGER employment_status_update AFTER UPDATE ON employment REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_employment_status_changed();

DROP TRIGGER IF EXISTS employment_status_delete ON employment;
CREATE TRIGGER employment_status_delete AFTER DELETE ON employment REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_employment_status_old();

-- A new household starts with one segment covering every date, with no one employed.
CREATE OR REPLACE FUNCTION anju_household_status_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO household_employment_status (household_id, valid_from, valid_to)
    SELECT id, date '-infinity', date 'infinity' FROM new_rows;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS household_status_insert ON household;
CREATE TRIGGER household_status_insert AFTER INSERT ON household REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_household_status_new();

-- TRUNCATE employment, which fires no row or statement DML trigger, leaves every household one
-- segment with no one employed.
CREATE OR REPLACE FUNCTION anju_employment_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM household_employment_status;
    INSERT INTO household_employment_status (household_id, valid_from, valid_to)
    SELECT id, date '-infinity', date 'infinity' FROM household;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS employment_truncated ON employment;
CREATE TRIGGER employment_truncated AFTER TRUNCATE ON employment FOR EACH STATEMENT
    EXECUTE FUNCTION anju_employment_truncated();
