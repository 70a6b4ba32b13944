-- Grids and monitoring casework (issue #17): the grid worker's row scope, the scoped viewers' policies on the
-- casework tables, the stage order of a monitoring case, "a case open on D", and cases never deleted. History:
-- migration 0015 (README "Monitoring casework", resolvers/casework.py).
--
-- Grid workers run every statement as the NOLOGIN role anju_grid_worker with anju.households = 'grids' and
-- anju.user_id = their app_user id: they see (and write) the households whose bottom-level grid they are responsible
-- for (grid.worker_user_id), and everything hanging off those households, exactly as county officers see theirs;
-- sites and facilities (public infrastructure) all, writing none.

DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anju_grid_worker') THEN
        CREATE ROLE anju_grid_worker NOLOGIN NOINHERIT;
    END IF;
END $$;
GRANT anju_grid_worker TO CURRENT_USER;

-- The grids of the transaction's grid worker (owner rights: grid rows are read whatever the caller's policies).
CREATE OR REPLACE FUNCTION anju_viewer_grids() RETURNS bigint[] LANGUAGE sql STABLE
        SECURITY DEFINER SET search_path = public AS $$
        SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM grid
        WHERE worker_user_id = nullif(current_setting('anju.user_id', true), '')::bigint
          AND current_setting('anju.households', true) = 'grids' $$;

-- Those grids and every grid above them (a grid worker reads the names of its township and village grids).
CREATE OR REPLACE FUNCTION anju_viewer_grid_tree() RETURNS bigint[] LANGUAGE sql STABLE
        SECURITY DEFINER SET search_path = public AS $$
        WITH RECURSIVE up AS (
            SELECT id, parent_id FROM grid WHERE id = ANY (anju_viewer_grids())
            UNION SELECT g.id, g.parent_id FROM grid g JOIN up ON g.id = up.parent_id)
        SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM up $$;

-- A monitoring case open on d: opened on or before d and not closed by d (closed_on is the first day it is closed).
-- The one definition of an open case (missed monitoring, ledgers, the site scorecard).
CREATE OR REPLACE FUNCTION anju_case_open_on(opened_on date, closed_on date, d date) RETURNS boolean
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT opened_on <= d AND (closed_on IS NULL OR d < closed_on) $$;

-- A case's stage on d: the stage after its last step acted on by d (NULL before its application).
CREATE OR REPLACE FUNCTION anju_case_stage_on(case_id bigint, d date) RETURNS case_stage LANGUAGE sql STABLE AS $$
        SELECT s.stage_after FROM case_step s WHERE s.case_id = $1 AND s.acted_on <= d
        ORDER BY s.acted_on DESC, s.id DESC LIMIT 1 $$;

-- Existence regardless of the caller's row-level scope, for FORBIDDEN vs NOT_FOUND.
CREATE OR REPLACE FUNCTION anju_casework_exists(kind text, key bigint) RETURNS boolean LANGUAGE sql STABLE
        SECURITY DEFINER SET search_path = public AS $$
        SELECT CASE kind
            WHEN 'monitoring_case' THEN EXISTS (SELECT 1 FROM monitoring_case WHERE id = key)
            WHEN 'finding' THEN EXISTS (SELECT 1 FROM finding WHERE id = key)
            WHEN 'inspection' THEN EXISTS (SELECT 1 FROM inspection WHERE id = key)
            WHEN 'grid' THEN EXISTS (SELECT 1 FROM grid WHERE id = key)
            WHEN 'household' THEN EXISTS (SELECT 1 FROM household WHERE id = key)
            ELSE NULL END $$;

-- A user's id and role by name, and a name by id (owner rights: scoped viewers read no app_user row): a grid's worker.
CREATE OR REPLACE FUNCTION anju_user_by_name(user_name text, OUT id bigint, OUT role text) LANGUAGE sql STABLE
        SECURITY DEFINER SET search_path = public AS $$
        SELECT u.id, u.role::text FROM app_user u WHERE u.name = user_name $$;
CREATE OR REPLACE FUNCTION anju_user_name(user_id bigint) RETURNS text LANGUAGE sql STABLE
        SECURITY DEFINER SET search_path = public AS $$
        SELECT u.name FROM app_user u WHERE u.id = user_id $$;

