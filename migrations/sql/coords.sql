-- Chinese basemap coordinate systems for answers (resolvers/coords.py is the same formula in Python, for inputs):
-- storage stays WGS84; a map on AMap/Tencent tiles wants GCJ-02, one on Baidu tiles BD-09. Used by the map layers
-- (featureCollection, vector tiles) so the whole answer is built in PostgreSQL. History: migration 0012.

-- A WGS84 position as GCJ-02 (the published formula; krasovsky 1940 ellipsoid constants). Outside China's box
-- (lon 73.66..135.05, lat 3.86..53.55) the position is unchanged, as in resolvers/coords.py.
CREATE OR REPLACE FUNCTION anju_wgs84_to_gcj02(lng double precision, lat double precision) RETURNS double precision[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    a CONSTANT double precision := 6378245.0;
    ee CONSTANT double precision := 0.00669342162296594323;
    x double precision := lng - 105.0;
    y double precision := lat - 35.0;
    dlat double precision;
    dlng double precision;
    radlat double precision;
    magic double precision;
    sqrtmagic double precision;
BEGIN
    IF NOT (lng > 73.66 AND lng < 135.05 AND lat > 3.86 AND lat < 53.55) THEN
        RETURN ARRAY[lng, lat];
    END IF;
    dlat := -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt(abs(x));
    dlat := dlat + (20.0 * sin(6.0 * x * pi()) + 20.0 * sin(2.0 * x * pi())) * 2.0 / 3.0;
    dlat := dlat + (20.0 * sin(y * pi()) + 40.0 * sin(y / 3.0 * pi())) * 2.0 / 3.0;
    dlat := dlat + (160.0 * sin(y / 12.0 * pi()) + 320.0 * sin(y * pi() / 30.0)) * 2.0 / 3.0;
    dlng := 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt(abs(x));
    dlng := dlng + (20.0 * sin(6.0 * x * pi()) + 20.0 * sin(2.0 * x * pi())) * 2.0 / 3.0;
    dlng := dlng + (20.0 * sin(x * pi()) + 40.0 * sin(x / 3.0 * pi())) * 2.0 / 3.0;
    dlng := dlng + (150.0 * sin(x / 12.0 * pi()) + 300.0 * sin(x / 30.0 * pi())) * 2.0 / 3.0;
    radlat := lat / 180.0 * pi();
    magic := 1 - ee * sin(radlat) * sin(radlat);
    sqrtmagic := sqrt(magic);
    dlat := (dlat * 180.0) / ((a * (1 - ee)) / (magic * sqrtmagic) * pi());
    dlng := (dlng * 180.0) / (a / sqrtmagic * cos(radlat) * pi());
    RETURN ARRAY[lng + dlng, lat + dlat];
END $$;

-- A WGS84 position in ``sys`` ('wgs84', 'gcj02' or 'bd09', resolvers.coords.CoordSys values): BD-09 is GCJ-02
-- rotated and shifted (Baidu's published formula); outside China every system is WGS84.
CREATE OR REPLACE FUNCTION anju_position_from_wgs84(lng double precision, lat double precision, sys text)
RETURNS double precision[] LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    x_pi CONSTANT double precision := pi() * 3000.0 / 180.0;
    g double precision[];
    z double precision;
    theta double precision;
BEGIN
    IF sys = 'wgs84' OR NOT (lng > 73.66 AND lng < 135.05 AND lat > 3.86 AND lat < 53.55) THEN
        RETURN ARRAY[lng, lat];
    END IF;
    g := anju_wgs84_to_gcj02(lng, lat);
    IF sys = 'gcj02' THEN
        RETURN g;
    ELSIF sys = 'bd09' THEN
        z := sqrt(g[1] * g[1] + g[2] * g[2]) + 0.00002 * sin(g[2] * x_pi);
        theta := atan2(g[2], g[1]) + 0.000003 * cos(g[1] * x_pi);
        RETURN ARRAY[z * cos(theta) + 0.0065, z * sin(theta) + 0.006];
    END IF;
    RAISE EXCEPTION 'anju_position_from_wgs84: unknown coordinate system %', sys USING ERRCODE = '22023';
END $$;

-- A stored (WGS84, SRID 4326) geometry with every vertex expressed in ``sys``; same type, same parts, same
-- order (points, lines, polygons with holes, their multi forms and collections). NULL and empty stay as they are.
CREATE OR REPLACE FUNCTION anju_from_wgs84(g geometry, sys text) RETURNS geometry
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    kind text;
    p double precision[];
    shell geometry;
    holes geometry[];
    parts geometry[];
BEGIN
    IF g IS NULL OR sys = 'wgs84' OR ST_IsEmpty(g) THEN
        RETURN g;
    END IF;
    kind := GeometryType(g);
    IF kind = 'POINT' THEN
        p := anju_position_from_wgs84(ST_X(g), ST_Y(g), sys);
        RETURN ST_SetSRID(ST_MakePoint(p[1], p[2]), ST_SRID(g));
    ELSIF kind = 'LINESTRING' THEN
        RETURN ST_SetSRID(ST_MakeLine(ARRAY(
            SELECT anju_from_wgs84(d.geom, sys) FROM ST_DumpPoints(g) d ORDER BY d.path)), ST_SRID(g));
    ELSIF kind = 'POLYGON' THEN
        shell := anju_from_wgs84(ST_ExteriorRing(g), sys);
        holes := ARRAY(SELECT anju_from_wgs84(ST_InteriorRingN(g, i), sys) FROM generate_series(1, ST_NumInteriorRings(g)) i
                       ORDER BY i);
        RETURN ST_SetSRID(ST_MakePolygon(shell, holes), ST_SRID(g));
    END IF;
    -- multi geometries and collections: part by part, then the same kind again
    parts := ARRAY(SELECT anju_from_wgs84(d.geom, sys) FROM ST_Dump(g) d ORDER BY d.path);
    IF kind = 'GEOMETRYCOLLECTION' THEN
        RETURN ST_SetSRID(ST_ForceCollection(ST_Collect(parts)), ST_SRID(g));
    END IF;
    RETURN ST_SetSRID(ST_Multi(ST_Collect(parts)), ST_SRID(g));
END $$;
