"""Monitoring casework speed (issue #17): a county's ledger and the province-wide missed-monitoring count, each timed
three ways in the same run: GraphQL in-process (schema, resolvers, the viewer's scope), the SQL it sent replayed over one
asyncpg connection, and hand-written SQL over the raw rows (below, written independently; its answer is compared with
GraphQL's). Medians of N runs, milliseconds, ratio = GraphQL ÷ hand-written. Results: stdout and bench/results/casework.md.

    .venv/bin/python -m bench.casework --generate anju_bench_casework [--households 360000]   # a new database, ~25 min
    .venv/bin/python -m bench.casework DATABASE_URL --casework-only   # or: add the casework to a copy of one's own
    .venv/bin/python -m bench.casework DATABASE_URL [--county 513432 ...] [--runs 7] [--on 2025-03-01]

``--generate NAME`` builds a database of one's own on the project's cluster: the Sichuan-scale generated dataset
(``anju seed --scale sichuan``'s ``load_sichuan``) plus [generated] casework (``generate_casework``): grids over every
household, a case for one household in 12 spread over every stage, measures, failing guarantee checks, hardship
reports. ``--casework-only`` adds that casework to an existing Sichuan-scale database (a copy made with ``CREATE
DATABASE … TEMPLATE anju_sichuan``, never the shared one). The database must be at head (migration 0015 and later).
The counties default to Xide (513432) and the county with the most households. Timing writes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import time
from decimal import Decimal
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from anju.settings import Settings
from bench.common import RESULTS, Case, load_note, machine, record
from resolvers import casework as cw
from resolvers.access import Role, Viewer
from schema import Context, build_schema

# Hand-written SQL over the raw rows (asyncpg parameters), independent of resolvers/casework.py: what a DBA would type.
RAW_LEDGER_PG = """
WITH p AS (
  SELECT c.id, c.household_id, c.category::text AS category, c.risk_types,
    (SELECT s.stage_after::text FROM case_step s WHERE s.case_id = c.id AND s.acted_on <= $1
     ORDER BY s.acted_on DESC, s.id DESC LIMIT 1) AS stage,
    coalesce((SELECT st.members FROM household_status st
              WHERE st.household_id = c.household_id AND st.valid_from <= $1 AND st.valid_to > $1), 0) AS persons
  FROM monitoring_case c JOIN household h ON h.id = c.household_id
  WHERE c.opened_on <= $1 AND h.county_code = $2)
SELECT dim, key, count(DISTINCT household_id), sum(persons) FROM (
  SELECT DISTINCT dim, key, household_id, persons FROM (
    SELECT 'category' AS dim, category AS key, household_id, persons FROM p
    UNION ALL SELECT 'risk_type', unnest(risk_types)::text, household_id, persons FROM p
    UNION ALL SELECT 'stage', stage, household_id, persons FROM p
    UNION ALL SELECT 'outcome', CASE WHEN stage IN ('application', 'home_verification', 'village_appraisal', 'public_notice',
        'township_review') THEN 'identifying' WHEN stage = 'elimination_confirmation' THEN 'risk_eliminated'
        WHEN stage = 'not_included' THEN 'not_included' ELSE 'monitored' END, household_id, persons FROM p
    UNION ALL SELECT 'measure_type', a.type::text, p.household_id, p.persons
      FROM p JOIN assistance_measure a ON a.case_id = p.id AND a.start_on <= $1
  ) u) d GROUP BY dim, key
"""
RAW_TWO_GROUPS_PG = """
WITH t AS (
  SELECT h.id,
    coalesce((SELECT st.members FROM household_status st WHERE st.household_id = h.id AND st.valid_from <= $1
              AND st.valid_to > $1), 0) AS persons,
    (SELECT net_income / household_size FROM household_income WHERE household_id = h.id AND year = $3
     AND household_size > 0) AS cur,
    (SELECT net_income / household_size FROM household_income WHERE household_id = h.id AND year = $3 - 1
     AND household_size > 0) AS prev,
    EXISTS (SELECT 1 FROM assistance_measure a WHERE a.household_id = h.id AND a.start_on <= $1) AS measured
  FROM household h
  WHERE h.county_code = $2 AND EXISTS (
    SELECT 1 FROM monitoring_case k WHERE k.household_id = h.id AND k.opened_on <= $1
      AND (k.closed_on IS NULL OR $1 < k.closed_on) AND k.category IN ('unstable_out_of_poverty', 'marginal')))
