-- Share of trainees in stable employment N months after their training (精培 outcomes), for N in :months
-- (resolvers/training.py). Counted: completed training records whose end + N months is on or before :as_of; stable:
-- the member has a stable employment active on that day (end + N months). Households as in trainees.sql.
SELECT mo.months,
       count(r.id) AS trainees,
       count(r.id) FILTER (WHERE EXISTS (
           SELECT 1 FROM employment e WHERE e.member_id = r.member_id AND e.stable
             AND e.start_on <= CAST(r.ended_on + make_interval(months => mo.months) AS date)
             AND (e.end_on IS NULL OR e.end_on >= CAST(r.ended_on + make_interval(months => mo.months) AS date))))
           AS stably_employed
FROM unnest(CAST(:months AS integer[])) AS mo(months)
LEFT JOIN (training_record r JOIN household h ON h.id = r.household_id AND (CAST(:prefix AS text) IS NULL OR h.admin_code LIKE CAST(:prefix AS text) || '%')
      AND (CAST(:site AS bigint) IS NULL OR h.site_id = CAST(:site AS bigint)))
       ON r.completed AND CAST(r.ended_on + make_interval(months => mo.months) AS date) <= CAST(:as_of AS date)
GROUP BY mo.months
ORDER BY mo.months
