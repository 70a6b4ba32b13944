-- Who sees what: the scoped viewers' roles, grants and row-level-security policies. History:
-- migrations 0007 and 0010 (README "Who sees what", resolvers/access.py).
--
-- County officers and partners run every statement as the NOLOGIN role anju_officer / anju_partner
-- (SET LOCAL ROLE at the start of each transaction, with the viewer's scope in anju.* settings:
-- anju.households = 'areas' | 'none', anju.counties, anju.patterns, anju.partner_id). The policies
-- below confine those roles to the viewer's rows: officers see the households under their area
-- codes and every site and facility, and write the sites and facilities under their area codes;
-- partners see no household record (only, in aggregate transactions, the households of their paired counties), the sites and facilities of their paired
-- counties and their own partner records. A role without a policy on a table with RLS reads no row
-- of it. Admins and planners see every row by definition and keep the login role (RLS would also
-- stop PostgreSQL from using spatial indexes for their filters, because PostGIS operators are not
-- leakproof). Policy quals are security barriers: a viewer's filter is never evaluated over rows
-- it may not see.
--
-- Every qual is a plain conjunction so county_code = ANY(…) / left(admin_code, 6) = ANY(…) can drive
-- an index scan. Each anju.* setting is read once per statement (an InitPlan: the scalar subquery)
-- and is NULL when unset, which matches no row.

-- The roles are cluster-wide and other databases may use them: created once, never dropped here.
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anju_officer') THEN
        CREATE ROLE anju_officer NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anju_partner') THEN
        CREATE ROLE anju_partner NOLOGIN NOINHERIT;
    END IF;
END $$;
GRANT anju_officer TO CURRENT_USER;
GRANT anju_partner TO CURRENT_USER;

-- Existence regardless of the caller's row-level scope (owner rights), so a write outside the
-- viewer's scope is FORBIDDEN, not NOT_FOUND.
CREATE OR REPLACE FUNCTION anju_exists(kind text, key bigint) RETURNS boolean LANGUAGE sql STABLE
        SECURITY DEFINER SET search_path = public AS $$
        SELECT CASE kind
            WHEN 'household' THEN EXISTS (SELECT 1 FROM household WHERE id = key)
            WHEN 'member' THEN EXISTS (SELECT 1 FROM member WHERE id = key)
            WHEN 'employment' THEN EXISTS (SELECT 1 FROM employment WHERE id = key)
            WHEN 'income_linkage' THEN EXISTS (SELECT 1 FROM income_linkage WHERE id = key)
            WHEN 'facility' THEN EXISTS (SELECT 1 FROM facility WHERE id = key)
            WHEN 'relocation_site' THEN EXISTS (SELECT 1 FROM relocation_site WHERE id = key)
            ELSE NULL END $$;

-- Grants: rows go through the policies below; admin areas and site origins are public reference
-- data (officers also record the origins of their own sites); scoped viewers write audit rows but
-- read none (the audit log is for admins, who are not scoped).
GRANT SELECT, INSERT, UPDATE, DELETE ON household, member, employment, income_linkage, household_income,
    household_status, household_residence, relocation_site, facility, cooperation_partner, partner_county, cooperation_project
    TO anju_officer, anju_partner;
GRANT SELECT ON admin_area, site_origin TO anju_officer, anju_partner;
GRANT INSERT, DELETE ON site_origin TO anju_officer;
GRANT INSERT ON audit_log TO anju_officer, anju_partner;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO anju_officer, anju_partner;
GRANT EXECUTE ON FUNCTION anju_exists(text, bigint) TO anju_officer, anju_partner;

-- household: officers and partners alike see the households under the viewer's county codes and
-- area patterns, and only when the transaction is scoped to areas (anju.households = 'areas').
ALTER TABLE household ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS anju_officer_scope ON household;
CREATE POLICY anju_officer_scope ON household TO anju_officer USING (
    (SELECT current_setting('anju.households', true)) = 'areas'
    AND county_code = ANY (CAST((SELECT nullif(current_setting('anju.counties', true), '')::varchar[]) AS varchar[]))
    AND admin_code LIKE ANY (CAST((SELECT nullif(current_setting('anju.patterns', true), '')::text[]) AS text[])));
DROP POLICY IF EXISTS anju_partner_scope ON household;
CREATE POLICY anju_partner_scope ON household TO anju_partner USING (
    (SELECT current_setting('anju.households', true)) = 'areas'
    AND county_code = ANY (CAST((SELECT nullif(current_setting('anju.counties', true), '')::varchar[]) AS varchar[]))
    AND admin_code LIKE ANY (CAST((SELECT nullif(current_setting('anju.patterns', true), '')::text[]) AS text[])));

