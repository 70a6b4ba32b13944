"""Monitoring casework speed (issue #17): a county's ledger and the province-wide missed-monitoring count, each beside
hand-written SQL over the raw rows, in the same run (medians of N runs, milliseconds, ratio = Anju ÷ direct SQL).

    .venv/bin/python -m bench.casework --generate anju_bench_casework [--households 360000]   # once, ~25 min
    .venv/bin/python -m bench.casework [DATABASE_URL] [--county 513432] [--runs 7]

``--generate NAME`` builds a database of one's own on the project's cluster: the Sichuan-scale generated dataset
(``anju seed --scale sichuan``'s ``load_sichuan``) plus [generated] casework (``generate_casework``): grids over every
household, a case for one household in 12 spread over every stage, measures, failing guarantee checks, hardship
reports. The database must be at head (migration 0015 and later). Anju's figures are the statements the API runs
(``resolvers.casework.ledger_select`` / ``missed_monitoring_select``) through SQLAlchemy + asyncpg, as an admin
(no row-level security); the direct SQL is written here independently. Nothing is written.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import time
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from anju.settings import Settings
from resolvers import casework as cw

RAW_LEDGER = """
WITH p AS (
  SELECT c.id, c.household_id, c.category::text AS category, c.risk_types,
    (SELECT s.stage_after::text FROM case_step s WHERE s.case_id = c.id AND s.acted_on <= :on ORDER BY s.acted_on DESC, s.id DESC LIMIT 1) AS stage,
    (SELECT st.members FROM household_status st WHERE st.household_id = c.household_id AND st.valid_from <= :on AND st.valid_to > :on) AS persons
  FROM monitoring_case c JOIN household h ON h.id = c.household_id
  WHERE c.opened_on <= :on AND h.county_code = :county)
SELECT dim, key, count(DISTINCT household_id), sum(persons) FROM (
  SELECT DISTINCT dim, key, household_id, persons FROM (
    SELECT 'category' AS dim, category AS key, household_id, persons FROM p
    UNION ALL SELECT 'risk_type', unnest(risk_types)::text, household_id, persons FROM p
    UNION ALL SELECT 'stage', stage, household_id, persons FROM p
    UNION ALL SELECT 'measure_type', a.type::text, p.household_id, p.persons FROM p JOIN assistance_measure a ON a.case_id = p.id AND a.start_on <= :on
  ) u) d GROUP BY dim, key
"""  # noqa: E501
RAW_MISSED = """
WITH pc AS (SELECT household_id, year, net_income / household_size AS pc FROM household_income WHERE household_size > 0 AND year IN (:y, :y - 1)),
g AS (SELECT DISTINCT ON (household_id) * FROM guarantee_check WHERE checked_on <= :on ORDER BY household_id, checked_on DESC, id DESC)
SELECT count(*) FROM household h
LEFT JOIN pc c ON c.household_id = h.id AND c.year = :y
LEFT JOIN pc p ON p.household_id = h.id AND p.year = :y - 1
LEFT JOIN g ON g.household_id = h.id
WHERE NOT EXISTS (SELECT 1 FROM monitoring_case k WHERE k.household_id = h.id AND k.opened_on <= :on AND (k.closed_on IS NULL OR :on < k.closed_on))
  AND (c.pc < CAST(:line AS numeric) OR (p.pc > 0 AND c.pc < p.pc * (1 - CAST(:share AS numeric)))
       OR g.education = false OR g.medical = false OR g.housing = false OR g.drinking_water = false
       OR EXISTS (SELECT 1 FROM hardship_report r WHERE r.household_id = h.id AND r.reported_on <= :on AND r.reported_on > :on - 365))
"""  # noqa: E501


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
           CROSS JOIN LATERAL generate_series(0, CASE WHEN c.id % 13 = 12 THEN 3 ELSE c.id % 13 END) i
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


async def _median(runs: int, fn: Any) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(runs):
        t = time.perf_counter()
        out = await fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url", nargs="?")
    ap.add_argument("--county", default="513432")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--on", default="2025-03-01")
    ap.add_argument("--generate", metavar="NAME", help="build the bench database NAME first (see the module docstring)")
    ap.add_argument("--households", type=int, default=360_000)
    a = ap.parse_args()
    settings = Settings()
    url = await build(settings, a.generate, a.households) if a.generate else a.url
    eng = create_async_engine(url or settings.sqlalchemy_url())
    on = dt.date.fromisoformat(a.on)
    c = cw.criteria(settings, on, None)
    rows = []
    async with eng.connect() as conn:
        households = await conn.scalar(text("SELECT count(*) FROM household"))
        cases = await conn.scalar(text("SELECT count(*) FROM monitoring_case"))

        async def anju_ledger() -> Any:
            return sorted((r[0], r[1], r[2], r[3]) for r in await conn.execute(cw.ledger_select(on, area_code=a.county)))

        async def raw_ledger() -> Any:
            return await conn.execute(text(RAW_LEDGER), {"on": on, "county": a.county})

        async def anju_missed() -> Any:
            return await conn.scalar(select(func.count()).select_from(cw.missed_monitoring_select(c).subquery()))

        async def raw_missed() -> Any:
            params = {"on": on, "y": c.income_year, "line": c.default_line, "share": Decimal(c.drop_share)}
            return await conn.scalar(text(RAW_MISSED), params)

        for name, mine, raw in (
            (f"ledger of county {a.county}", anju_ledger, raw_ledger),
            ("missed-monitoring count, all households", anju_missed, raw_missed),
        ):
            t1, out = await _median(a.runs, mine)
            t2, _ = await _median(a.runs, raw)
            rows.append((name, t1, t2, out if isinstance(out, int) else len(out)))
    await eng.dispose()
    lines = [
        f"households {households:,}, monitoring cases {cases:,}; medians of {a.runs} runs on {on}",
        "| query | Anju (ms) | direct SQL (ms) | ratio | result |",
        "|---|---|---|---|---|",
        *(f"| {name} | {t1:.1f} | {t2:.1f} | {t1 / t2:.2f} | {out} |" for name, t1, t2, out in rows),
    ]
    print("\n".join(lines))  # noqa: T201 - a benchmark reports on stdout


if __name__ == "__main__":
    asyncio.run(main())
