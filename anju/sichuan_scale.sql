-- Sichuan-scale benchmark dataset [generated], built by PostGIS in one transaction.
-- Parameters (psql-style names, bound by anju/seed.py): :seed (0..1), :sites, :households, :facilities.
-- Everything lies inside Liangshan's 17 real county polygons (the only real boundaries we have);
-- generated townships use codes <county>9NN and villages <township>NNN, names start with "[generated]".
-- Deterministic for a given PostgreSQL/PostGIS version: setseed() + ST_GeneratePoints(…, seed).
-- Random values inside LATERAL calls reference the outer row (``+ 0 * id``): otherwise PostgreSQL
-- evaluates an uncorrelated LATERAL once and every row gets the same value.
-- Random kinds, channels and mechanisms are drawn from the enum types (enum_range), never listed here.

SELECT setseed(:seed);

-- 20 generated townships × 10 generated villages per county.
INSERT INTO admin_area (code, name, level, parent_code)
SELECT c.code || (900 + t)::text, '[generated] ' || c.name || '第' || t || '乡', 'township', c.code
FROM admin_area c, generate_series(1, 20) t WHERE c.level = 'county';
INSERT INTO admin_area (code, name, level, parent_code)
SELECT tw.code || lpad(v::text, 3, '0'), '[generated] ' || tw.name || '第' || v || '村', 'village', tw.code
FROM admin_area tw, generate_series(1, 10) v WHERE tw.level = 'township' AND tw.code ~ '^[0-9]{6}9';

CREATE TEMP TABLE gen_village ON COMMIT DROP AS
SELECT left(code, 6) AS county, array_agg(code ORDER BY code) AS codes
FROM admin_area WHERE level = 'village' AND code ~ '^[0-9]{6}9' GROUP BY 1;

-- Sites and facilities: random points inside each county, in proportion to its area.
CREATE TEMP TABLE gen_share ON COMMIT DROP AS
SELECT code, geom, ST_Area(geom::geography) / sum(ST_Area(geom::geography)) OVER () AS share
FROM admin_area WHERE level = 'county';

INSERT INTO relocation_site (name, kind, admin_code, location, planned_households, planned_population)
SELECT '[generated] Sichuan-scale site ' || row_number() OVER (ORDER BY s.code, p.path),
       (enum_range(NULL::site_kind))[1 + floor(random() * cardinality(enum_range(NULL::site_kind)))::int],
       (v.codes)[1 + floor(random() * array_length(v.codes, 1))::int], p.geom, NULL, NULL
FROM gen_share s
JOIN gen_village v ON v.county = s.code
CROSS JOIN LATERAL ST_Dump(ST_GeneratePoints(s.geom, greatest(1, round(:sites * s.share)::int), 11)) p
ORDER BY s.code, p.path;

INSERT INTO facility (name, kind, admin_code, location, planned_jobs, operator)
SELECT '[generated] facility ' || row_number() OVER (ORDER BY s.code, p.path),
       (enum_range(NULL::facility_kind))[1 + floor(random() * cardinality(enum_range(NULL::facility_kind)))::int],
       (v.codes)[1 + floor(random() * array_length(v.codes, 1))::int], p.geom,
       (20 + floor(random() * 300))::int, '[generated]'
FROM gen_share s
JOIN gen_village v ON v.county = s.code
CROSS JOIN LATERAL ST_Dump(ST_GeneratePoints(s.geom, greatest(1, round(:facilities * s.share)::int), 13)) p
ORDER BY s.code, p.path;

CREATE TEMP TABLE gen_fac ON COMMIT DROP AS
SELECT left(admin_code, 6) AS county, array_agg(id ORDER BY id) AS ids FROM facility
WHERE operator = '[generated]' GROUP BY 1;

-- Households: 0.2×..1.8× the mean per site, dwellings within 600 m of their site.
INSERT INTO household (code, admin_code, site_id, origin_admin_code, dwelling, relocated_on, poverty_status)
SELECT 'SC-' || s.id || '-' || g,
       s.admin_code, s.id, (v.codes)[1 + floor(random() * array_length(v.codes, 1))::int],
       ST_Project(s.location::geography, 600 * sqrt(random()), radians(360 * random()))::geometry,
       date '2017-01-01' + floor(random() * 1460)::int, 'poverty_alleviated'
