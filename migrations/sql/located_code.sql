-- located_code: the code of the most specific admin area whose polygon contains a site, facility or
-- household point (null outside every polygon). History: migration 0006.
--
-- ``areaCode`` filters match rows by their admin code *or* by lying inside the area's polygon.
-- Testing every candidate point against a county polygon (hundreds of vertices) costs ~70 ms per
-- request at Sichuan scale; instead each point carries located_code, kept by a BEFORE trigger on
-- the point column and recomputed for all rows when admin polygons change. Then "inside the area's
-- polygon" is ``located_code LIKE '<prefix>%'``, an index lookup.

--
-- anju_locate_each(points): the one rule, for a set of points in one spatial join (the i-th point's code; points
-- outside every polygon and null points have no row). The polygons are the outer loop (each one's area computed once),
-- the points the inner: PostGIS then tests one polygon against point after point and keeps it prepared between tests.
-- A per-point lookup instead (anju_locate per row: a trigger, a LATERAL subquery) re-reads and re-prepares its polygons
-- for every point: 36,000 dwellings took 6–8 s that way, 0.2 s here (a roster import, migration 0022).
-- anju_locate(g) is the same rule for one point (the triggers of single writes).
CREATE OR REPLACE FUNCTION anju_locate_each(points geometry[]) RETURNS TABLE (i bigint, code varchar)
        LANGUAGE sql STABLE AS $$
    SELECT DISTINCT ON (p.i) p.i, a.code
    FROM (SELECT code, geom, ST_Area(geom) AS area FROM admin_area WHERE geom IS NOT NULL OFFSET 0) a
    CROSS JOIN LATERAL (SELECT p.i FROM unnest(points) WITH ORDINALITY p(g, i)
                        WHERE p.g IS NOT NULL AND ST_Intersects(a.geom, p.g) OFFSET 0) p
    ORDER BY p.i, a.area, a.code  -- the smallest polygon: the most specific area
$$;

CREATE OR REPLACE FUNCTION anju_locate(g geometry) RETURNS varchar LANGUAGE sql STABLE AS $$
    SELECT code FROM anju_locate_each(ARRAY[g])
$$;

-- A bulk write that located its points itself with anju_locate_each (the roster import: SET LOCAL anju.located =
-- 'given' around its INSERT of households) keeps the located_code it wrote; every other write is located here.
CREATE OR REPLACE FUNCTION anju_located_given() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('anju.located', true), '') = 'given'
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
    IF TG_OP = 'INSERT' AND anju_located_given() THEN
        RETURN NEW;
    END IF;
    NEW.located_code := anju_locate(NEW.dwelling);
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS household_locate ON household;
CREATE TRIGGER household_locate BEFORE INSERT OR UPDATE OF dwelling ON household
    FOR EACH ROW EXECUTE FUNCTION anju_locate_household();

-- Admin polygons changed: every point is located again.
CREATE OR REPLACE FUNCTION anju_relocate_all() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE relocation_site t SET located_code = l.code
      FROM (SELECT s.id, e.code FROM (SELECT id, row_number() OVER (ORDER BY id) AS i FROM relocation_site) s
            LEFT JOIN anju_locate_each(ARRAY(SELECT location FROM relocation_site ORDER BY id)) e ON e.i = s.i) l
     WHERE t.id = l.id AND t.located_code IS DISTINCT FROM l.code;
    UPDATE facility t SET located_code = l.code
      FROM (SELECT f.id, e.code FROM (SELECT id, row_number() OVER (ORDER BY id) AS i FROM facility) f
            LEFT JOIN anju_locate_each(ARRAY(SELECT location FROM facility ORDER BY id)) e ON e.i = f.i) l
     WHERE t.id = l.id AND t.located_code IS DISTINCT FROM l.code;
    UPDATE household t SET located_code = l.code
      FROM (SELECT h.id, e.code FROM (SELECT id, row_number() OVER (ORDER BY id) AS i FROM household) h
            LEFT JOIN anju_locate_each(ARRAY(SELECT dwelling FROM household ORDER BY id)) e ON e.i = h.i) l
     WHERE t.id = l.id AND t.located_code IS DISTINCT FROM l.code;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS admin_area_relocate ON admin_area;
CREATE TRIGGER admin_area_relocate AFTER INSERT OR DELETE OR UPDATE OF geom ON admin_area
    FOR EACH STATEMENT EXECUTE FUNCTION anju_relocate_all();
