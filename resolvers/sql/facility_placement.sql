-- Facility placement (选址): greedy maximal covering, one statement (resolvers/planning.py).
-- The candidates placeholder is one of the allow-listed fragments in resolvers/planning.py (CANDIDATES): rows
-- (cid, site_id, geom) — a relocation site, a hexagon of a grid over the area, or a point the caller sent —
-- with cid the candidate's rank in a fixed order (site id, grid row/column, order sent). The county placeholder is empty, or, for an
-- area at or below a county, household_status's indexed county predicate (resolvers/planning.py).
--   zero      零就业家庭 on :as_of under the area (household_status: labor force present, no member employed),
--             at their dwelling on :as_of (household_residence); persons = their labor force present (none of whom
--             is employed, so none stably employed).
--   reachers  the candidates (cid 1..) and the facilities of :kind open on :as_of (cid 0).
--   cells     a lon/lat grid of cells of s = :reach / 110,000 degrees (a degree of latitude is at least 110,574 m):
--             each household lies in one cell; each reacher covers the cells of its box, :reach metres north and
--             south (s) and east and west (:reach / (111,000 m × cos of the box's most poleward latitude); a degree
--             of longitude is at least 111,319 m × cos φ), so every household within :reach of it lies in one of
--             its cells (no wrap at ±180°).
--   near      (reacher, household) within :reach metres on the WGS84 ellipsoid (geography ST_DWithin), tested only
--             for households in the reacher's cells: a hash join on the cell, not every reacher against every
--             household (the candidates are computed, so unindexed).
--   eligible  the zero-employment households not near an open facility of :kind; idx numbers them 0..n-1.
--   pairs     (candidate, eligible household) near each other.
--   masks     each candidate's households as a bit string of n bits (set in a copy of n's zero string, made once).
--   picks     the greedy step, :k times at most: the candidate newly covering the most households not yet covered
--             (bit clear in `covered`), ties by persons then cid; covered |= its mask (a scalar subquery on the
--             chosen candidate: joined to masks instead, the planner reran the choice once per candidate). Stops
--             early when no candidate covers a household not yet covered.
WITH RECURSIVE
zero AS MATERIALIZED (
    SELECT st.household_id, st.labor_force AS persons, geography(r.dwelling) AS geog,
           CAST(floor(ST_X(r.dwelling) / (CAST(:reach AS float8) / 110000.0)) AS integer) AS gx,
           CAST(floor(ST_Y(r.dwelling) / (CAST(:reach AS float8) / 110000.0)) AS integer) AS gy
    FROM household_status st
    CROSS JOIN LATERAL (
        SELECT hr.dwelling FROM household_residence hr
        WHERE hr.household_id = st.household_id AND hr.valid_from <= CAST(:as_of AS date)
        ORDER BY hr.valid_from DESC LIMIT 1) r
    WHERE st.valid_from <= CAST(:as_of AS date) AND CAST(:as_of AS date) < st.valid_to
      AND {county}left(st.admin_code, CAST(:plen AS integer)) = CAST(:prefix AS text)
      AND st.labor_force > 0 AND st.employed = 0
      AND r.dwelling IS NOT NULL AND NOT ST_IsEmpty(r.dwelling)
),
cand AS MATERIALIZED ({candidates}),
reachers AS (
    SELECT c.cid, c.geom FROM cand c
    UNION ALL
    SELECT 0, f.location FROM facility f
    WHERE f.kind = CAST(:kind AS facility_kind) AND anju_open_on(f.opened_on, f.closed_on, CAST(:as_of AS date))
      AND f.location IS NOT NULL AND NOT ST_IsEmpty(f.location)
),
cells AS MATERIALIZED (
    SELECT c.cid, geography(c.geom) AS geog, gx, gy
    FROM reachers c
    CROSS JOIN LATERAL (SELECT CAST(:reach AS float8) / 110000.0 AS s) d
    CROSS JOIN LATERAL (SELECT least(180.0, CAST(:reach AS float8)
        / (111000.0 * cos(radians(least(89.0, abs(ST_Y(c.geom)) + d.s))))) AS dlon) w
    CROSS JOIN LATERAL generate_series(CAST(floor((ST_X(c.geom) - w.dlon) / d.s) AS integer),
                                       CAST(floor((ST_X(c.geom) + w.dlon) / d.s) AS integer)) gx
    CROSS JOIN LATERAL generate_series(CAST(floor((ST_Y(c.geom) - d.s) / d.s) AS integer),
                                       CAST(floor((ST_Y(c.geom) + d.s) / d.s) AS integer)) gy
),
near AS MATERIALIZED (
    SELECT c.cid, z.household_id
    FROM cells c JOIN zero z ON z.gx = c.gx AND z.gy = c.gy
    WHERE ST_DWithin(c.geog, z.geog, CAST(:reach AS float8))
),
eligible AS MATERIALIZED (
    SELECT z.household_id, z.persons, CAST(row_number() OVER (ORDER BY z.household_id) - 1 AS integer) AS idx
    FROM zero z
    WHERE NOT EXISTS (SELECT 1 FROM near nr WHERE nr.cid = 0 AND nr.household_id = z.household_id)
),
n AS (SELECT CAST(count(*) AS integer) AS n, CAST(repeat('0', CAST(count(*) AS integer)) AS varbit) AS none FROM eligible),
pairs AS MATERIALIZED (
    SELECT nr.cid, e.idx, e.persons
    FROM near nr JOIN eligible e ON e.household_id = nr.household_id
    WHERE nr.cid > 0
),
masks AS MATERIALIZED (
    SELECT p.cid, bit_or(set_bit((SELECT none FROM n), p.idx, 1)) AS mask
    FROM pairs p GROUP BY p.cid
),
picks AS (
    SELECT 0 AS pick, CAST(NULL AS integer) AS cid, (SELECT none FROM n) AS covered,
           CAST(0 AS bigint) AS households, CAST(0 AS bigint) AS persons
    UNION ALL
    SELECT r.pick + 1, b.cid, r.covered | (SELECT m.mask FROM masks m WHERE m.cid = b.cid), b.households, b.persons
    FROM picks r
    CROSS JOIN LATERAL (
        SELECT p.cid, count(*) AS households, sum(p.persons) AS persons
        FROM pairs p WHERE get_bit(r.covered, p.idx) = 0
        GROUP BY p.cid ORDER BY count(*) DESC, sum(p.persons) DESC, p.cid LIMIT 1) b
    WHERE r.pick < CAST(:k AS integer)
)
SELECT s.eligible_households, s.candidates, x.*
FROM (SELECT (SELECT n FROM n) AS eligible_households, (SELECT count(*) FROM cand) AS candidates) s
LEFT JOIN LATERAL (
    SELECT pk.pick, pk.cid, c.site_id, ST_AsGeoJSON(c.geom, 7) AS point, pk.households, pk.persons,
           sum(pk.households) OVER w AS cumulative_households, sum(pk.persons) OVER w AS cumulative_persons
    FROM picks pk JOIN cand c ON c.cid = pk.cid
    WHERE pk.pick > 0
    WINDOW w AS (ORDER BY pk.pick)) x ON true
ORDER BY x.pick
