-- Employment coverage (就业覆盖) per group of households on date :as_of (API.md "Definitions").
-- {scope} is one of the allow-listed fragments in resolvers/coverage.py; it yields
-- (group_key text, household_id bigint, labor_force_count int) for the groups asked (:keys).
-- The channel_persons / channel_households placeholders are the per-channel columns, one per value of
-- models.EmploymentChannel (the one list of channels), written out by resolvers/coverage.py.
-- household_employment_status holds, per household, the counts valid on every date (a step
-- function kept by triggers, migrations/sql/employment_status.sql), and household.labor_force_count is kept from member
-- rows (migrations/sql/household_counts.sql): one join, one segment per household, no member or employment row read.
--   households                   every household in the group
--   households_with_labor_force  >= 1 member with labor_force
--   households_covered           has labor force and >= 1 member stably employed on :as_of
--   zero_employment              has labor force and no member employed on :as_of
--   employed_persons             distinct members with >= 1 active employment
--   stably_employed_persons      distinct members with >= 1 active stable employment
--   <channel>                    distinct employed members per channel of their active employments
--   households_employed, households_stably_employed, hh_<channel>: the households behind those person
--                                counts (small-cell suppression for partner viewers needs them)
WITH scope AS (
    {scope}
),
status AS (
    SELECT s.group_key, s.labor_force_count > 0 AS has_labor_force, st.*
    FROM scope s
    JOIN household_employment_status st
      ON st.household_id = s.household_id AND st.valid_from <= :as_of AND :as_of < st.valid_to
)
SELECT k.group_key,
       count(st.household_id) AS households,
       count(*) FILTER (WHERE st.has_labor_force) AS households_with_labor_force,
       count(*) FILTER (WHERE st.has_labor_force AND st.stably_employed > 0) AS households_covered,
       count(*) FILTER (WHERE st.has_labor_force AND st.employed = 0) AS zero_employment,
       coalesce(sum(st.employed), 0) AS employed_persons,
       coalesce(sum(st.stably_employed), 0) AS stably_employed_persons,
       {channel_persons}
       count(*) FILTER (WHERE st.employed > 0) AS households_employed,
       count(*) FILTER (WHERE st.stably_employed > 0) AS households_stably_employed,
       {channel_households}
FROM unnest(CAST(:keys AS text[])) AS k(group_key)
LEFT JOIN status st ON st.group_key = k.group_key
GROUP BY k.group_key
