-- Site scorecard (后续扶持: 致富、融入、可持续) of every site in :ids, one row each (resolvers/planning.py).
--   households, with_labor_force, covered     living at the site on :as_of (household_status; covered = labor force
--                                             and >= 1 member stably employed, docs/api.md "Definitions")
--   prev_*                                    the same on :before (a year earlier)
--   per_capita, prev_per_capita               Σ net income ÷ Σ recorded household size of year :year (and :year - 1)
--                                             over the households living at the site at that year's end
--                                             (anju_year_end), with an income and a size recorded; unrounded
--   linked                                    households at the site at :year's end with >= 1 income linkage of :year
--   open_cases                                monitoring cases (监测对象, issue #17) open on :as_of of the households living
--                                             at the site on :as_of (anju_case_open_on, migrations/sql/casework.sql)
--   services                                  per kind of :kinds: the nearest facility open on :as_of (geodesic metres
--                                             from the site's point, exact: KNN candidate, then every facility within its
--                                             distance re-ranked) and the households at the site on :as_of whose dwelling
--                                             lies farther than :dist metres from every open facility of the kind
WITH site AS (
    SELECT s.id, s.location FROM relocation_site s WHERE s.id = ANY(CAST(:ids AS bigint[]))
),
now_ AS (
    SELECT st.site_id, count(*) AS households,
           count(*) FILTER (WHERE st.labor_force > 0) AS with_labor_force,
           count(*) FILTER (WHERE st.labor_force > 0 AND st.stably_employed > 0) AS covered
    FROM household_status st
    WHERE st.site_id = ANY(CAST(:ids AS bigint[])) AND st.valid_from <= CAST(:as_of AS date) AND CAST(:as_of AS date) < st.valid_to
    GROUP BY st.site_id
),
before_ AS (
    SELECT st.site_id, count(*) FILTER (WHERE st.labor_force > 0) AS with_labor_force,
           count(*) FILTER (WHERE st.labor_force > 0 AND st.stably_employed > 0) AS covered
    FROM household_status st
    WHERE st.site_id = ANY(CAST(:ids AS bigint[])) AND st.valid_from <= CAST(:before AS date) AND CAST(:before AS date) < st.valid_to
    GROUP BY st.site_id
),
income AS (
    SELECT st.site_id, y.year, sum(i.net_income) / nullif(sum(i.household_size), 0) AS per_capita
    FROM (VALUES (CAST(:year AS integer)), (CAST(:year AS integer) - 1)) AS y(year)
    JOIN household_status st ON st.site_id = ANY(CAST(:ids AS bigint[]))
         AND st.valid_from <= anju_year_end(y.year) AND anju_year_end(y.year) < st.valid_to
    JOIN household_income i ON i.household_id = st.household_id AND i.year = y.year AND i.household_size > 0
    GROUP BY st.site_id, y.year
),
linked AS (
    SELECT st.site_id, count(*) AS linked
    FROM household_status st
    WHERE st.site_id = ANY(CAST(:ids AS bigint[]))
      AND st.valid_from <= anju_year_end(CAST(:year AS integer)) AND anju_year_end(CAST(:year AS integer)) < st.valid_to
      AND EXISTS (SELECT 1 FROM income_linkage l WHERE l.household_id = st.household_id AND l.year = CAST(:year AS integer))
    GROUP BY st.site_id
),
cases AS (
    SELECT st.site_id, count(*) AS open_cases
    FROM household_status st
    JOIN monitoring_case c ON c.household_id = st.household_id
         AND anju_case_open_on(c.opened_on, c.closed_on, CAST(:as_of AS date))
    WHERE st.site_id = ANY(CAST(:ids AS bigint[])) AND st.valid_from <= CAST(:as_of AS date) AND CAST(:as_of AS date) < st.valid_to
    GROUP BY st.site_id
),
dwelling AS (
    SELECT st.site_id, r.dwelling
    FROM household_status st
    CROSS JOIN LATERAL (
        SELECT hr.dwelling FROM household_residence hr
        WHERE hr.household_id = st.household_id AND hr.valid_from <= CAST(:as_of AS date)
        ORDER BY hr.valid_from DESC LIMIT 1) r
    WHERE st.site_id = ANY(CAST(:ids AS bigint[])) AND st.valid_from <= CAST(:as_of AS date) AND CAST(:as_of AS date) < st.valid_to
      AND r.dwelling IS NOT NULL AND NOT ST_IsEmpty(r.dwelling)
),
services AS (
    SELECT s.id AS site_id, json_agg(json_build_object(
               'kind', kk.kind, 'facility_id', best.id, 'distance_meters', best.distance_meters, 'beyond', far.n)
               ORDER BY kk.kind) AS services
    FROM site s
    CROSS JOIN unnest(CAST(:kinds AS facility_kind[])) AS kk(kind)
    LEFT JOIN LATERAL (
        SELECT ST_Distance(geography(f.location), geography(s.location)) AS r
        FROM facility f WHERE f.kind = kk.kind AND anju_open_on(f.opened_on, f.closed_on, CAST(:as_of AS date))
        ORDER BY f.location <-> s.location LIMIT 1) c ON true
    LEFT JOIN LATERAL (
        SELECT f.id, ST_Distance(geography(f.location), geography(s.location)) AS distance_meters
        FROM facility f
        WHERE f.kind = kk.kind AND anju_open_on(f.opened_on, f.closed_on, CAST(:as_of AS date))
          AND ST_DWithin(geography(f.location), geography(s.location), c.r + 1.0)
        ORDER BY distance_meters, f.id LIMIT 1) best ON true
    CROSS JOIN LATERAL (
        SELECT count(*) AS n FROM dwelling d
        WHERE d.site_id = s.id AND NOT EXISTS (
            SELECT 1 FROM facility f
            WHERE f.kind = kk.kind AND anju_open_on(f.opened_on, f.closed_on, CAST(:as_of AS date))
              AND ST_DWithin(geography(f.location), geography(d.dwelling), CAST(:dist AS float8)))) far
    GROUP BY s.id
)
SELECT s.id AS site_id,
       coalesce(n.households, 0) AS households, coalesce(n.with_labor_force, 0) AS with_labor_force,
       coalesce(n.covered, 0) AS covered,
       coalesce(b.with_labor_force, 0) AS prev_with_labor_force, coalesce(b.covered, 0) AS prev_covered,
       ic.per_capita, ip.per_capita AS prev_per_capita, coalesce(l.linked, 0) AS linked,
       coalesce(oc.open_cases, 0) AS open_cases,
       CAST(sv.services AS text) AS services
FROM site s
LEFT JOIN now_ n ON n.site_id = s.id
LEFT JOIN before_ b ON b.site_id = s.id
LEFT JOIN income ic ON ic.site_id = s.id AND ic.year = CAST(:year AS integer)
LEFT JOIN income ip ON ip.site_id = s.id AND ip.year = CAST(:year AS integer) - 1
LEFT JOIN linked l ON l.site_id = s.id
LEFT JOIN cases oc ON oc.site_id = s.id
LEFT JOIN services sv ON sv.site_id = s.id
ORDER BY s.id
