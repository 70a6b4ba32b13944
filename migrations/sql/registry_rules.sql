-- Registry rules that a single write and a bulk import both apply, defined once here. History:
-- migration 0013 (the roster import, resolvers/household_import.py).
--
-- anju_area_distance(area, lon, lat): how far (geodesic metres) a point lies from the polygon of the
-- admin area `area`, or of its nearest ancestor that has one (Xide's villages have none: the
-- county's); no row when no area up the chain has a polygon. A registered location (a site's or
-- facility's location, a household's dwelling) must lie within registry.location_tolerance_meters of
-- it: resolvers/admin_areas.py check_near_area asks for one point, the roster import for all its
-- households in one statement (LATERAL). A point inside the polygon is 0 m away without measuring
-- (ST_Intersects, on PostGIS's cached prepared polygon: 3× faster over a roster's thousands of points).
CREATE OR REPLACE FUNCTION anju_area_distance(area text, lon double precision, lat double precision)
        RETURNS TABLE (code text, distance_meters double precision) LANGUAGE sql STABLE AS $$
    WITH RECURSIVE up AS (
        SELECT a.code, a.parent_code, a.geom, 0 AS depth FROM admin_area a WHERE a.code = area
        UNION ALL
        SELECT a.code, a.parent_code, a.geom, up.depth + 1 FROM admin_area a JOIN up ON a.code = up.parent_code
        WHERE up.geom IS NULL
    )
    SELECT up.code::text,
           CASE WHEN ST_Intersects(up.geom, ST_SetSRID(ST_MakePoint(lon, lat), 4326)) THEN 0
                ELSE ST_Distance(up.geom::geography, ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geography) END
    FROM up WHERE up.geom IS NOT NULL ORDER BY up.depth LIMIT 1
$$;

-- Which of `codes` are household codes already recorded, and which of `hashes` ID-number hashes
-- already recorded, whoever may see them (owner rights, like anju_exists): a county officer's import
-- reports a household code or ID number recorded outside its areas instead of failing on the unique
-- index. Answers only what the unique indexes would tell anyway (a CONFLICT), never the rows.
CREATE OR REPLACE FUNCTION anju_recorded_household_codes(codes text[]) RETURNS SETOF text LANGUAGE sql STABLE
        SECURITY DEFINER SET search_path = public AS $$
    SELECT h.code FROM household h WHERE h.code = ANY(codes)
$$;

CREATE OR REPLACE FUNCTION anju_recorded_id_hashes(hashes text[]) RETURNS SETOF text LANGUAGE sql STABLE
        SECURITY DEFINER SET search_path = public AS $$
    SELECT mb.id_number_hash FROM member mb WHERE mb.id_number_hash = ANY(hashes)
$$;

GRANT EXECUTE ON FUNCTION anju_recorded_household_codes(text[]) TO anju_officer;
GRANT EXECUTE ON FUNCTION anju_recorded_id_hashes(text[]) TO anju_officer;

-- Import jobs (POST /imports/households): a county officer's GraphQL transactions run as anju_officer
-- and read its own jobs (resolvers/import_jobs.py job_by_id selects by the viewer's name); the jobs
-- are written by the service itself, never in a scoped transaction.
GRANT SELECT ON import_job TO anju_officer;
-- As access_policies.sql's USAGE on every sequence, for the table this file's revision adds.
GRANT USAGE ON SEQUENCE import_job_id_seq TO anju_officer, anju_partner;
