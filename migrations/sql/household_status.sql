-- household_status: every household as a step function of the date — where it lived, who was in it,
-- who of them was employed — and household_residence, the dated rows of where it lived. Kept by
-- statement-level triggers in the same transaction as every change, whoever writes. History:
-- migrations 0003 (employment counts), 0005 (row locks, TRUNCATE), 0010 (residence and members), 0013 (linear
-- refresh of many households at once: per-segment index lookups), 0020 (a bulk import refreshes once, at its end).
--
-- For every household the table holds the segments [valid_from, valid_to) between the dates where
-- anything it counts changes: a residence row starts (a relocation or a move), a member joins or
-- leaves, an employment starts or ends (end_on + 1). Throughout a segment it holds:
--   site_id, admin_code     the residence in effect (the latest household_residence row starting on
--                           or before the segment);
--   members, labor_force    members present (joined_on <= d < left_on; NULL bounds are open), and
--                           those of them flagged labor_force;
--   employed, stably_employed, <channel>
--                           distinct present members with an active (stable) employment, and per
--                           channel (one column per employment_channel label).
-- The first segment starts at -infinity, the last ends at +infinity: every date falls in exactly one
-- segment of every household. Definitions: docs/api.md ("active", "employed", "stably employed").

-- anju_refresh_household_status(ids): recompute the segments of the households ids. It locks the
-- households' rows first (FOR UPDATE, in id order), so two transactions refreshing the same
-- household serialise instead of colliding on the primary key. The channel columns and their counts
-- are spelled out from the employment_channel type, the database's copy of models.EmploymentChannel
-- (one column per label, same name): %1$s below becomes "labor_export, workshop, …", %2$s
-- "count(DISTINCT e.member_id) FILTER (WHERE e.channel = 'labor_export') AS labor_export, …" and
-- %3$s "w.labor_export, …". The function itself is plain SQL, planned once like any other.
DO $do$
DECLARE
    channels text[] := ARRAY(SELECT unnest(enum_range(NULL::employment_channel))::text);
BEGIN
    EXECUTE format($fn$
CREATE OR REPLACE FUNCTION anju_refresh_household_status(ids bigint[]) RETURNS void LANGUAGE sql AS $$
    SELECT 1 FROM household WHERE id = ANY(ids) ORDER BY id FOR UPDATE;
    DELETE FROM household_status WHERE household_id = ANY(ids);
    INSERT INTO household_status (household_id, valid_from, valid_to, site_id, admin_code, members, labor_force,
                                  employed, stably_employed, %1$s)
    WITH bounds AS (
        SELECT h.id AS household_id, date '-infinity' AS d FROM household h WHERE h.id = ANY(ids)
        UNION SELECT r.household_id, r.valid_from FROM household_residence r WHERE r.household_id = ANY(ids)
        UNION SELECT mb.household_id, mb.joined_on FROM member mb
              WHERE mb.household_id = ANY(ids) AND mb.joined_on IS NOT NULL
        UNION SELECT mb.household_id, mb.left_on FROM member mb
              WHERE mb.household_id = ANY(ids) AND mb.left_on IS NOT NULL
        UNION SELECT e.household_id, e.start_on FROM employment e WHERE e.household_id = ANY(ids)
        UNION SELECT e.household_id, e.end_on + 1 FROM employment e
              WHERE e.household_id = ANY(ids) AND e.end_on IS NOT NULL
    ),
    segments AS (
        SELECT household_id, d AS valid_from,
               lead(d, 1, date 'infinity') OVER (PARTITION BY household_id ORDER BY d) AS valid_to
        FROM bounds
    )
    -- Each segment counts its household's members and employments by an index lookup (LATERAL, household_id):
    -- the work grows with the segments whatever the planner believes about `= ANY(ids)` (it cannot see the
    -- array, guesses 10 elements, and once joined the per-segment counts back to the segments with a nested
    -- loop: quadratic, 95 s for a 10,000-household import; linear now, and as fast for one household).
    SELECT s.household_id, s.valid_from, s.valid_to, r.site_id, r.admin_code, pe.members, pe.labor_force,
           w.employed, w.stably_employed, %3$s
    FROM segments s
    CROSS JOIN LATERAL (
        SELECT count(*) AS members, count(*) FILTER (WHERE mb.labor_force) AS labor_force
        FROM member mb
        WHERE mb.household_id = s.household_id
          AND coalesce(mb.joined_on, date '-infinity') <= s.valid_from
          AND s.valid_from < coalesce(mb.left_on, date 'infinity')
    ) pe
    CROSS JOIN LATERAL (
        SELECT count(DISTINCT e.member_id) AS employed,
               count(DISTINCT e.member_id) FILTER (WHERE e.stable) AS stably_employed, %2$s
        FROM employment e JOIN member mb ON mb.id = e.member_id
        WHERE e.household_id = s.household_id
          AND e.start_on <= s.valid_from AND (e.end_on IS NULL OR e.end_on >= s.valid_from)
          AND coalesce(mb.joined_on, date '-infinity') <= s.valid_from
          AND s.valid_from < coalesce(mb.left_on, date 'infinity')
    ) w
    LEFT JOIN LATERAL (
        SELECT r.site_id, r.admin_code FROM household_residence r
        WHERE r.household_id = s.household_id AND r.valid_from <= s.valid_from
        ORDER BY r.valid_from DESC LIMIT 1
    ) r ON true;
$$
$fn$,
        (SELECT string_agg(format('%I', c), ', ' ORDER BY i) FROM unnest(channels) WITH ORDINALITY AS t(c, i)),
        (SELECT string_agg(format('count(DISTINCT e.member_id) FILTER (WHERE e.channel = %L) AS %I', c, c), ', ' ORDER BY i)
         FROM unnest(channels) WITH ORDINALITY AS t(c, i)),
        (SELECT string_agg(format('w.%I', c), ', ' ORDER BY i) FROM unnest(channels) WITH ORDINALITY AS t(c, i)));
