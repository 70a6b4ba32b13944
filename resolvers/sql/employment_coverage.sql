-- Employment coverage (就业覆盖) per group of households on date :as_of (API.md "Definitions").
-- {scope} is one of the allow-listed fragments in resolvers/coverage.py; it yields
-- (group_key text, household_id bigint, labor_force_count int) for the groups asked (:keys).
-- employment.household_id and household.labor_force_count are kept by triggers (migration 0002),
-- so no member row is read. Every step is a hash join or hash aggregate (no per-row lookups, no
-- sorts for DISTINCT), which keeps a province (~360,000 households) well under a second.
--   households                   every household in the group
--   households_with_labor_force  >= 1 member with labor_force
--   households_covered           has labor force and >= 1 member stably employed on :as_of
--   zero_employment              has labor force and no member employed on :as_of
--   employed_persons             distinct members with >= 1 active employment
--   stably_employed_persons      distinct members with >= 1 active stable employment
--   by_channel                   [{channel, count}]: distinct employed members per channel
WITH scope AS MATERIALIZED (
    {scope}
),
active AS MATERIALIZED (
    SELECT s.group_key, e.household_id, e.member_id, e.channel, e.stable
    FROM employment e
    JOIN scope s ON s.household_id = e.household_id
    WHERE e.start_on <= :as_of AND (e.end_on IS NULL OR e.end_on >= :as_of)
),
per_member AS (
    SELECT group_key, household_id, member_id, bool_or(stable) AS stable
    FROM active GROUP BY group_key, household_id, member_id
),
per_household AS (
    SELECT group_key, household_id, count(*) AS employed, count(*) FILTER (WHERE stable) AS stably_employed
    FROM per_member GROUP BY group_key, household_id
),
totals AS (
    SELECT s.group_key,
           count(*) AS households,
           count(*) FILTER (WHERE s.labor_force_count > 0) AS households_with_labor_force,
           count(*) FILTER (WHERE s.labor_force_count > 0 AND ph.stably_employed > 0) AS households_covered,
           count(*) FILTER (WHERE s.labor_force_count > 0 AND ph.household_id IS NULL) AS zero_employment,
           coalesce(sum(ph.employed), 0) AS employed_persons,
           coalesce(sum(ph.stably_employed), 0) AS stably_employed_persons
    FROM scope s
    LEFT JOIN per_household ph ON ph.group_key = s.group_key AND ph.household_id = s.household_id
    GROUP BY s.group_key
),
channels AS (
    SELECT group_key, json_agg(json_build_object('channel', channel, 'count', n) ORDER BY channel) AS by_channel
    FROM (SELECT group_key, channel, count(*) AS n
          FROM (SELECT DISTINCT group_key, member_id, channel FROM active) d
          GROUP BY group_key, channel) c
    GROUP BY group_key
)
SELECT k.group_key,
       coalesce(t.households, 0) AS households,
       coalesce(t.households_with_labor_force, 0) AS households_with_labor_force,
       coalesce(t.households_covered, 0) AS households_covered,
       coalesce(t.zero_employment, 0) AS zero_employment,
       coalesce(t.employed_persons, 0) AS employed_persons,
       coalesce(t.stably_employed_persons, 0) AS stably_employed_persons,
       coalesce(c.by_channel::text, '[]') AS by_channel
FROM unnest(CAST(:keys AS text[])) AS k(group_key)
LEFT JOIN totals t ON t.group_key = k.group_key
LEFT JOIN channels c ON c.group_key = k.group_key