SELECT count(*), coalesce(sum(persons), 0), count(*) FILTER (WHERE cur < prev), count(*) FILTER (WHERE cur < $4),
       count(*) FILTER (WHERE measured) FROM t
"""
_RAW_MISSED = """
WITH pc AS (SELECT household_id, year, net_income / household_size AS pc FROM household_income
            WHERE household_size > 0 AND year IN ($2, $2 - 1)),
g AS (SELECT DISTINCT ON (household_id) * FROM guarantee_check WHERE checked_on <= $1
      ORDER BY household_id, checked_on DESC, id DESC)
SELECT {what} FROM household h
LEFT JOIN pc c ON c.household_id = h.id AND c.year = $2
LEFT JOIN pc p ON p.household_id = h.id AND p.year = $2 - 1
LEFT JOIN g ON g.household_id = h.id
WHERE NOT EXISTS (SELECT 1 FROM monitoring_case k WHERE k.household_id = h.id AND k.opened_on <= $1
                  AND (k.closed_on IS NULL OR $1 < k.closed_on))
  AND (c.pc < $3::numeric OR (p.pc > 0 AND c.pc < p.pc * (1 - $4::numeric))
       OR g.education = false OR g.medical = false OR g.housing = false OR g.drinking_water = false
       OR EXISTS (SELECT 1 FROM hardship_report r WHERE r.household_id = h.id AND r.reported_on <= $1
                  AND r.reported_on > $1 - 365))
{tail}
"""
RAW_MISSED_PG = _RAW_MISSED.format(what="count(*)", tail="")
"""The missed-monitoring count (the default monitoring line: no per-province line is configured in the benchmark)."""
RAW_MISSED_PG_PAGE = """
SELECT h.id FROM household h
LEFT JOIN household_income c ON c.household_id = h.id AND c.year = $2 AND c.household_size > 0
LEFT JOIN household_income p ON p.household_id = h.id AND p.year = $2 - 1 AND p.household_size > 0
LEFT JOIN LATERAL (SELECT * FROM guarantee_check g WHERE g.household_id = h.id AND g.checked_on <= $1
                   ORDER BY g.checked_on DESC, g.id DESC LIMIT 1) g ON true
WHERE NOT EXISTS (SELECT 1 FROM monitoring_case k WHERE k.household_id = h.id AND k.opened_on <= $1
                  AND (k.closed_on IS NULL OR $1 < k.closed_on))
  AND (c.net_income / c.household_size < $3::numeric
       OR (p.net_income / p.household_size > 0
           AND c.net_income / c.household_size < p.net_income / p.household_size * (1 - $4::numeric))
       OR g.education = false OR g.medical = false OR g.housing = false OR g.drinking_water = false
       OR EXISTS (SELECT 1 FROM hardship_report r WHERE r.household_id = h.id AND r.reported_on <= $1
                  AND r.reported_on > $1 - 365))