END $do$;

-- anju_status_deferred(): inside a bulk import's transaction, which writes households, their residences and
-- members in several statements and then refreshes every household it wrote ONCE, itself, before committing
-- (resolvers/household_import.py: SET LOCAL anju.defer_status = 'on' … anju_refresh_household_status(ids) …
-- SET LOCAL anju.defer_status = 'off'); the statement triggers below then leave the refresh to it. Everywhere
-- else (the setting unset) every statement refreshes the households it touched, as before.
CREATE OR REPLACE FUNCTION anju_status_deferred() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('anju.defer_status', true), '') = 'on'
$$;

-- One trigger function for every table the status reads: the households of the changed rows
-- (household_id of the transition tables) are refreshed once per statement.
CREATE OR REPLACE FUNCTION anju_household_status_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT anju_status_deferred() THEN
        PERFORM anju_refresh_household_status(ARRAY(SELECT DISTINCT household_id FROM new_rows));
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION anju_household_status_old() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT anju_status_deferred() THEN
        PERFORM anju_refresh_household_status(ARRAY(SELECT DISTINCT household_id FROM old_rows));
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION anju_household_status_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT anju_status_deferred() THEN
        PERFORM anju_refresh_household_status(ARRAY(SELECT household_id FROM new_rows
                                                    UNION SELECT household_id FROM old_rows));
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS employment_status_insert ON employment;
CREATE TRIGGER employment_status_insert AFTER INSERT ON employment REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_household_status_new();
DROP TRIGGER IF EXISTS employment_status_update ON employment;
CREATE TRIGGER employment_status_update AFTER UPDATE ON employment REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_household_status_changed();
DROP TRIGGER IF EXISTS employment_status_delete ON employment;
CREATE TRIGGER employment_status_delete AFTER DELETE ON employment REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_household_status_old();

DROP TRIGGER IF EXISTS member_status_insert ON member;
CREATE TRIGGER member_status_insert AFTER INSERT ON member REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_household_status_new();
DROP TRIGGER IF EXISTS member_status_update ON member;
CREATE TRIGGER member_status_update AFTER UPDATE ON member REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_household_status_changed();
DROP TRIGGER IF EXISTS member_status_delete ON member;
CREATE TRIGGER member_status_delete AFTER DELETE ON member REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_household_status_old();

-- Residence rows: the household's current columns follow its latest row (only where they differ, so
-- an unchanged household is not written), relocated_on is the first day at a site, then the status
-- is refreshed.
CREATE OR REPLACE FUNCTION anju_residence_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        ids := ARRAY(SELECT DISTINCT household_id FROM new_rows);
    ELSIF TG_OP = 'DELETE' THEN
        ids := ARRAY(SELECT DISTINCT household_id FROM old_rows);
    ELSE
        ids := ARRAY(SELECT household_id FROM new_rows UNION SELECT household_id FROM old_rows);
    END IF;
    UPDATE household h
       SET site_id = cur.site_id, admin_code = cur.admin_code, dwelling = cur.dwelling, relocated_on = first.relocated_on
      FROM (SELECT DISTINCT ON (r.household_id) r.household_id, r.site_id, r.admin_code, r.dwelling
              FROM household_residence r WHERE r.household_id = ANY(ids)
             ORDER BY r.household_id, r.valid_from DESC) cur
      LEFT JOIN (SELECT r.household_id, min(r.valid_from) AS relocated_on FROM household_residence r
                  WHERE r.household_id = ANY(ids) AND r.site_id IS NOT NULL AND r.valid_from > date '-infinity'
                  GROUP BY r.household_id) first ON first.household_id = cur.household_id
     WHERE h.id = cur.household_id
       AND (h.site_id, h.admin_code, h.relocated_on, h.dwelling)
           IS DISTINCT FROM (cur.site_id, cur.admin_code, first.relocated_on, cur.dwelling);
    IF NOT anju_status_deferred() THEN
        PERFORM anju_refresh_household_status(ids);
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS residence_insert ON household_residence;
CREATE TRIGGER residence_insert AFTER INSERT ON household_residence REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_residence_changed();
DROP TRIGGER IF EXISTS residence_update ON household_residence;
CREATE TRIGGER residence_update AFTER UPDATE ON household_residence REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_residence_changed();
DROP TRIGGER IF EXISTS residence_delete ON household_residence;
CREATE TRIGGER residence_delete AFTER DELETE ON household_residence REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_residence_changed();

