-- Planning (issue #15, migration 0018): who sees and writes plan targets, training records and follow-up visits.
-- The same scoped roles and anju.* settings as access_policies.sql (read that file's header first).
--
-- plan_target: officers read every target (plans are public within the service, as sites and facilities are) and
-- write the area targets under their counties and patterns and the facility targets of the facilities they may
-- write; never project targets (cooperation projects are the partners' and admins'). Partners read the targets of
-- their own projects and the county targets of their paired counties, and write none.
-- training_record, training_follow_up: a household's own rows, visible and writable with the household (as employment).

GRANT SELECT, INSERT, UPDATE, DELETE ON plan_target, training_record, training_follow_up TO anju_officer, anju_partner;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO anju_officer, anju_partner, anju_grid_worker;

ALTER TABLE plan_target ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS anju_officer_scope ON plan_target;
CREATE POLICY anju_officer_scope ON plan_target FOR SELECT TO anju_officer USING (true);
DROP POLICY IF EXISTS anju_officer_write ON plan_target;
CREATE POLICY anju_officer_write ON plan_target FOR ALL TO anju_officer USING (
    county_code = ANY (CAST((SELECT nullif(current_setting('anju.counties', true), '')::text[]) AS text[]))
    AND ((subject = 'area'
          AND admin_code LIKE ANY (CAST((SELECT nullif(current_setting('anju.patterns', true), '')::text[]) AS text[])))
      OR (subject = 'facility' AND EXISTS (SELECT 1 FROM facility f WHERE f.id = facility_id
          AND f.admin_code LIKE ANY (CAST((SELECT nullif(current_setting('anju.patterns', true), '')::text[]) AS text[]))))))
    WITH CHECK (
    county_code = ANY (CAST((SELECT nullif(current_setting('anju.counties', true), '')::text[]) AS text[]))
    AND ((subject = 'area'
          AND admin_code LIKE ANY (CAST((SELECT nullif(current_setting('anju.patterns', true), '')::text[]) AS text[])))
      OR (subject = 'facility' AND EXISTS (SELECT 1 FROM facility f WHERE f.id = facility_id
          AND f.admin_code LIKE ANY (CAST((SELECT nullif(current_setting('anju.patterns', true), '')::text[]) AS text[]))))));
DROP POLICY IF EXISTS anju_partner_scope ON plan_target;
CREATE POLICY anju_partner_scope ON plan_target FOR SELECT TO anju_partner USING (
    (subject = 'project' AND EXISTS (SELECT 1 FROM cooperation_project p WHERE p.id = project_id))
    OR (subject = 'area'
        AND admin_code = ANY (CAST((SELECT nullif(current_setting('anju.counties', true), '')::text[]) AS text[]))));

ALTER TABLE training_record ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS anju_officer_scope ON training_record;
CREATE POLICY anju_officer_scope ON training_record TO anju_officer
    USING (EXISTS (SELECT 1 FROM household h WHERE h.id = household_id));
DROP POLICY IF EXISTS anju_partner_scope ON training_record;
CREATE POLICY anju_partner_scope ON training_record TO anju_partner
    USING (EXISTS (SELECT 1 FROM household h WHERE h.id = household_id));

ALTER TABLE training_follow_up ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS anju_officer_scope ON training_follow_up;
CREATE POLICY anju_officer_scope ON training_follow_up TO anju_officer
    USING (EXISTS (SELECT 1 FROM household h WHERE h.id = household_id));
DROP POLICY IF EXISTS anju_partner_scope ON training_follow_up;
CREATE POLICY anju_partner_scope ON training_follow_up TO anju_partner
    USING (EXISTS (SELECT 1 FROM household h WHERE h.id = household_id));