-- A household's own rows: visible with the household (the household policy applies inside EXISTS).
ALTER TABLE member ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS anju_officer_scope ON member;
CREATE POLICY anju_officer_scope ON member TO anju_officer USING (EXISTS (SELECT 1 FROM household h WHERE h.id = household_id));
DROP POLICY IF EXISTS anju_partner_scope ON member;
CREATE POLICY anju_partner_scope ON member TO anju_partner USING (EXISTS (SELECT 1 FROM household h WHERE h.id = household_id));

ALTER TABLE employment ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS anju_officer_scope ON employment;
CREATE POLICY anju_officer_scope ON employment TO anju_officer USING (EXISTS (SELECT 1 FROM household h WHERE h.id = household_id));
DROP POLICY IF EXISTS anju_partner_scope ON employment;
CREATE POLICY anju_partner_scope ON employment TO anju_partner USING (EXISTS (SELECT 1 FROM household h WHERE h.id = household_id));

ALTER TABLE income_linkage ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS anju_officer_scope ON income_linkage;
CREATE POLICY anju_officer_scope ON income_linkage TO anju_officer
    USING (EXISTS (SELECT 1 FROM household h WHERE h.id = household_id));
DROP POLICY IF EXISTS anju_partner_scope ON income_linkage;
CREATE POLICY anju_partner_scope ON income_linkage TO anju_partner
    USING (EXISTS (SELECT 1 FROM household h WHERE h.id = household_id));

ALTER TABLE household_income ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS anju_officer_scope ON household_income;
CREATE POLICY anju_officer_scope ON household_income TO anju_officer
    USING (EXISTS (SELECT 1 FROM household h WHERE h.id = household_id));
DROP POLICY IF EXISTS anju_partner_scope ON household_income;
CREATE POLICY anju_partner_scope ON household_income TO anju_partner
    USING (EXISTS (SELECT 1 FROM household h WHERE h.id = household_id));

ALTER TABLE household_status ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS anju_officer_scope ON household_status;
CREATE POLICY anju_officer_scope ON household_status TO anju_officer
    USING (EXISTS (SELECT 1 FROM household h WHERE h.id = household_id));
DROP POLICY IF EXISTS anju_partner_scope ON household_status;
CREATE POLICY anju_partner_scope ON household_status TO anju_partner
    USING (EXISTS (SELECT 1 FROM household h WHERE h.id = household_id));

ALTER TABLE household_residence ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS anju_officer_scope ON household_residence;
CREATE POLICY anju_officer_scope ON household_residence TO anju_officer
    USING (EXISTS (SELECT 1 FROM household h WHERE h.id = household_id));
DROP POLICY IF EXISTS anju_partner_scope ON household_residence;
CREATE POLICY anju_partner_scope ON household_residence TO anju_partner
    USING (EXISTS (SELECT 1 FROM household h WHERE h.id = household_id));

-- Places: officers see all public infrastructure (a constant-true qual keeps the spatial indexes
-- usable) but write only the sites and facilities under their own counties' codes and patterns, the
-- predicate households use (a row must be theirs before an update, and stay theirs after it; no
-- policy lets them delete). Partners see the sites and facilities under their paired counties' codes
-- and patterns, and write none.
ALTER TABLE relocation_site ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS anju_officer_scope ON relocation_site;
CREATE POLICY anju_officer_scope ON relocation_site FOR SELECT TO anju_officer USING (true);
DROP POLICY IF EXISTS anju_officer_insert ON relocation_site;
CREATE POLICY anju_officer_insert ON relocation_site FOR INSERT TO anju_officer WITH CHECK (
    left(admin_code, 6) = ANY (CAST((SELECT nullif(current_setting('anju.counties', true), '')::text[]) AS text[]))
    AND admin_code LIKE ANY (CAST((SELECT nullif(current_setting('anju.patterns', true), '')::text[]) AS text[])));
DROP POLICY IF EXISTS anju_officer_update ON relocation_site;
CREATE POLICY anju_officer_update ON relocation_site FOR UPDATE TO anju_officer USING (
    left(admin_code, 6) = ANY (CAST((SELECT nullif(current_setting('anju.counties', true), '')::text[]) AS text[]))
    AND admin_code LIKE ANY (CAST((SELECT nullif(current_setting('anju.patterns', true), '')::text[]) AS text[])))
    WITH CHECK (
    left(admin_code, 6) = ANY (CAST((SELECT nullif(current_setting('anju.counties', true), '')::text[]) AS text[]))
    AND admin_code LIKE ANY (CAST((SELECT nullif(current_setting('anju.patterns', true), '')::text[]) AS text[])));
DROP POLICY IF EXISTS anju_partner_scope ON relocation_site;
CREATE POLICY anju_partner_scope ON relocation_site FOR SELECT TO anju_partner USING (
    left(admin_code, 6) = ANY (CAST((SELECT nullif(current_setting('anju.counties', true), '')::text[]) AS text[]))
    AND admin_code LIKE ANY (CAST((SELECT nullif(current_setting('anju.patterns', true), '')::text[]) AS text[])));

