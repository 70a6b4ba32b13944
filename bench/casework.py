"""Monitoring casework speed (issue #17): a county's ledger and the province-wide missed-monitoring count, each beside
hand-written SQL over the raw rows, in the same run (medians of N runs, milliseconds, ratio = Anju ÷ direct SQL).

    .venv/bin/python -m bench.casework [DATABASE_URL] [--county 513432] [--runs 7]

The database must be at head (migration 0015 and later). Anju's figures are the statements the API runs
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
    a = ap.parse_args()
    settings = Settings()
    eng = create_async_engine(a.url or settings.sqlalchemy_url())
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
