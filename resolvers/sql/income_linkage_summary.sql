-- Income-linkage summary (利益联结) per group of households for :year: households with ≥ 1
-- linkage, total yuan, and yuan + households per mechanism. {scope} as in employment_coverage.sql.
WITH scope AS (
    {scope}
),
links AS MATERIALIZED (
    SELECT s.group_key, l.household_id, l.mechanism, l.amount
    FROM scope s JOIN income_linkage l ON l.household_id = s.household_id
    WHERE l.year = :year
),
mech AS (
    SELECT group_key,
           json_agg(json_build_object('mechanism', mechanism, 'amount', amount, 'households', households)
                    ORDER BY mechanism) AS by_mechanism
    FROM (SELECT group_key, mechanism, sum(amount) AS amount, count(DISTINCT household_id) AS households
          FROM links GROUP BY group_key, mechanism) x
    GROUP BY group_key
),
totals AS (
    SELECT group_key, count(DISTINCT household_id) AS households_linked, sum(amount) AS total
    FROM links GROUP BY group_key
)
SELECT k.group_key,
       coalesce(t.households_linked, 0) AS households_linked,
       coalesce(t.total, 0) AS total,
       coalesce(mech.by_mechanism::text, '[]') AS by_mechanism
FROM unnest(CAST(:keys AS text[])) AS k(group_key)
LEFT JOIN totals t ON t.group_key = k.group_key
LEFT JOIN mech ON mech.group_key = k.group_key