ALTER TABLE facility ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS anju_officer_scope ON facility;
CREATE POLICY anju_officer_scope ON facility FOR SELECT TO anju_officer USING (true);
DROP POLICY IF EXISTS anju_officer_insert ON facility;
CREATE POLICY anju_officer_insert ON facility FOR INSERT TO anju_officer WITH CHECK (
    left(admin_code, 6) = ANY (CAST((SELECT nullif(current_setting('anju.counties', true), '')::text[]) AS text[]))
    AND admin_code LIKE ANY (CAST((SELECT nullif(current_setting('anju.patterns', true), '')::text[]) AS text[])));
DROP POLICY IF EXISTS anju_officer_update ON facility;
CREATE POLICY anju_officer_update ON facility FOR UPDATE TO anju_officer USING (
    left(admin_code, 6) = ANY (CAST((SELECT nullif(current_setting('anju.counties', true), '')::text[]) AS text[]))
    AND admin_code LIKE ANY (CAST((SELECT nullif(current_setting('anju.patterns', true), '')::text[]) AS text[])))
    WITH CHECK (
    left(admin_code, 6) = ANY (CAST((SELECT nullif(current_setting('anju.counties', true), '')::text[]) AS text[]))
    AND admin_code LIKE ANY (CAST((SELECT nullif(current_setting('anju.patterns', true), '')::text[]) AS text[])));
DROP POLICY IF EXISTS anju_partner_scope ON facility;
CREATE POLICY anju_partner_scope ON facility FOR SELECT TO anju_partner USING (
    left(admin_code, 6) = ANY (CAST((SELECT nullif(current_setting('anju.counties', true), '')::text[]) AS text[]))
    AND admin_code LIKE ANY (CAST((SELECT nullif(current_setting('anju.patterns', true), '')::text[]) AS text[])));

-- A site's origin areas: readable by every scoped viewer (public reference data); officers add and
-- remove those of the sites they may write (the site's admin code under their counties and patterns).
ALTER TABLE site_origin ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS anju_officer_scope ON site_origin;
CREATE POLICY anju_officer_scope ON site_origin FOR SELECT TO anju_officer USING (true);
DROP POLICY IF EXISTS anju_partner_scope ON site_origin;
CREATE POLICY anju_partner_scope ON site_origin FOR SELECT TO anju_partner USING (true);
DROP POLICY IF EXISTS anju_officer_insert ON site_origin;
CREATE POLICY anju_officer_insert ON site_origin FOR INSERT TO anju_officer WITH CHECK (EXISTS (
    SELECT 1 FROM relocation_site s WHERE s.id = site_id
    AND left(s.admin_code, 6) = ANY (CAST((SELECT nullif(current_setting('anju.counties', true), '')::text[]) AS text[]))
    AND s.admin_code LIKE ANY (CAST((SELECT nullif(current_setting('anju.patterns', true), '')::text[]) AS text[]))));
DROP POLICY IF EXISTS anju_officer_delete ON site_origin;
CREATE POLICY anju_officer_delete ON site_origin FOR DELETE TO anju_officer USING (EXISTS (
    SELECT 1 FROM relocation_site s WHERE s.id = site_id
    AND left(s.admin_code, 6) = ANY (CAST((SELECT nullif(current_setting('anju.counties', true), '')::text[]) AS text[]))
    AND s.admin_code LIKE ANY (CAST((SELECT nullif(current_setting('anju.patterns', true), '')::text[]) AS text[]))));

-- Partner records: a partner sees its own; officers none.
ALTER TABLE cooperation_partner ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS anju_partner_scope ON cooperation_partner;
CREATE POLICY anju_partner_scope ON cooperation_partner TO anju_partner
    USING (id = (SELECT nullif(current_setting('anju.partner_id', true), '')::bigint));

ALTER TABLE partner_county ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS anju_partner_scope ON partner_county;
CREATE POLICY anju_partner_scope ON partner_county TO anju_partner
    USING (partner_id = (SELECT nullif(current_setting('anju.partner_id', true), '')::bigint));

ALTER TABLE cooperation_project ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS anju_partner_scope ON cooperation_project;
CREATE POLICY anju_partner_scope ON cooperation_project TO anju_partner
    USING (partner_id = (SELECT nullif(current_setting('anju.partner_id', true), '')::bigint));

-- The audit log: scoped viewers insert (their mutations' audit rows); nobody scoped reads.
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS viewer_writes ON audit_log;
CREATE POLICY viewer_writes ON audit_log FOR INSERT TO anju_officer, anju_partner WITH CHECK (true);
