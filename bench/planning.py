"""Planning benchmark (issue #15), read-only: ``.venv/bin/python -m bench.planning [DATABASE_URL] [--match TEXT] [--runs N]``.

facilityPlacement (greedy maximal covering, one statement) over Xide (513432) and Muli (513422, the county with the most
households) with hexagonal grids, and over Xide with its sites as candidates, and siteScorecards for one site and for
every site of the database, each beside the same SQL replayed directly over one asyncpg connection (what
bench/common.py records), alternating. GraphQL runs in-process (strawberry schema, the resolvers, the viewer's scope),
not over HTTP: the database may be another's, used read-only (no benchmark users are written). Default database:
``anju_sichuan`` on the configured cluster (``anju seed --scale sichuan``); ``--match TEXT`` keeps the cases whose name
contains TEXT. Results: stdout and ``bench/results/planning.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from anju.settings import Settings
from bench.common import RESULTS, Case, load_note, machine, record
from resolvers.access import Role, Viewer
from schema import Context, build_schema

DAY = "2024-04-13"
PLACE = (
    "query($area: String!, $cand: PlacementCandidates!, $hex: Float, $count: Int!, $reach: Float!) { facilityPlacement("
    "kind: ASSISTANCE_WORKSHOP, reachMeters: $reach, areaCode: $area, candidates: $cand, count: $count, hexSizeMeters: $hex, "
    f'asOf: "{DAY}") {{ eligibleHouseholds candidates picks {{ pick point households persons cumulativeHouseholds }} }} }}'
)
SCORE = (
    'query($area: String) { siteScorecards(areaCode: $area, asOf: "' + DAY + '", year: 2023) { site { id } '
    "households coverageRate coverageChange perCapitaIncome perCapitaIncomeChangeRate householdsLinked "
    "services { kind distanceMeters householdsBeyond } } }"
)
PLANNER = Viewer(None, "bench-planner", Role.PLANNER)
BIG = "513422"
"""Muli (木里), the county with the most households of the Sichuan-scale data (79,819 of 359,478; 13,200 km²)."""
OFFICER = Viewer(None, "bench-officer", Role.COUNTY_OFFICER, ("513432",))
CASES = [
    (Case("facilityPlacement, Xide, hexagons of 2 km, reach 5 km, 5 picks", PLACE,
          {"area": "513432", "cand": "GRID", "hex": 2000.0, "count": 5, "reach": 5000.0}), PLANNER),
    (Case("facilityPlacement, Xide, hexagons of 1 km, reach 3 km, 10 picks", PLACE,
          {"area": "513432", "cand": "GRID", "hex": 1000.0, "count": 10, "reach": 3000.0}), PLANNER),
    (Case("facilityPlacement, Xide, its sites, reach 5 km, 5 picks (county officer)", PLACE,
          {"area": "513432", "cand": "SITES", "hex": None, "count": 5, "reach": 5000.0}), OFFICER),
    (Case("facilityPlacement, Muli, hexagons of 1.2 km, reach 3 km, 10 picks", PLACE,
          {"area": BIG, "cand": "GRID", "hex": 1200.0, "count": 10, "reach": 3000.0}), PLANNER),
    (Case("facilityPlacement, Muli, hexagons of 2 km, reach 5 km, 20 picks", PLACE,
          {"area": BIG, "cand": "GRID", "hex": 2000.0, "count": 20, "reach": 5000.0}), PLANNER),
    (Case("siteScorecards, Yixin's community (one site)", SCORE, {"area": "513432100004"}), PLANNER),
    (Case("siteScorecards, every site of the database", SCORE, {"area": None}), PLANNER),
    (Case("siteScorecards, Xide's sites (county officer)", SCORE, {"area": "513432"}), OFFICER),
]  # fmt: skip


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def run(url: str | None = None, runs: int = 7, warmup: int = 1, match: str = "") -> str:
    """Time every case whose name contains ``match``; print and write the markdown table; return it."""
    load0 = os.getloadavg()
    settings = Settings()
    url = url or settings.sqlalchemy_url("anju_sichuan")
    engine = create_async_engine(url, connect_args={"server_settings": {"jit": "off"}})
    sm = async_sessionmaker(engine, expire_on_commit=False)
    schema = build_schema(settings)
    async with engine.connect() as c:
        sizes = (
            await c.execute(
                text(
                    "SELECT (SELECT count(*) FROM relocation_site), (SELECT count(*) FROM household), "
                    "(SELECT count(*) FROM household WHERE county_code = '513432'), (SELECT count(*) FROM facility), "
                    f"(SELECT count(*) FROM household WHERE county_code = '{BIG}')"
                )
            )
        ).one()
    raw = await asyncpg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False), server_settings={"jit": "off"}
    )
    rows = []
    try:
        for case, viewer in [(c, v) for c, v in CASES if match in c.name]:
            sent = await record(sm, settings, case, viewer)
            g: list[float] = []
            s: list[float] = []
            answer: Any = None
            for i in range(warmup + runs):
                t0 = time.perf_counter()
                r = await schema.execute(
                    case.query,
                    variable_values=case.variables,
                    context_value=Context(sessionmaker=sm, settings=settings, viewer=viewer),
                )
                t1 = time.perf_counter()
                if r.errors:
                    raise RuntimeError(f"{case.name}: {r.errors}")
                answer = r.data
                async with raw.transaction():
                    for sql_, params in sent:
                        await raw.fetch(sql_, *params)
                t2 = time.perf_counter()
                if i >= warmup:
                    g.append((t1 - t0) * 1000)
                    s.append((t2 - t1) * 1000)
            size = ""
            if answer and "facilityPlacement" in answer:
                fp = answer["facilityPlacement"]
                covered = fp["picks"][-1]["cumulativeHouseholds"] if fp["picks"] else 0
                size = f"{fp['candidates']:,} candidates, {fp['eligibleHouseholds']:,} eligible, {covered:,} covered"
            elif answer:
                size = f"{len(answer['siteScorecards']):,} sites"
            gm, sm_ = statistics.median(g), statistics.median(s)
            rows.append(
                f"| {case.name} | {size} | {len(sent)} | {gm:,.0f} | {_p(g, 95):,.0f} | {sm_:,.0f} | {_p(s, 95):,.0f} | "
                f"{gm / sm_:.2f}× |"
            )
            print(rows[-1], flush=True)  # noqa: T201 - progress
    finally:
        await raw.close()
        await engine.dispose()
    table = "\n".join(
        [
            "### Planning benchmark (bench/planning.py)",
            "",
            f"Machine: {machine()}. Data: `{make_url(url).database}` ({sizes[0]:,} sites, {sizes[1]:,} households, of "
            f"them {sizes[2]:,} in Xide 513432 and {sizes[4]:,} in Muli {BIG}; {sizes[3]:,} facilities). {runs} runs per "
            f"case after {warmup} warm-up, GraphQL in-process (resolvers, viewer scope) alternating with the same SQL "
            f"replayed over one asyncpg connection. {load_note(load0)}",
            "",
            "| case | size | statements | GraphQL p50 ms | p95 | direct SQL p50 ms | p95 | ratio |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            "Target (issue #15): facility placement under 2 s on a Sichuan-scale county.",
        ]
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "planning.md").write_text(table + "\n", encoding="utf-8")
    print(table)  # noqa: T201 - a benchmark reports on stdout
    return table


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("url", nargs="?")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--match", default="", help="only the cases whose name contains this (e.g. facilityPlacement)")
    a = ap.parse_args()
    asyncio.run(run(a.url, a.runs, match=a.match))
