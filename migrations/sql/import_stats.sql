-- anju_analyze_registry(): ANALYZE household and member with their owner's rights. History: migration 0027.
--
-- A roster import that inserted many households (resolvers/household_import.py, 1,000 or more) calls it inside its
-- transaction before reading them back for the audit rows: with the statistics of before the import PostgreSQL expected
-- one new household and nested-looped each over the members' aggregate (a 60,000-household import ran over 9 minutes).
-- ANALYZE is the tables' owner's: under a county officer's role PostgreSQL skipped it with a warning only. The function
-- takes no argument and analyses these two tables only.
CREATE OR REPLACE FUNCTION anju_analyze_registry() RETURNS void LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = public AS $$
    BEGIN
        ANALYZE household, member;
    END $$;

REVOKE ALL ON FUNCTION anju_analyze_registry() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION anju_analyze_registry() TO anju_officer;
