-- Actuals of plan targets (目标任务 against 完成情况), computed from rows (resolvers/targets.py); never stored.
-- Input: :ids (plan_target ids), :prefixes (each area target's admin-code prefix, resolvers.query.area_code_prefix;
-- NULL for other subjects), :as_of (the date of every dated figure).
-- Per row: actual (NULL when the subject has nothing to measure it by) and basis, the households behind the figure
-- (what small-cell suppression of partner viewers tests).
--   area     persons_employed       members present on :as_of employed then, in 脱贫户 under the area (household_status)
--            coverage_rate          covered ÷ with labor force on :as_of (docs/api.md "Definitions")
--            households_linked      households under the area at the target year's end (anju_year_end) with >= 1
--                                   income linkage of that year
--            average_linked_income  their linkage yuan of the year ÷ their number
--   facility households_linked      distinct households with an income linkage from the facility in the year
--            yuan_per_household     its linkage yuan of the year ÷ those households
--            jobs                   distinct members with an employment at the facility active on :as_of
--   project  households_benefited   the project's facility: households linked to it in the year; without a facility,
--                                   its site: households living there at the year's end with a linkage of the year
--            jobs                   the project's facility's jobs on :as_of (NULL without a facility)
WITH k AS (
    SELECT t.*, x.prefix
    FROM unnest(CAST(:ids AS bigint[]), CAST(:prefixes AS text[])) AS x(id, prefix)
    JOIN plan_target t ON t.id = x.id
),
area_status AS (
    SELECT k.id, st.*, h.poverty_status
    FROM k
    JOIN household_status st ON left(st.admin_code, length(k.prefix)) = k.prefix
         AND st.valid_from <= CAST(:as_of AS date) AND CAST(:as_of AS date) < st.valid_to
    JOIN household h ON h.id = st.household_id
    WHERE k.subject = 'area' AND k.metric IN ('persons_employed', 'coverage_rate')
),
area_now AS (
    SELECT id,
           sum(employed) FILTER (WHERE poverty_status = 'poverty_alleviated') AS persons,
           count(*) FILTER (WHERE poverty_status = 'poverty_alleviated' AND employed > 0) AS persons_households,
           count(*) FILTER (WHERE labor_force > 0) AS with_lf,
           count(*) FILTER (WHERE labor_force > 0 AND stably_employed > 0) AS covered
    FROM area_status GROUP BY id
),
area_linked AS (
    SELECT k.id, count(DISTINCT l.household_id) AS households, sum(l.amount) AS amount
    FROM k
    JOIN household_status st ON left(st.admin_code, length(k.prefix)) = k.prefix
         AND st.valid_from <= anju_year_end(k.year) AND anju_year_end(k.year) < st.valid_to
    JOIN income_linkage l ON l.household_id = st.household_id AND l.year = k.year
    WHERE k.subject = 'area' AND k.metric IN ('households_linked', 'average_linked_income')
    GROUP BY k.id
),
facility_of AS (
    SELECT k.id, coalesce(k.facility_id, p.facility_id) AS facility_id, p.site_id AS project_site, k.year
    FROM k LEFT JOIN cooperation_project p ON p.id = k.project_id
    WHERE k.subject IN ('facility', 'project')
),
linked AS (
    SELECT f.id, count(DISTINCT l.household_id) AS households, sum(l.amount) AS amount
    FROM facility_of f JOIN income_linkage l ON l.facility_id = f.facility_id AND l.year = f.year
    GROUP BY f.id
),
site_linked AS (
    SELECT f.id, count(*) AS households
    FROM facility_of f
    JOIN household_status st ON st.site_id = f.project_site
         AND st.valid_from <= anju_year_end(f.year) AND anju_year_end(f.year) < st.valid_to
    WHERE f.facility_id IS NULL
      AND EXISTS (SELECT 1 FROM income_linkage l WHERE l.household_id = st.household_id AND l.year = f.year)
    GROUP BY f.id
),
jobs AS (
    SELECT f.id, count(DISTINCT e.member_id) AS persons, count(DISTINCT e.household_id) AS households
    FROM facility_of f JOIN employment e ON e.facility_id = f.facility_id
    WHERE e.start_on <= CAST(:as_of AS date) AND (e.end_on IS NULL OR e.end_on >= CAST(:as_of AS date))
    GROUP BY f.id
)
SELECT k.id,
       CASE
           WHEN k.subject = 'area' AND k.metric = 'persons_employed' THEN coalesce(an.persons, 0)
           WHEN k.subject = 'area' AND k.metric = 'coverage_rate' THEN CAST(an.covered AS numeric) / nullif(an.with_lf, 0)
           WHEN k.subject = 'area' AND k.metric = 'households_linked' THEN coalesce(al.households, 0)
           WHEN k.subject = 'area' AND k.metric = 'average_linked_income' THEN al.amount / nullif(al.households, 0)
           WHEN k.subject = 'facility' AND k.metric = 'households_linked' THEN coalesce(li.households, 0)
           WHEN k.subject = 'facility' AND k.metric = 'yuan_per_household' THEN li.amount / nullif(li.households, 0)
           WHEN k.metric = 'jobs' AND fo.facility_id IS NOT NULL THEN coalesce(j.persons, 0)
           WHEN k.subject = 'project' AND k.metric = 'households_benefited' AND fo.facility_id IS NOT NULL
               THEN coalesce(li.households, 0)
           WHEN k.subject = 'project' AND k.metric = 'households_benefited' AND fo.project_site IS NOT NULL
               THEN coalesce(sl.households, 0)
       END AS actual,
       CASE
           WHEN k.subject = 'area' AND k.metric = 'persons_employed' THEN coalesce(an.persons_households, 0)
           WHEN k.subject = 'area' AND k.metric = 'coverage_rate' THEN coalesce(an.with_lf, 0)
           WHEN k.subject = 'area' THEN coalesce(al.households, 0)
           WHEN k.metric = 'jobs' THEN coalesce(j.households, 0)
           WHEN fo.facility_id IS NOT NULL THEN coalesce(li.households, 0)
           ELSE coalesce(sl.households, 0)
       END AS basis
FROM k
LEFT JOIN area_now an ON an.id = k.id
LEFT JOIN area_linked al ON al.id = k.id
LEFT JOIN facility_of fo ON fo.id = k.id
LEFT JOIN linked li ON li.id = k.id
LEFT JOIN site_linked sl ON sl.id = k.id
LEFT JOIN jobs j ON j.id = k.id
