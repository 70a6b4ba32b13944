-- Trainees (精培) on :as_of, one row per training record started by then (resolvers/training.py pages it by id).
-- Households under :prefix (an admin-code prefix) and/or living at site :site (each NULL: any).
--   placed_on       the first employment of the member starting on or after the training's start, by :as_of
--   employed_now    the member has an employment active on :as_of
--   last_visit      the latest follow-up visit of the training by :as_of
--   follow_up_until placed_on + :years years (精培计划: a trainee placed in work is followed at least three years)
--   next_visit_due  while :as_of < follow_up_until: (last visit, else placed_on) + :interval days; else NULL
WITH t AS (
    SELECT r.*, h.admin_code
    FROM training_record r JOIN household h ON h.id = r.household_id
    WHERE r.started_on <= CAST(:as_of AS date) AND (CAST(:prefix AS text) IS NULL OR h.admin_code LIKE CAST(:prefix AS text) || '%')
      AND (CAST(:site AS bigint) IS NULL OR h.site_id = CAST(:site AS bigint))
),
p AS (
    SELECT t.*,
           (SELECT min(e.start_on) FROM employment e WHERE e.member_id = t.member_id AND e.start_on >= t.started_on
              AND e.start_on <= CAST(:as_of AS date)) AS placed_on,
           EXISTS (SELECT 1 FROM employment e WHERE e.member_id = t.member_id AND e.start_on <= CAST(:as_of AS date)
              AND (e.end_on IS NULL OR e.end_on >= CAST(:as_of AS date))) AS employed_now,
           (SELECT max(v.visited_on) FROM training_follow_up v WHERE v.training_id = t.id
              AND v.visited_on <= CAST(:as_of AS date)) AS last_visit
    FROM t
),
d AS (
    SELECT p.*, CAST(p.placed_on + make_interval(years => CAST(:years AS integer)) AS date) AS follow_up_until
    FROM p
),
s AS (
    SELECT d.*,
           CASE WHEN d.placed_on IS NOT NULL AND CAST(:as_of AS date) < d.follow_up_until
                THEN coalesce(d.last_visit, d.placed_on) + CAST(:interval AS integer) END AS next_visit_due
    FROM d
)
SELECT s.id, s.member_id, s.household_id, s.course, s.provider_facility_id, s.provider_name, s.started_on, s.ended_on,
       s.completed, s.certificate, s.version, s.placed_on, s.employed_now, s.last_visit, s.follow_up_until,
       s.next_visit_due
FROM s
WHERE CASE CAST(:status AS text)
          WHEN 'not_employed' THEN s.completed AND s.ended_on <= CAST(:as_of AS date) AND NOT s.employed_now
          WHEN 'follow_up_due' THEN s.next_visit_due BETWEEN CAST(:as_of AS date) AND CAST(:as_of AS date) + CAST(:due_within AS integer)
          WHEN 'follow_up_overdue' THEN s.next_visit_due < CAST(:as_of AS date)
          ELSE true END
