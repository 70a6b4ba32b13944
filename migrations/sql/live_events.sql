-- Live updates (GraphQL subscriptions, anju/live.py): an outbox of what changed, by id, with a gap-free sequence.
-- History: migrations 0016, 0021 (monitoring cases; grid workers' scope), 0026 (identical events of a transaction once).
--
-- Writes append to live_pending in their own transaction (statement-level triggers: one row per household and
-- table per statement, however many rows the statement touched; identical rows of one transaction numbered once) and send NOTIFY anju_live with an empty payload
-- (identical notifications of one transaction are folded into one; the payload can never exceed NOTIFY's 8,000
-- bytes, whatever the row holds). No row data goes anywhere: an event names its topic, operation, table and id.
--
-- anju_live_sequence() moves pending rows into live_event, numbering them (seq), but only rows of transactions older
-- than every transaction still running (xid below the snapshot's xmin): those can no longer be joined by an earlier
-- number, so a reader that has seen seq N has seen every event numbered up to N, and resuming "after N" loses
-- nothing. One sequencer at a time (an advisory transaction lock); each worker process calls it when notified and
-- every few seconds (anju/live.py).
--
-- Scope is applied when an event is read, under the reader's row-level security: live_event rows of a household or
-- monitoring-case topic carry the admin codes and the grid of the household (before and after the change); officers
-- and partners see them exactly when they would see a household under those codes, grid workers when that grid is
-- one of theirs as the grid table says at delivery. Import-job rows carry their owner (resolvers/live.py keeps them
-- to their sender and admins).
--
-- A new topic is one value of the live_topic enum (and of models.LiveTopic) and the same trigger for each of INSERT,
-- UPDATE and DELETE (PostgreSQL allows transition tables only on single-event triggers):
--   CREATE TRIGGER live_insert AFTER INSERT ON <table> REFERENCING NEW TABLE AS new_rows
--       FOR EACH STATEMENT EXECUTE FUNCTION anju_live_household_rows('<topic>');
--   (live_update: REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows; live_delete: OLD TABLE AS old_rows)
-- (anju_live_household_rows(topic) serves any table with a household_id column, scoped as its household;
-- anju_live_cases() the monitoring cases and the tables with a case_id column.)

-- Rows of a table with a household_id column (members, employments, ...): one pending event per household.
-- TG_ARGV[0]: the topic (default 'household'). A household already deleted (a cascade) has its own event.
CREATE OR REPLACE FUNCTION anju_live_household_rows() RETURNS trigger LANGUAGE plpgsql
        SECURITY DEFINER SET search_path = public AS $$
DECLARE
    topic live_topic := coalesce(TG_ARGV[0], 'household')::live_topic;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO live_pending (topic, operation, source, entity_id, admin_codes, grid_ids)
        SELECT topic, TG_OP, TG_TABLE_NAME, h.id, ARRAY[h.admin_code], array_remove(ARRAY[h.grid_id], NULL)
        FROM (SELECT DISTINCT household_id FROM new_rows) c JOIN household h ON h.id = c.household_id;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO live_pending (topic, operation, source, entity_id, admin_codes, grid_ids)
        SELECT topic, TG_OP, TG_TABLE_NAME, h.id, ARRAY[h.admin_code], array_remove(ARRAY[h.grid_id], NULL)
        FROM (SELECT household_id FROM new_rows UNION SELECT household_id FROM old_rows) c
        JOIN household h ON h.id = c.household_id;
    ELSE
        INSERT INTO live_pending (topic, operation, source, entity_id, admin_codes, grid_ids)
        SELECT topic, TG_OP, TG_TABLE_NAME, h.id, ARRAY[h.admin_code], array_remove(ARRAY[h.grid_id], NULL)
        FROM (SELECT DISTINCT household_id FROM old_rows) c JOIN household h ON h.id = c.household_id;
    END IF;
    PERFORM pg_notify('anju_live', '');
    RETURN NULL;
END $$;

-- Households themselves: the admin codes before and after (a move between counties is seen on both sides).
-- The transition tables carry no statistics (PostgreSQL guesses one row each): without enable_nestloop off, an UPDATE
-- of 12,000 households (a roster import's member counts) paired old and new rows in a nested loop, 144 M comparisons
-- (34 s; quadratic: a Sichuan-scale import would never end). Migration 0022.
CREATE OR REPLACE FUNCTION anju_live_households() RETURNS trigger LANGUAGE plpgsql
        SECURITY DEFINER SET search_path = public SET enable_nestloop = off AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO live_pending (topic, operation, source, entity_id, admin_codes, grid_ids)
        SELECT 'household', TG_OP, TG_TABLE_NAME, n.id, ARRAY[n.admin_code], array_remove(ARRAY[n.grid_id], NULL)
        FROM new_rows n;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO live_pending (topic, operation, source, entity_id, admin_codes, grid_ids)
        SELECT 'household', TG_OP, TG_TABLE_NAME, n.id,
               CASE WHEN o.admin_code IS DISTINCT FROM n.admin_code THEN ARRAY[o.admin_code, n.admin_code]
                    ELSE ARRAY[n.admin_code] END,
               array_remove(CASE WHEN o.grid_id IS DISTINCT FROM n.grid_id THEN ARRAY[o.grid_id, n.grid_id]
                                 ELSE ARRAY[n.grid_id] END, NULL)
        FROM new_rows n LEFT JOIN old_rows o ON o.id = n.id;
    ELSE
        INSERT INTO live_pending (topic, operation, source, entity_id, admin_codes, grid_ids)
        SELECT 'household', TG_OP, TG_TABLE_NAME, o.id, ARRAY[o.admin_code], array_remove(ARRAY[o.grid_id], NULL)
        FROM old_rows o;
    END IF;
    PERFORM pg_notify('anju_live', '');
    RETURN NULL;
END $$;

-- Import jobs (state and progress): one event per job and statement, owned by its sender.
CREATE OR REPLACE FUNCTION anju_live_import_jobs() RETURNS trigger LANGUAGE plpgsql
        SECURITY DEFINER SET search_path = public AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO live_pending (topic, operation, source, entity_id, owner)
        SELECT 'import_job', TG_OP, TG_TABLE_NAME, o.id, o.user_name FROM old_rows o;
    ELSE
        INSERT INTO live_pending (topic, operation, source, entity_id, owner)
        SELECT 'import_job', TG_OP, TG_TABLE_NAME, n.id, n.user_name FROM new_rows n;
    END IF;
    PERFORM pg_notify('anju_live', '');
    RETURN NULL;
END $$;

-- Monitoring cases (topic monitoring_case, id: the case's): the case row itself, or rows of a table with a case_id
-- column (steps, assistance measures, follow-up visits; rows without a case are the household's, not a case's). One
-- event per case and statement, scoped as the case's household (its admin code and grid as they are now). Cases and
-- steps are never deleted (casework.sql); a deleted measure or visit is a DELETE event of its case.
CREATE OR REPLACE FUNCTION anju_live_cases() RETURNS trigger LANGUAGE plpgsql
        SECURITY DEFINER SET search_path = public AS $$
BEGIN
    IF TG_TABLE_NAME = 'monitoring_case' THEN
        IF TG_OP = 'DELETE' THEN
            INSERT INTO live_pending (topic, operation, source, entity_id, admin_codes, grid_ids)
            SELECT 'monitoring_case', TG_OP, TG_TABLE_NAME, o.id, ARRAY[h.admin_code], array_remove(ARRAY[h.grid_id], NULL)
            FROM old_rows o JOIN household h ON h.id = o.household_id;
        ELSE
            INSERT INTO live_pending (topic, operation, source, entity_id, admin_codes, grid_ids)
            SELECT 'monitoring_case', TG_OP, TG_TABLE_NAME, n.id, ARRAY[h.admin_code], array_remove(ARRAY[h.grid_id], NULL)
            FROM new_rows n JOIN household h ON h.id = n.household_id;
        END IF;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO live_pending (topic, operation, source, entity_id, admin_codes, grid_ids)
        SELECT 'monitoring_case', TG_OP, TG_TABLE_NAME, mc.id, ARRAY[h.admin_code], array_remove(ARRAY[h.grid_id], NULL)
        FROM (SELECT DISTINCT case_id FROM new_rows) c
        JOIN monitoring_case mc ON mc.id = c.case_id JOIN household h ON h.id = mc.household_id;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO live_pending (topic, operation, source, entity_id, admin_codes, grid_ids)
        SELECT 'monitoring_case', TG_OP, TG_TABLE_NAME, mc.id, ARRAY[h.admin_code], array_remove(ARRAY[h.grid_id], NULL)
        FROM (SELECT case_id FROM new_rows UNION SELECT case_id FROM old_rows) c
        JOIN monitoring_case mc ON mc.id = c.case_id JOIN household h ON h.id = mc.household_id;
    ELSE
        INSERT INTO live_pending (topic, operation, source, entity_id, admin_codes, grid_ids)
        SELECT 'monitoring_case', TG_OP, TG_TABLE_NAME, mc.id, ARRAY[h.admin_code], array_remove(ARRAY[h.grid_id], NULL)
        FROM (SELECT DISTINCT case_id FROM old_rows) c
        JOIN monitoring_case mc ON mc.id = c.case_id JOIN household h ON h.id = mc.household_id;
    END IF;
    PERFORM pg_notify('anju_live', '');
    RETURN NULL;
END $$;

-- PostgreSQL allows transition tables only on single-event triggers: three per table.
DROP TRIGGER IF EXISTS live_insert ON household;
CREATE TRIGGER live_insert AFTER INSERT ON household REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_live_households();
DROP TRIGGER IF EXISTS live_update ON household;
CREATE TRIGGER live_update AFTER UPDATE ON household REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_live_households();
DROP TRIGGER IF EXISTS live_delete ON household;
CREATE TRIGGER live_delete AFTER DELETE ON household REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_live_households();
DROP TRIGGER IF EXISTS live_insert ON member;
CREATE TRIGGER live_insert AFTER INSERT ON member REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_live_household_rows();
DROP TRIGGER IF EXISTS live_update ON member;
CREATE TRIGGER live_update AFTER UPDATE ON member REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_live_household_rows();
DROP TRIGGER IF EXISTS live_delete ON member;
CREATE TRIGGER live_delete AFTER DELETE ON member REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_live_household_rows();
DROP TRIGGER IF EXISTS live_insert ON employment;
CREATE TRIGGER live_insert AFTER INSERT ON employment REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_live_household_rows();
DROP TRIGGER IF EXISTS live_update ON employment;
CREATE TRIGGER live_update AFTER UPDATE ON employment REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_live_household_rows();
DROP TRIGGER IF EXISTS live_delete ON employment;
CREATE TRIGGER live_delete AFTER DELETE ON employment REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_live_household_rows();
DROP TRIGGER IF EXISTS live_insert ON income_linkage;
CREATE TRIGGER live_insert AFTER INSERT ON income_linkage REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_live_household_rows();
DROP TRIGGER IF EXISTS live_update ON income_linkage;
CREATE TRIGGER live_update AFTER UPDATE ON income_linkage REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_live_household_rows();
DROP TRIGGER IF EXISTS live_delete ON income_linkage;
CREATE TRIGGER live_delete AFTER DELETE ON income_linkage REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_live_household_rows();
DROP TRIGGER IF EXISTS live_insert ON household_income;
CREATE TRIGGER live_insert AFTER INSERT ON household_income REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_live_household_rows();
DROP TRIGGER IF EXISTS live_update ON household_income;
CREATE TRIGGER live_update AFTER UPDATE ON household_income REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_live_household_rows();
DROP TRIGGER IF EXISTS live_delete ON household_income;
CREATE TRIGGER live_delete AFTER DELETE ON household_income REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_live_household_rows();
DROP TRIGGER IF EXISTS live_insert ON import_job;
CREATE TRIGGER live_insert AFTER INSERT ON import_job REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_live_import_jobs();
DROP TRIGGER IF EXISTS live_update ON import_job;
CREATE TRIGGER live_update AFTER UPDATE ON import_job REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_live_import_jobs();
DROP TRIGGER IF EXISTS live_delete ON import_job;
CREATE TRIGGER live_delete AFTER DELETE ON import_job REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_live_import_jobs();
-- Monitoring cases: never deleted (casework.sql), nor their steps; measures and visits may be.
DROP TRIGGER IF EXISTS live_insert ON monitoring_case;
CREATE TRIGGER live_insert AFTER INSERT ON monitoring_case REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_live_cases();
DROP TRIGGER IF EXISTS live_update ON monitoring_case;
CREATE TRIGGER live_update AFTER UPDATE ON monitoring_case REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_live_cases();
DROP TRIGGER IF EXISTS live_insert ON case_step;
CREATE TRIGGER live_insert AFTER INSERT ON case_step REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_live_cases();
DROP TRIGGER IF EXISTS live_update ON case_step;
CREATE TRIGGER live_update AFTER UPDATE ON case_step REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_live_cases();
DROP TRIGGER IF EXISTS live_insert ON assistance_measure;
CREATE TRIGGER live_insert AFTER INSERT ON assistance_measure REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_live_cases();
DROP TRIGGER IF EXISTS live_update ON assistance_measure;
CREATE TRIGGER live_update AFTER UPDATE ON assistance_measure REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_live_cases();
DROP TRIGGER IF EXISTS live_delete ON assistance_measure;
CREATE TRIGGER live_delete AFTER DELETE ON assistance_measure REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_live_cases();
DROP TRIGGER IF EXISTS live_insert ON follow_up_visit;
CREATE TRIGGER live_insert AFTER INSERT ON follow_up_visit REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_live_cases();
DROP TRIGGER IF EXISTS live_update ON follow_up_visit;
CREATE TRIGGER live_update AFTER UPDATE ON follow_up_visit REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_live_cases();
DROP TRIGGER IF EXISTS live_delete ON follow_up_visit;
CREATE TRIGGER live_delete AFTER DELETE ON follow_up_visit REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_live_cases();

-- Number the pending events whose transactions can no longer be overtaken; answers the newest number (0: none yet).
CREATE OR REPLACE FUNCTION anju_live_sequence() RETURNS bigint LANGUAGE plpgsql
        SECURITY DEFINER SET search_path = public AS $$
DECLARE
    horizon xid8;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('anju_live_sequence'));
    horizon := pg_snapshot_xmin(pg_current_snapshot());
    WITH ready AS (DELETE FROM live_pending WHERE xid < horizon RETURNING *),
    -- identical events of one transaction are one (a household written twice by one mutation: its version claimed,
    -- then its fields changed, two statements), numbered at the first of them (migration 0026)
    once AS (
        SELECT DISTINCT ON (xid, topic, operation, source, entity_id, owner, admin_codes, grid_ids) *
        FROM ready ORDER BY xid, topic, operation, source, entity_id, owner, admin_codes, grid_ids, id)
    INSERT INTO live_event (seq, at, topic, operation, source, entity_id, admin_codes, grid_ids, owner)
    SELECT nextval('live_event_seq'), r.at, r.topic, r.operation, r.source, r.entity_id, r.admin_codes, r.grid_ids,
           r.owner
    FROM (SELECT * FROM once ORDER BY xid, id) r;
    RETURN coalesce((SELECT max(seq) FROM live_event), 0);
END $$;

-- The oldest and newest numbers kept (the snapshot of the calling statement), whoever reads: a resume point older
-- than the oldest kept was pruned. Both 0 when nothing was ever numbered.
CREATE OR REPLACE FUNCTION anju_live_bounds(OUT oldest bigint, OUT newest bigint) LANGUAGE sql STABLE
        SECURITY DEFINER SET search_path = public AS $$
    SELECT coalesce(min(seq), 0), coalesce(max(seq), 0) FROM live_event $$;

-- Retention: events older than keep, but never the newest (it marks where the numbering stands). Answers how many.
CREATE OR REPLACE FUNCTION anju_live_prune(keep interval) RETURNS bigint LANGUAGE sql
        SECURITY DEFINER SET search_path = public AS $$
    WITH gone AS (
        DELETE FROM live_event WHERE at < now() - keep AND seq < (SELECT max(seq) FROM live_event) RETURNING 1)
    SELECT count(*) FROM gone $$;

-- Scoped viewers write pending events (through the triggers' owner rights) and read numbered ones under their scope:
-- household topics as the household under those admin codes would be; owned ones (import jobs) are kept to their
-- owner by the reading statement (resolvers/live.py), which also serves admins and planners.
GRANT SELECT ON live_event TO anju_officer, anju_partner, anju_grid_worker;
-- (access_policies.sql grants every sequence's USAGE to the scoped roles; these two are the outbox's)
GRANT USAGE ON SEQUENCE live_event_seq, live_pending_id_seq TO anju_officer, anju_partner, anju_grid_worker;
GRANT EXECUTE ON FUNCTION anju_live_bounds() TO anju_officer, anju_partner, anju_grid_worker;
ALTER TABLE live_event ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS anju_viewer_scope ON live_event;
CREATE POLICY anju_viewer_scope ON live_event FOR SELECT TO anju_officer, anju_partner USING (
    owner IS NOT NULL
    OR ((SELECT current_setting('anju.households', true)) = 'areas'
        AND EXISTS (SELECT 1 FROM unnest(admin_codes) c
                    WHERE left(c, 6) = ANY (CAST((SELECT nullif(current_setting('anju.counties', true), '')::text[]) AS text[]))
                    AND c LIKE ANY (CAST((SELECT nullif(current_setting('anju.patterns', true), '')::text[]) AS text[])))));
-- Grid workers: the events of households (and their cases) in one of their grids, as the grid table says at delivery.
DROP POLICY IF EXISTS anju_grid_worker_scope ON live_event;
CREATE POLICY anju_grid_worker_scope ON live_event FOR SELECT TO anju_grid_worker USING (
    owner IS NOT NULL
    OR ((SELECT current_setting('anju.households', true)) = 'grids'
        AND grid_ids && CAST((SELECT anju_viewer_grids()) AS bigint[])));
