-- located_code: the code of the most specific admin area whose polygon contains a site, facility or
-- household point (null outside every polygon). History: migration 0006.
--
-- ``areaCode`` filters match rows by their admin code *or* by lying inside the area's polygon.
-- Testing every candidate point against a county polygon (hundreds of vertices) costs ~70 ms per
-- request at Sichuan scale; instead each point carries located_code, kept by a BEFORE trigger on
-- the point column and recomputed for all rows when admin polygons change. Then "inside the area's
-- polygon" is ``located_code LIKE '<prefix>%'``, an index lookup.

CREATE OR REPLACE FUNCTION anju_locate(g geometry) RETURNS varchar LANGUAGE sql STABLE AS $$
    SELECT code FROM admin_area WHERE geom IS NOT NULL AND g IS NOT NULL AND ST_Intersects(geom, g)
    ORDER BY ST_Area(geom), code LIMIT 1  -- the smallest polygon: the most specific area
$$;

CREATE OR REPLACE FUNCTION anju_locate_relocation_site() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.located_code := anju_locate(NEW.location);
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS relocation_site_locate ON relocation_site;
CREATE TRIGGER relocation_site_locate BEFORE INSERT OR UPDATE OF location ON relocation_site
    FOR EACH ROW EXECUTE FUNCTION anju_locate_relocation_site();

CREATE OR REPLACE FUNCTION anju_locate_facility() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.located_code := anju_locate(NEW.location);
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS facility_locate ON facility;
CREATE TRIGGER facility_locate BEFORE INSERT OR UPDATE OF location ON facility
    FOR EACH ROW EXECUTE FUNCTION anju_locate_facility();

CREATE OR REPLACE FUNCTION anju_locate_household() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.located_code := anju_locate(NEW.dwelling);
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS household_locate ON household;
CREATE TRIGGER household_locate BEFORE INSERT OR UPDATE OF dwelling ON household
    FOR EACH ROW EXECUTE FUNCTION anju_locate_household();

-- Admin polygons changed: every point is located again.
CREATE OR REPLACE FUNCTION anju_relocate_all() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE relocation_site SET located_code = anju_locate(location);
    UPDATE facility SET located_code = anju_locate(location);
    UPDATE household SET located_code = anju_locate(dwelling)
        WHERE located_code IS DISTINCT FROM anju_locate(dwelling);
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS admin_area_relocate ON admin_area;
CREATE TRIGGER admin_area_relocate AFTER INSERT OR DELETE OR UPDATE OF geom ON admin_area
    FOR EACH STATEMENT EXECUTE FUNCTION anju_relocate_all();
