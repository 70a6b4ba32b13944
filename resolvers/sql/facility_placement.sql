-- Facility placement (选址): greedy maximal covering, one statement (resolvers/planning.py).
-- The candidates placeholder is one of the allow-listed fragments in resolvers/planning.py (CANDIDATES): rows
-- (cid, site_id, geom) — a relocation site, a hexagon of a grid over the area, or a point the caller sent —
-- with cid the candidate's rank in a fixed order (site id, grid row/column, order sent). The county placeholder is empty, or, for an
-- area at or below a county, household_status's indexed county predicate (resolvers/planning.py).
--   eligible  零就业家庭 on :as_of under the area (household_status: labor force present, no member employed),
--             at their dwelling on :as_of (household_residence), not within :reach metres (geodesic) of any
--             facility of :kind open on :as_of; idx numbers them 0..n-1; persons = their labor force present
--             (none of whom is employed, so none stably employed).
--   pairs     (candidate, household) within :reach metres on the WGS84 ellipsoid (geography ST_DWithin).
--   masks     each candidate's households as a bit string of n bits.
--   picks     the greedy step, :k times at most: the candidate newly covering the most households not yet covered
--             (bit clear in `covered`), ties by persons then cid; covered |= its mask. Stops early when no
--             candidate covers a household not yet covered.
WITH RECURSIVE
eligible AS MATERIALIZED (
    SELECT st.household_id, st.labor_force AS persons, r.dwelling,
           CAST(row_number() OVER (ORDER BY st.household_id) - 1 AS integer) AS idx
    FROM household_status st
    CROSS JOIN LATERAL (
        SELECT hr.dwelling FROM household_residence hr
        WHERE hr.household_id = st.household_id AND hr.valid_from <= CAST(:as_of AS date)
        ORDER BY hr.valid_from DESC LIMIT 1) r
    WHERE st.valid_from <= CAST(:as_of AS date) AND CAST(:as_of AS date) < st.valid_to
      AND {county}left(st.admin_code, CAST(:plen AS integer)) = CAST(:prefix AS text)
      AND st.labor_force > 0 AND st.employed = 0
      AND r.dwelling IS NOT NULL AND NOT ST_IsEmpty(r.dwelling)
      AND NOT EXISTS (
          SELECT 1 FROM facility f
          WHERE f.kind = CAST(:kind AS facility_kind) AND anju_open_on(f.opened_on, f.closed_on, CAST(:as_of AS date))
            AND ST_DWithin(geography(f.location), geography(r.dwelling), CAST(:reach AS float8)))
),
n AS (SELECT CAST(count(*) AS integer) AS n FROM eligible),
cand AS MATERIALIZED ({candidates}),
pairs AS MATERIALIZED (
    SELECT c.cid, e.idx, e.persons
    FROM cand c JOIN eligible e ON ST_DWithin(geography(c.geom), geography(e.dwelling), CAST(:reach AS float8))
),
masks AS MATERIALIZED (
    SELECT p.cid, bit_or(set_bit(CAST(repeat('0', n.n) AS varbit), p.idx, 1)) AS mask
    FROM pairs p CROSS JOIN n GROUP BY p.cid, n.n
),
picks AS (
    SELECT 0 AS pick, CAST(NULL AS integer) AS cid, CAST(repeat('0', (SELECT n FROM n)) AS varbit) AS covered,
           CAST(0 AS bigint) AS households, CAST(0 AS bigint) AS persons
    UNION ALL
    SELECT r.pick + 1, b.cid, r.covered | mk.mask, b.households, b.persons
    FROM picks r
    CROSS JOIN LATERAL (
        SELECT p.cid, count(*) AS households, sum(p.persons) AS persons
        FROM pairs p WHERE get_bit(r.covered, p.idx) = 0
        GROUP BY p.cid ORDER BY count(*) DESC, sum(p.persons) DESC, p.cid LIMIT 1) b
    JOIN masks mk ON mk.cid = b.cid
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