FROM relocation_site s
JOIN gen_village v ON v.county = left(s.admin_code, 6)
CROSS JOIN LATERAL generate_series(1, greatest(1, round((CAST(:households AS float) / :sites) * (0.2 + 1.6 * random()) + 0 * s.id)::int)) g
WHERE s.name LIKE '[generated] Sichuan-scale site %'
ORDER BY s.id, g;

-- Members: 1..8 per household (mean ≈ 3.8); labor force for ages 16–59 (90 %).
INSERT INTO member (household_id, name, gender, birth_year, relation, labor_force)
SELECT h.id, '[generated] 成员' || k, (ARRAY['male', 'female'])[1 + (k % 2)]::gender, by,
       CASE WHEN k = 1 THEN 'head' WHEN k = 2 THEN 'spouse' ELSE 'child' END::relation,
       (2024 - by) BETWEEN 16 AND 59 AND random() < 0.9
FROM household h
CROSS JOIN LATERAL generate_series(1, 1 + floor(power(random(), 1.15) * 7.0 + 0 * h.id)::int) k
CROSS JOIN LATERAL (SELECT 1950 + floor(random() * 72 + 0 * k)::int AS by) b
WHERE h.code LIKE 'SC-%'
ORDER BY h.id, k;

-- Employments: 75 % of the labor force, a channel each, 70 % stable; some spells ended.
INSERT INTO employment (member_id, channel, facility_id, employer_name, start_on, end_on, monthly_wage, stable)
SELECT m.id, ch, CASE WHEN ch = 'workshop' THEN (f.ids)[1 + floor(random() * array_length(f.ids, 1))::int] END,
       '[generated] employer', st, CASE WHEN random() < 0.2 THEN st + floor(random() * 500)::int END,
       round((800 + random() * 6000)::numeric, 2), random() < 0.7
FROM member m
JOIN household h ON h.id = m.household_id
JOIN gen_fac f ON f.county = h.county_code
CROSS JOIN LATERAL (SELECT (enum_range(NULL::employment_channel))[1 + floor(random() * cardinality(enum_range(NULL::employment_channel)) + 0 * m.id)::int] AS ch,
                           date '2019-01-01' + floor(random() * 2000 + 0 * m.id)::int AS st) x
WHERE h.code LIKE 'SC-%' AND m.labor_force AND random() < 0.75
ORDER BY m.id;

-- Fast load (anju/seed.py load_sichuan, deferred=True): the statements above ran with anju.defer_status on, so no
-- statement refreshed household_status; every generated household is refreshed here ONCE, by the same function
-- the triggers call, now that its residences, members and employments are all in (and before the incomes below,
-- whose household_size trigger reads household_status). Fresh statistics first: the refresh's plan needs them.
-- With the triggers firing (deferred=False) each statement already refreshed its households and this is a no-op.
ANALYZE household, household_residence, member, employment;
-- The refresh counts each segment by an index lookup (LATERAL, a nested loop by nature): with the real statistics
-- it needs neither of the bulk load's planner restrictions (anju/seed.py), under which it runs 50× slower.
SET LOCAL enable_nestloop = on;
SET LOCAL enable_seqscan = on;
SELECT anju_refresh_household_status(ARRAY(SELECT id FROM household WHERE code LIKE 'SC-%' ORDER BY id))
WHERE anju_status_deferred();

-- Income linkages (60 % of households, 2023 and 2024) and net incomes (every household).
INSERT INTO income_linkage (household_id, facility_id, mechanism, year, amount)
SELECT h.id, (f.ids)[1 + floor(random() * array_length(f.ids, 1))::int],
       (enum_range(NULL::linkage_mechanism))[1 + floor(random() * cardinality(enum_range(NULL::linkage_mechanism)))::int], y,
       round((200 + random() * 8000)::numeric, 2)
FROM household h JOIN gen_fac f ON f.county = h.county_code CROSS JOIN generate_series(2023, 2024) y
WHERE h.code LIKE 'SC-%' AND random() < 0.6
ORDER BY h.id, y;

INSERT INTO household_income (household_id, year, net_income)
SELECT h.id, y, round((8000 + random() * 60000)::numeric, 2)
FROM household h CROSS JOIN generate_series(2023, 2024) y
WHERE h.code LIKE 'SC-%'
ORDER BY h.id, y;