-- No stage skipped: a step's stage must follow the case's current stage in case_transition (its first step is the
-- application). Refusals name the stage refused; the mutation checks the same first and says which stage is next.
CREATE OR REPLACE FUNCTION anju_case_step_in_order() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    current case_stage;
BEGIN
    SELECT c.stage INTO current FROM monitoring_case c WHERE c.id = NEW.case_id;
    IF NEW.stage = 'application' AND NOT EXISTS (SELECT 1 FROM case_step s WHERE s.case_id = NEW.case_id) THEN
        RETURN NEW;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM case_transition t WHERE t.from_stage = current AND t.to_stage = NEW.stage) THEN
        RAISE EXCEPTION 'case %: stage % does not follow %', NEW.case_id, NEW.stage, current
            USING ERRCODE = 'check_violation', CONSTRAINT = 'case_step_in_order';
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS case_step_in_order ON case_step;
CREATE TRIGGER case_step_in_order BEFORE INSERT ON case_step FOR EACH ROW EXECUTE FUNCTION anju_case_step_in_order();

-- Cases, their history and inspection findings are records: never deleted (not even by the owner).
CREATE OR REPLACE FUNCTION anju_never_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are never deleted', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END $$;
DROP TRIGGER IF EXISTS never_deleted ON monitoring_case;
CREATE TRIGGER never_deleted BEFORE DELETE ON monitoring_case FOR EACH ROW EXECUTE FUNCTION anju_never_deleted();
DROP TRIGGER IF EXISTS never_deleted ON case_step;
CREATE TRIGGER never_deleted BEFORE DELETE ON case_step FOR EACH ROW EXECUTE FUNCTION anju_never_deleted();
DROP TRIGGER IF EXISTS never_deleted ON finding;
CREATE TRIGGER never_deleted BEFORE DELETE ON finding FOR EACH ROW EXECUTE FUNCTION anju_never_deleted();

-- Grants. The grid worker: what a county officer has on the household side, sites and facilities read-only.
GRANT SELECT, INSERT, UPDATE, DELETE ON household, member, employment, income_linkage, household_income,
    household_status, household_residence TO anju_grid_worker;
GRANT SELECT ON relocation_site, facility, admin_area, site_origin, cooperation_project TO anju_grid_worker;
GRANT INSERT ON audit_log TO anju_grid_worker;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO anju_officer, anju_partner, anju_grid_worker;
GRANT EXECUTE ON FUNCTION anju_exists(text, bigint), anju_casework_exists(text, bigint), anju_viewer_grids(),
    anju_viewer_grid_tree(), anju_user_by_name(text), anju_user_name(bigint) TO anju_officer, anju_partner, anju_grid_worker;
-- Casework: written by officers and grid workers (scope below), read in aggregate by partners; no DELETE for anyone.
GRANT SELECT, INSERT, UPDATE ON monitoring_case, case_step, assistance_measure, follow_up_visit, guarantee_check,
    hardship_report TO anju_officer, anju_grid_worker;
GRANT SELECT ON monitoring_case, case_step, assistance_measure, follow_up_visit, guarantee_check, hardship_report,
    case_transition TO anju_partner;
GRANT SELECT ON case_transition, grid TO anju_officer, anju_grid_worker;
GRANT INSERT, UPDATE ON grid TO anju_officer;
GRANT SELECT ON inspection, spot_check, finding TO anju_officer;
GRANT UPDATE ON finding TO anju_officer;

-- household: the grid worker's households (its bottom-level grids; the function is read once per statement).
DROP POLICY IF EXISTS anju_grid_worker_scope ON household;
CREATE POLICY anju_grid_worker_scope ON household TO anju_grid_worker USING (
    (SELECT current_setting('anju.households', true)) = 'grids'
    AND grid_id = ANY (CAST((SELECT anju_viewer_grids()) AS bigint[])));
DROP POLICY IF EXISTS anju_grid_worker_scope ON member;
CREATE POLICY anju_grid_worker_scope ON member TO anju_grid_worker
    USING (EXISTS (SELECT 1 FROM household h WHERE h.id = household_id));
DROP POLICY IF EXISTS anju_grid_worker_scope ON employment;
CREATE POLICY anju_grid_worker_scope ON employment TO anju_grid_worker
    USING (EXISTS (SELECT 1 FROM household h WHERE h.id = household_id));
DROP POLICY IF EXISTS anju_grid_worker_scope ON income_linkage;
CREATE POLICY anju_grid_worker_scope ON income_linkage TO anju_grid_worker
    USING (EXISTS (SELECT 1 FROM household h WHERE h.id = household_id));
DROP POLICY IF EXISTS anju_grid_worker_scope ON household_income;
CREATE POLICY anju_grid_worker_scope ON household_income TO anju_grid_worker
    USING (EXISTS (SELECT 1 FROM household h WHERE h.id = household_id));
