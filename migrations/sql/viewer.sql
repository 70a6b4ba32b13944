-- Whether a viewer held in a server's memory still describes its user row: enabled, same role, area codes and
-- partner. The one definition, used by resolvers/access.py ScopeCheck (the statement that applies a viewer's scope)
-- and by the fast read path's one-message reads (anju/db.py ReadPool: the planned statement gated by it). History:
-- migration 0024.
--
-- Owner rights: the scoped roles cannot read app_user. PL/pgSQL, not SQL: a SQL function that cannot be inlined
-- (owner rights) plans its query at every call (≈ 0.3 ms a read, pgbench), PL/pgSQL keeps the plan (≈ 0.07 ms).
CREATE OR REPLACE FUNCTION anju_viewer_holds(user_name text, user_role text, user_area_codes text[], user_partner_id bigint)
        RETURNS boolean LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public AS $$
    BEGIN
        RETURN EXISTS (SELECT 1 FROM app_user u WHERE u.name = user_name AND NOT u.disabled AND u.role::text = user_role
            AND coalesce(u.area_codes, '{}')::text[] = user_area_codes AND u.partner_id IS NOT DISTINCT FROM user_partner_id);
    END $$;

GRANT EXECUTE ON FUNCTION anju_viewer_holds(text, text, text[], bigint) TO anju_officer, anju_partner, anju_grid_worker;
