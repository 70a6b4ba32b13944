-- The report's figures, recomputed from rows after the demo seed (see anju/seed.py).
-- :site the Yixin site id, :tea the tea plantation id, :base the training base id, :d the report date.
WITH hh AS (
    SELECT h.id,
           count(m.id) AS size,
           bool_or(m.labor_force) AS has_labor_force,
           bool_or(e.stable) FILTER (WHERE e.id IS NOT NULL) AS has_stable
    FROM household h
    LEFT JOIN member m ON m.household_id = h.id
    LEFT JOIN employment e ON e.member_id = m.id AND e.start_on <= :d AND (e.end_on IS NULL OR e.end_on >= :d)
    WHERE h.site_id = :site
    GROUP BY h.id
)
SELECT
    (SELECT count(*) FROM hh) AS households,
    (SELECT count(*) FROM member m JOIN household h ON h.id = m.household_id WHERE h.site_id = :site) AS population,
    (SELECT count(*) FROM hh WHERE has_labor_force AND NOT coalesce(has_stable, false)) AS uncovered,
    (SELECT count(DISTINCT e.member_id) FROM employment e JOIN member m ON m.id = e.member_id
       JOIN household h ON h.id = m.household_id
     WHERE h.site_id = :site AND e.start_on <= :d AND (e.end_on IS NULL OR e.end_on >= :d)) AS employed,
    (SELECT count(DISTINCT e.member_id) FROM employment e
     WHERE e.facility_id = :base AND e.start_on <= :d AND (e.end_on IS NULL OR e.end_on >= :d)) AS at_base,
    (SELECT count(DISTINCT household_id) FROM income_linkage WHERE facility_id = :tea AND year = 2023) AS tea_2023,
    (SELECT count(DISTINCT household_id) FROM income_linkage WHERE facility_id = :tea AND year = 2024) AS tea_2024