DROP POLICY IF EXISTS anju_grid_worker_scope ON household_status;
CREATE POLICY anju_grid_worker_scope ON household_status TO anju_grid_worker
    USING (EXISTS (SELECT 1 FROM household h WHERE h.id = household_id));
DROP POLICY IF EXISTS anju_grid_worker_scope ON household_residence;
CREATE POLICY anju_grid_worker_scope ON household_residence TO anju_grid_worker
    USING (EXISTS (SELECT 1 FROM household h WHERE h.id = household_id));
DROP POLICY IF EXISTS anju_grid_worker_scope ON relocation_site;
CREATE POLICY anju_grid_worker_scope ON relocation_site FOR SELECT TO anju_grid_worker USING (true);
DROP POLICY IF EXISTS anju_grid_worker_scope ON facility;
CREATE POLICY anju_grid_worker_scope ON facility FOR SELECT TO anju_grid_worker USING (true);
DROP POLICY IF EXISTS anju_grid_worker_scope ON site_origin;
CREATE POLICY anju_grid_worker_scope ON site_origin FOR SELECT TO anju_grid_worker USING (true);
DROP POLICY IF EXISTS anju_grid_worker_writes ON audit_log;
CREATE POLICY anju_grid_worker_writes ON audit_log FOR INSERT TO anju_grid_worker WITH CHECK (true);

-- Grids: officers read and write the grids of their counties; grid workers read theirs and those above them.
ALTER TABLE grid ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS anju_officer_scope ON grid;
CREATE POLICY anju_officer_scope ON grid TO anju_officer USING (
    county_code = ANY (CAST((SELECT nullif(current_setting('anju.counties', true), '')::text[]) AS text[])));
DROP POLICY IF EXISTS anju_grid_worker_scope ON grid;
CREATE POLICY anju_grid_worker_scope ON grid FOR SELECT TO anju_grid_worker
    USING (id = ANY (CAST((SELECT anju_viewer_grid_tree()) AS bigint[])));

-- A household's casework rows: visible (and writable) with the household, for every scoped role (partners: only
-- in aggregate transactions, where they see their paired counties' households).
ALTER TABLE monitoring_case ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS anju_scoped ON monitoring_case;
CREATE POLICY anju_scoped ON monitoring_case TO anju_officer, anju_partner, anju_grid_worker
    USING (EXISTS (SELECT 1 FROM household h WHERE h.id = household_id));
ALTER TABLE case_step ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS anju_scoped ON case_step;
CREATE POLICY anju_scoped ON case_step TO anju_officer, anju_partner, anju_grid_worker
    USING (EXISTS (SELECT 1 FROM monitoring_case c WHERE c.id = case_id));
ALTER TABLE assistance_measure ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS anju_scoped ON assistance_measure;
CREATE POLICY anju_scoped ON assistance_measure TO anju_officer, anju_partner, anju_grid_worker
    USING (EXISTS (SELECT 1 FROM household h WHERE h.id = household_id));
ALTER TABLE follow_up_visit ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS anju_scoped ON follow_up_visit;
CREATE POLICY anju_scoped ON follow_up_visit TO anju_officer, anju_partner, anju_grid_worker
    USING (EXISTS (SELECT 1 FROM household h WHERE h.id = household_id));
ALTER TABLE guarantee_check ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS anju_scoped ON guarantee_check;
CREATE POLICY anju_scoped ON guarantee_check TO anju_officer, anju_partner, anju_grid_worker
    USING (EXISTS (SELECT 1 FROM household h WHERE h.id = household_id));
ALTER TABLE hardship_report ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS anju_scoped ON hardship_report;
CREATE POLICY anju_scoped ON hardship_report TO anju_officer, anju_partner, anju_grid_worker
    USING (EXISTS (SELECT 1 FROM household h WHERE h.id = household_id));

-- Inspections: the province's (admins'); county officers read their counties' and move their findings on.
ALTER TABLE inspection ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS anju_officer_scope ON inspection;
CREATE POLICY anju_officer_scope ON inspection FOR SELECT TO anju_officer USING (
    county_code = ANY (CAST((SELECT nullif(current_setting('anju.counties', true), '')::text[]) AS text[])));
ALTER TABLE spot_check ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS anju_officer_scope ON spot_check;
CREATE POLICY anju_officer_scope ON spot_check FOR SELECT TO anju_officer
    USING (EXISTS (SELECT 1 FROM inspection i WHERE i.id = inspection_id));
ALTER TABLE finding ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS anju_officer_scope ON finding;
CREATE POLICY anju_officer_scope ON finding TO anju_officer USING (
    county_code = ANY (CAST((SELECT nullif(current_setting('anju.counties', true), '')::varchar[]) AS varchar[])));
