-- Employment coverage (就业覆盖) per group of households on date :as_of (docs/api.md "Definitions").
-- {scope} is one of the allow-listed fragments in resolvers/coverage.py: the household_status
-- segment of every household that lived in one of the groups asked (:keys) on :as_of, with its
-- group_key. household_status holds, per household, where it lived, the members present and their
-- employment counts valid on every date (a step function kept by triggers,
-- migrations/sql/household_status.sql): one segment per household, no member or employment row read.
-- The channel_persons / channel_households placeholders are the per-channel columns, one per value of
-- models.EmploymentChannel (the one list of channels), written out by resolvers/coverage.py.
--   households                   every household living in the group on :as_of
--   households_with_labor_force  >= 1 member present with labor_force
--   households_covered           has labor force and >= 1 member stably employed on :as_of
--   zero_employment              has labor force and no member employed on :as_of
--   employed_persons             distinct members present with >= 1 active employment
--   stably_employed_persons      distinct members present with >= 1 active stable employment
--   <channel>                    distinct employed members per channel of their active employments
--   households_employed, households_stably_employed, hh_<channel>: the households behind those person
--                                counts (small-cell suppression for partner viewers needs them)
WITH status AS (
    SELECT s.*, s.labor_force > 0 AS has_labor_force FROM ({scope}) s
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