ORDER BY h.id LIMIT 50
"""
"""The first page of the list: per household in id order (the count's whole-table shape would sort everything)."""


async def generate_casework(conn: Any) -> None:
    """[generated] casework over the whole database (set-based; labelled ``[generated] bench``).

    Grids as the demo's (``anju.seed_casework.make_grids``) for the households without one; a case for each household
    whose id is a multiple of 12, opened in 2023–2024, at stage index ``id % 13`` (12: refused at the township review),
    its steps 10 days apart with 7-day notices; a measure per case included in monitoring; a guarantee check of
    2024-06-01 for one household in 5 (medical failing for 1 in 40, drinking water for 1 in 55); a hardship report of
    2024-10-01 for 1 in 97. The steps are written in bulk in their order by construction (``session_replication_role
    = replica`` skips the per-row stage trigger and the FK checks of this one transaction).
    """
    from anju.seed_casework import make_grids

    gen = "[generated] bench"
    if await conn.scalar(text("SELECT count(*) FROM monitoring_case WHERE notes = :g"), {"g": gen}):
        return
    await conn.execute(text("SET LOCAL statement_timeout = 0"))
    await make_grids(conn, "h.grid_id IS NULL", {})
    await conn.execute(text("SET LOCAL session_replication_role = replica"))
    for statement in (
        """INSERT INTO monitoring_case (household_id, county_code, category, risk_types, source, opened_on, stage,
                                        stage_on, notes)
           SELECT h.id, h.county_code, (enum_range(NULL::monitoring_category))[1 + h.id % 3],
                  ARRAY[(enum_range(NULL::risk_type))[1 + h.id % 11]], (enum_range(NULL::case_source))[1 + h.id % 4],
                  DATE '2023-01-01' + (h.id * 7 % 600)::int, 'application', DATE '2023-01-01', :g
           FROM household h WHERE h.id % 12 = 0 AND NOT EXISTS (SELECT 1 FROM monitoring_case c WHERE c.household_id = h.id)""",
        """INSERT INTO case_step (case_id, stage, approved, stage_after, acted_on, user_name, actor_level, notice_from,
                                  notice_to, notes)
           SELECT c.id, o.st[i + 1], true, o.st[i + 1], c.opened_on + 10 * i, :g, 'admin',
                  CASE WHEN o.st[i + 1] IN ('public_notice', 'elimination_notice') THEN c.opened_on + 10 * i - 8 END,
                  CASE WHEN o.st[i + 1] IN ('public_notice', 'elimination_notice') THEN c.opened_on + 10 * i - 1 END, :g
           FROM monitoring_case c CROSS JOIN (SELECT enum_range(NULL::case_stage) AS st) o
           CROSS JOIN LATERAL generate_series(0, CAST(CASE WHEN c.id % 13 = 12 THEN 3 ELSE c.id % 13 END AS integer)) i
           WHERE c.notes = :g""",
        """INSERT INTO case_step (case_id, stage, approved, stage_after, acted_on, user_name, actor_level, notes)
           SELECT c.id, 'township_review', false, 'not_included', c.opened_on + 40, :g, 'admin', :g
           FROM monitoring_case c WHERE c.notes = :g AND c.id % 13 = 12""",
        """UPDATE monitoring_case c SET stage = s.stage_after, stage_on = s.acted_on, version = s.n,
               included_on = CASE WHEN s.stage_after NOT IN ('application', 'home_verification', 'village_appraisal',
                   'public_notice', 'township_review', 'not_included') THEN c.opened_on + 50 END,
               closed_on = CASE WHEN s.stage_after IN ('not_included', 'elimination_confirmation') THEN s.acted_on END
           FROM (SELECT DISTINCT ON (case_id) case_id, stage_after, acted_on, 1 + count(*) OVER (PARTITION BY case_id) AS n
                 FROM case_step WHERE notes = :g ORDER BY case_id, acted_on DESC, id DESC) s
           WHERE s.case_id = c.id""",
        """INSERT INTO assistance_measure (household_id, case_id, type, responsible, funds, start_on, status, notes)
           SELECT c.household_id, c.id, (enum_range(NULL::measure_type))[1 + c.id % 11], :g, 1000 + c.id % 5000,
                  c.included_on + 5, 'in_progress', :g
           FROM monitoring_case c WHERE c.notes = :g AND c.included_on IS NOT NULL""",
        """INSERT INTO guarantee_check (household_id, checked_on, education, medical, housing, drinking_water)
           SELECT id, DATE '2024-06-01', true, id % 40 <> 1, true, id % 55 <> 2 FROM household WHERE id % 5 = 1""",
        """INSERT INTO hardship_report (household_id, reported_on, risk_type, notes)
           SELECT id, DATE '2024-10-01', 'accident', :g FROM household WHERE id % 97 = 3""",
    ):
        await conn.execute(text(statement), {"g": gen})


async def build(settings: Settings, name: str, households: int) -> str:
    """The bench database ``name`` on the project's cluster (created, migrated, loaded, casework generated); its URL."""
    from anju import db
    from anju.seed import load_sichuan

    await db.ensure_database(settings, name)
    await db.migrate(settings, name)
    eng = db.create_engine(settings, name)
    try:
        await load_sichuan(eng, households=households)
        async with eng.begin() as conn:
            await generate_casework(conn)
        async with eng.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE"))
    finally:
        await eng.dispose()
    return settings.sqlalchemy_url(name)


async def add_casework(url: str) -> None:
    """Add the [generated] casework (``generate_casework``) to the database at ``url`` and ANALYZE it; for a copy of a
    Sichuan-scale database (``CREATE DATABASE … TEMPLATE anju_sichuan``), never the shared one."""
    eng = create_async_engine(url)
    try:
        async with eng.begin() as conn:
            await generate_casework(conn)
        async with eng.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE"))
    finally:
        await eng.dispose()


LEDGER = (
    "query($area: String!, $on: Date!) { monitoringLedger(areaCode: $area, on: $on) { cells { dimension key households "
    "persons } twoGroups { households persons incomeDown belowLine withMeasures } } }"
)
MISSED_COUNT = "query($on: Date!) { missedMonitoring(on: $on, first: 1) { totalCount } }"
MISSED_PAGE = (
    "query($on: Date!) { missedMonitoring(on: $on, first: 50) { nodes { household { id } perCapitaIncome belowLine "
    "incomeDrop guaranteesFailing hardship rebound } pageInfo { hasNextPage endCursor } } }"
)
PLANNER = Viewer(None, "bench-planner", Role.PLANNER)


def _officer(county: str) -> Viewer:
    return Viewer(None, "bench-officer", Role.COUNTY_OFFICER, (county,))


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[94] if len(values) > 1 else values[0]


def _raw_ledger_cells(rows: Any) -> list[tuple[str, str | None, int, int]]:
    return sorted(((r[0], r[1], int(r[2]), int(r[3])) for r in rows), key=lambda x: (x[0], x[1] or ""))


def _gql_ledger_cells(data: Any) -> list[tuple[str, str | None, int, int]]:
    cells = data["monitoringLedger"]["cells"]
    return sorted(((c["dimension"], c["key"], c["households"], c["persons"]) for c in cells), key=lambda x: (x[0], x[1] or ""))


async def bench(url: str, *, counties: list[str], on: dt.date, runs: int, warmup: int = 1) -> str:
    """Time each case three ways, alternating in every run: GraphQL in-process (the schema, resolvers and the viewer's
    scope), the SQL it sent replayed over one asyncpg connection, and the hand-written SQL above; check that GraphQL and
    the hand-written SQL agree; print and write ``bench/results/casework.md``; return the table."""
    load0 = os.getloadavg()
    settings = Settings()
    engine = create_async_engine(url, connect_args={"server_settings": {"jit": "off"}})
    sm = async_sessionmaker(engine, expire_on_commit=False)
    schema = build_schema(settings)
    c = cw.criteria(settings, on, None)
    raw = await asyncpg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False), server_settings={"jit": "off"}
    )
    async with engine.connect() as conn:
        sizes = (
            await conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM household), (SELECT count(*) FROM member), "
                    "(SELECT count(*) FROM monitoring_case), (SELECT count(*) FROM case_step), "
                    "(SELECT count(*) FROM assistance_measure), (SELECT count(*) FROM guarantee_check), "
                    "(SELECT count(*) FROM hardship_report), (SELECT count(*) FROM grid)"
                )
            )
        ).one()
        per_county: dict[str, int] = dict(
            (await conn.execute(
                text("SELECT h.county_code, count(*) FROM household h WHERE h.county_code = ANY(:c) GROUP BY 1"),
                {"c": counties},
            )).all()
        )  # fmt: skip
        cases_in: dict[str, int] = dict(
            (await conn.execute(
                text("SELECT county_code, count(*) FROM monitoring_case WHERE county_code = ANY(:c) GROUP BY 1"),
                {"c": counties},
            )).all()
        )  # fmt: skip
    missed_params = (on, c.income_year, c.default_line, Decimal(c.drop_share))

    def raw_ledger(county: str) -> Any:
        async def go() -> Any:
            cells = _raw_ledger_cells(await raw.fetch(RAW_LEDGER_PG, on, county))
            two = await raw.fetchrow(RAW_TWO_GROUPS_PG, on, county, c.income_year, settings.monitoring.per_capita_threshold)
            return cells, tuple(two)

        return go

    async def raw_missed() -> Any:
        return await raw.fetchval(RAW_MISSED_PG, *missed_params)

    async def raw_missed_page() -> Any:
        return [r[0] for r in await raw.fetch(RAW_MISSED_PG_PAGE, *missed_params)]

    def check_ledger(data: Any, mine: Any) -> str:
        cells, two = mine
        t = data["monitoringLedger"]["twoGroups"]
        ok = (
            _gql_ledger_cells(data) == cells
            and (t["households"], t["persons"], t["incomeDown"], t["belowLine"], t["withMeasures"]) == two
        )
        return f"{len(cells)} cells, {two[0]:,} two-group households; {'equal' if ok else 'DIFFERENT'}"

    cases: list[tuple[str, str, dict[str, Any], Viewer, Any, Any]] = []
    for county in counties:
        size = f"{per_county.get(county, 0):,} households, {cases_in.get(county, 0):,} cases"
        for who, viewer in (("planner", PLANNER), ("county officer", _officer(county))):
            cases.append((
                f"monitoringLedger, county {county} ({size}), {who}", LEDGER, {"area": county, "on": on.isoformat()},
                viewer, raw_ledger(county), check_ledger,
            ))  # fmt: skip
    cases.append((
        "missedMonitoring totalCount, whole province (planner)", MISSED_COUNT, {"on": on.isoformat()}, PLANNER, raw_missed,
        lambda d, n: f"{n:,} households; {'equal' if d['missedMonitoring']['totalCount'] == n else 'DIFFERENT'}",
    ))  # fmt: skip
    cases.append((
        "missedMonitoring first 50 with reasons, whole province (planner)", MISSED_PAGE, {"on": on.isoformat()}, PLANNER,
        raw_missed_page,
        lambda d, ids: "50 rows; " + (
            "equal" if [int(x["household"]["id"]) for x in d["missedMonitoring"]["nodes"]] == ids else "DIFFERENT"
        ),
    ))  # fmt: skip
    rows = []
    try:
        for name, query, variables, viewer, hand, check in cases:
            sent = await record(sm, settings, Case(name, query, variables), viewer)
            g: list[float] = []
            r_: list[float] = []
            h: list[float] = []
            data: Any = None
            mine: Any = None
            for i in range(warmup + runs):
                t0 = time.perf_counter()
                res = await schema.execute(
                    query, variable_values=variables, context_value=Context(sessionmaker=sm, settings=settings, viewer=viewer)
                )
                t1 = time.perf_counter()
                if res.errors:
                    raise RuntimeError(f"{name}: {res.errors}")
                data = res.data
                async with raw.transaction():
                    for sql_, params in sent:
                        await raw.fetch(sql_, *params)
                t2 = time.perf_counter()
                mine = await hand()
                t3 = time.perf_counter()
                if i >= warmup:
                    g.append((t1 - t0) * 1000)
                    r_.append((t2 - t1) * 1000)
                    h.append((t3 - t2) * 1000)
            gm, rm, hm = statistics.median(g), statistics.median(r_), statistics.median(h)
            rows.append(
                f"| {name} | {check(data, mine)} | {len(sent)} | {gm:,.0f} | {_p95(g):,.0f} | {rm:,.0f} | {hm:,.0f} | "
                f"{_p95(h):,.0f} | {gm / hm:.2f}× |"
            )
            print(rows[-1], flush=True)  # noqa: T201 - progress
    finally:
        await raw.close()
        await engine.dispose()
    table = "\n".join(
        [
            "### Monitoring casework benchmark (bench/casework.py)",
            "",
            f"Machine: {machine()}. Data: `{make_url(url).database}` ({sizes[0]:,} households, {sizes[1]:,} members; "
            f"[generated] casework: {sizes[2]:,} monitoring cases, {sizes[3]:,} case steps, {sizes[4]:,} measures, "
            f"{sizes[5]:,} guarantee checks, {sizes[6]:,} hardship reports, {sizes[7]:,} grids). Date {on}, income year "
            f"{c.income_year}. {runs} runs per case after {warmup} warm-up, alternating: GraphQL in-process (resolvers, "
            "viewer scope), the SQL it sent replayed over one asyncpg connection, and hand-written SQL over the raw rows "
            "(bench/casework.py, written independently); the answers of GraphQL and the hand-written SQL are compared. "
            + load_note(load0),
            "",
            "| case | answer | statements | GraphQL p50 ms | p95 | its SQL replayed p50 ms | hand-written SQL p50 ms | p95 | "
            "GraphQL ÷ hand-written |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "casework.md").write_text(table + "\n", encoding="utf-8")
    print(table)  # noqa: T201 - a benchmark reports on stdout
    return table


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url", nargs="?")
    ap.add_argument("--county", action="append", help="county code (repeatable; default 513432 and the largest county)")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--on", default="2025-03-01")
    ap.add_argument("--generate", metavar="NAME", help="build the bench database NAME first (see the module docstring)")
    ap.add_argument("--households", type=int, default=360_000)
    ap.add_argument(
        "--casework-only", action="store_true", help="only add the [generated] casework to the database URL (a copy of one's own)"
    )
    a = ap.parse_args()
    settings = Settings()
    if a.casework_only:
        await add_casework(a.url)
        return
    url = await build(settings, a.generate, a.households) if a.generate else (a.url or settings.sqlalchemy_url())
    counties = a.county
    if not counties:
        eng = create_async_engine(url)
        async with eng.connect() as conn:
            largest = await conn.scalar(text("SELECT county_code FROM household GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"))
        await eng.dispose()
        counties = ["513432"] + ([largest] if largest and largest != "513432" else [])
    await bench(url, counties=counties, on=dt.date.fromisoformat(a.on), runs=a.runs)


if __name__ == "__main__":
    asyncio.run(main())