-- A new household gets its residence rows from the columns it was inserted with: relocated (a site
-- and relocated_on), it lived in its origin village (origin_admin_code, else admin_code; no site, no
-- dwelling) until relocated_on and at its site from then on; otherwise where it is, since always.
CREATE OR REPLACE FUNCTION anju_household_residence_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO household_residence (household_id, valid_from, site_id, admin_code, dwelling)
    SELECT n.id, date '-infinity', NULL, coalesce(n.origin_admin_code, n.admin_code), NULL
      FROM new_rows n WHERE n.relocated_on IS NOT NULL AND n.site_id IS NOT NULL
    UNION ALL
    SELECT n.id, n.relocated_on, n.site_id, n.admin_code, n.dwelling
      FROM new_rows n WHERE n.relocated_on IS NOT NULL AND n.site_id IS NOT NULL
    UNION ALL
    SELECT n.id, date '-infinity', n.site_id, n.admin_code, n.dwelling
      FROM new_rows n WHERE n.relocated_on IS NULL OR n.site_id IS NULL;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS household_status_insert ON household;
DROP TRIGGER IF EXISTS household_residence_insert ON household;
CREATE TRIGGER household_residence_insert AFTER INSERT ON household REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_household_residence_new();

-- TRUNCATE employment or member fires no row or statement DML trigger: every household is refreshed.
CREATE OR REPLACE FUNCTION anju_household_status_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM anju_refresh_household_status(ARRAY(SELECT id FROM household));
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS employment_truncated ON employment;
CREATE TRIGGER employment_truncated AFTER TRUNCATE ON employment FOR EACH STATEMENT
    EXECUTE FUNCTION anju_household_status_truncated();
DROP TRIGGER IF EXISTS member_status_truncated ON member;
CREATE TRIGGER member_status_truncated AFTER TRUNCATE ON member FOR EACH STATEMENT
    EXECUTE FUNCTION anju_household_status_truncated();

-- The date a year's figures are read on: 31 December, or today while the year is not over.
CREATE OR REPLACE FUNCTION anju_year_end(y integer) RETURNS date LANGUAGE sql STABLE AS $$
    SELECT least(make_date(y, 12, 31), current_date)
$$;

-- A facility (or site) is open on d: opened on or before d (or no opening date recorded) and not yet
-- closed (closed_on is the first day it is closed). The one definition of "open on a date"; the
-- proximity queries (resolvers/spatial.py) apply it. Plain SQL, IMMUTABLE: the planner inlines it.
CREATE OR REPLACE FUNCTION anju_open_on(opened_on date, closed_on date, d date) RETURNS boolean
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (opened_on IS NULL OR opened_on <= d) AND (closed_on IS NULL OR d < closed_on)
$$;

-- Members present in a household on a date (household_status), NULL when none.
CREATE OR REPLACE FUNCTION anju_members_on(hid bigint, d date) RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT nullif(members, 0) FROM household_status WHERE household_id = hid AND valid_from <= d AND d < valid_to
$$;

-- The household size a year's per-capita figures divide by: the size recorded with that year's income
-- (household_income.household_size), else the members present at the year's end. NULL: no one.
CREATE OR REPLACE FUNCTION anju_year_size(hid bigint, y integer) RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT hi.household_size FROM household_income hi WHERE hi.household_id = hid AND hi.year = y),
                    anju_members_on(hid, anju_year_end(y)))
$$;

-- household_income.household_size defaults to the members present on the survey date: surveyed_on,
-- else the year's end. NULL when nobody was present (such an income gives no per-capita figure).
CREATE OR REPLACE FUNCTION anju_income_household_size() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.household_size IS NULL THEN
        NEW.household_size := anju_members_on(NEW.household_id, coalesce(NEW.surveyed_on, anju_year_end(NEW.year)));
    END IF;
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS income_household_size ON household_income;
CREATE TRIGGER income_household_size BEFORE INSERT OR UPDATE ON household_income
    FOR EACH ROW EXECUTE FUNCTION anju_income_household_size();
