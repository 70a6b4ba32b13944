"""Benchmark of exports (issue #13; not a test: nothing here asserts a time). Read-only against the benchmark database.

Each case times Anju's export (``anju.exports.export_chunks``: what ``anju export`` and ``GET /exports/…`` run, bytes
consumed as a client would) beside PostgreSQL's own ``COPY (SELECT …) TO STDOUT (FORMAT csv)`` in the same run,
alternating so machine noise hits both alike:

- ``COPY export SQL``: the very statement the export streams (labels, masking, spreadsheet-safe text) — the floor of
  what the CSV path can do;
- ``COPY plain rows``: the same rows as plain columns (``h.code, h.admin_code, …, m.name, …`` ordered the same), no
  Chinese labels, masking or neutralising: what a DBA would type.

Cases: the whole households roster (every present member, ≈1.36 M rows on the Sichuan-scale database) as CSV, and one
county's roster as CSV, XLSX and GeoPackage (the last two written to a file before streaming) beside COPY of the same rows.

Anju's export runs on connections with the service's session settings (``anju.db.server_settings``: ``jit = off``, the
statement timeout), as ``anju serve`` and ``anju export`` run it; both COPY baselines run on a plain connection with
PostgreSQL's defaults, as a DBA's ``psql`` would. The peak resident memory of this process during each Anju export
(``/proc/self/status`` VmRSS sampled every 50 ms, less the resident memory before it) shows whether it streams in
constant memory. The load average at the start and end of the run is noted under the table.

Usage: ``.venv/bin/python -m bench.exports [--database-url URL] [--runs 3] [--county 513432] [--output FILE]``; the default
URL is the Sichuan-scale database (``…/anju_sichuan``, generated data). Writes ``bench/results/exports.md`` (or FILE).
``--make-slice N`` first builds a writable database ``anju_bench_exports`` on the local cluster: the demo seed with each
demo household copied N times (codes ``<code>-G<n>``: GENERATED copies, labelled so) and benchmarks that instead.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from anju.db import server_settings
from anju.exports import export_chunks, prepare
from anju.settings import Settings
from bench.common import RESULTS, load_note, machine
from resolvers.access import Role, Viewer, scoped_sessionmaker
from resolvers.exports import source_select
from resolvers.sqljson import compile_statement

SICHUAN = "postgresql+asyncpg://anju:anju-local-dev@127.0.0.1:55432/anju_sichuan"
ADMIN = Viewer(None, "bench-admin", Role.ADMIN)
PLAIN = """
SELECT h.code, h.admin_code, h.poverty_status, h.site_id, h.relocated_on, h.origin_admin_code, ST_X(h.dwelling),
       ST_Y(h.dwelling), m.name, m.gender, m.birth_year, m.relation, m.labor_force, NULL, m.phone, m.skills, m.joined_on,
       m.join_reason, m.id
FROM household h JOIN member m ON m.household_id = h.id
WHERE m.left_on IS NULL {where}
ORDER BY h.id, m.id
"""


SLICE = "anju_bench_exports"
COPIES = """
INSERT INTO household (code, admin_code, poverty_status, site_id, relocated_on, origin_admin_code, dwelling)
SELECT h.code || '-G' || g, h.admin_code, h.poverty_status, h.site_id, h.relocated_on, h.origin_admin_code, h.dwelling
FROM household h CROSS JOIN generate_series(1, :n) g WHERE h.code NOT LIKE '%-G%' ORDER BY g, h.id;
INSERT INTO member (household_id, name, gender, birth_year, relation, labor_force, skills, phone, joined_on, join_reason)
SELECT c.id, m.name, m.gender, m.birth_year, m.relation, m.labor_force, m.skills, m.phone, m.joined_on, m.join_reason
FROM household c JOIN household h ON h.code = split_part(c.code, '-G', 1)
JOIN member m ON m.household_id = h.id AND m.left_on IS NULL WHERE c.code LIKE '%-G%' ORDER BY c.id, m.id;
"""


async def make_slice(n: int) -> str:
    """``anju_bench_exports``: migrated, the demo seed, each demo household and its present members copied ``n`` times."""
    from anju import db
    from anju.seed import load_demo

    s = Settings()
    await db.ensure_database(s, SLICE, drop_first=True)
    await db.migrate(s, SLICE)
    engine = db.create_engine(s, SLICE)
    await load_demo(engine)
    async with engine.begin() as c:
        await c.execute(text("SET LOCAL statement_timeout = 0"))
        for statement in COPIES.strip().split(";\n"):
            await c.execute(text(statement.strip().rstrip(";")), {"n": n} if ":n" in statement else {})
    await engine.dispose()
    return s.sqlalchemy_url(SLICE)


async def _copy(engine: Any, sql: str, params: tuple[Any, ...] = ()) -> tuple[int, int]:
    """COPY (sql) TO STDOUT (FORMAT csv) on a plain connection: (bytes, rows)."""
    size = rows = 0

    async def sink(chunk: bytes) -> None:
        nonlocal size, rows
        size += len(chunk)
        rows += chunk.count(b"\n")

    async with engine.connect() as conn:
        driver: Any = (await conn.get_raw_connection()).driver_connection
        async with driver.transaction(readonly=True):
            await driver.copy_from_query(sql, *params, output=sink, format="csv")
    return size, rows


async def _anju(sm: Any, settings: Settings, fmt: str, params: dict[str, str]) -> tuple[int, int]:
    """Anju's export, bytes consumed as a client would: (bytes, CSV lines or 0)."""
    kind, a = prepare("households", fmt, params, ADMIN, settings)
    size = lines = 0
    async for chunk in export_chunks(sm, kind, fmt, a, ADMIN, k=None, params=params):
        size += len(chunk)
        if fmt == "csv":
            lines += chunk.count(b"\n")
    return size, lines


async def _time(fn: Callable[[], Awaitable[tuple[int, int]]]) -> tuple[float, tuple[int, int]]:
    t = time.perf_counter()
    out = await fn()
    return time.perf_counter() - t, out


def _rss() -> int:
    """This process's resident memory, bytes (VmRSS)."""
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(x.split()[1]) * 1024 for x in f if x.startswith("VmRSS:"))


async def _peak_rss(fn: Callable[[], Awaitable[tuple[int, int]]]) -> tuple[float, tuple[int, int], tuple[int, int]]:
    """``_time(fn)`` and (peak resident memory, its rise above the level before): bytes, sampled every 50 ms by a thread."""
    base = peak = _rss()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.05):
            peak = max(peak, _rss())

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        d, out = await _time(fn)
    finally:
        done.set()
        t.join()
    peak = max(peak, _rss())
    return d, out, (peak, peak - base)


async def main(url: str, runs: int, county: str, formats: list[str], output: str) -> None:
    settings = Settings()
    load = os.getloadavg()
    engine = create_async_engine(url, pool_size=2)  # the COPY baselines: PostgreSQL's defaults
    service = create_async_engine(url, pool_size=2, connect_args={"server_settings": server_settings(settings, "bench")})
    sm = async_sessionmaker(service, expire_on_commit=False)  # Anju: the service's session settings
    async with engine.connect() as c:
        households, members = (
            await c.execute(text("SELECT (SELECT count(*) FROM household), (SELECT count(*) FROM member WHERE left_on IS NULL)"))
        ).one()
    cases: list[tuple[str, str, dict[str, str]]] = [("households, all", "csv", {})]
    cases += [(f"households, county {county}", fmt, {"areaCode": county}) for fmt in formats]
    lines = [
        "# Exports beside PostgreSQL's COPY (bench/exports.py)",
        "",
        f"Database: `{url.rsplit('@', 1)[-1]}` — {households:,} households, {members:,} present members (generated data).",
        f"Machine: {machine()}. {runs} runs each, alternating; medians in seconds. "
        f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        "| export | format | rows | bytes | Anju s | COPY export SQL s | COPY plain rows s | Anju ÷ COPY export SQL "
        "| Anju ÷ COPY plain | process peak RSS MiB (rise) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    scoped = scoped_sessionmaker(sm, ADMIN)
    for label, fmt, params in cases:
        kind, a = prepare("households", "csv", params, ADMIN, settings)
        async with scoped() as s:
            plan = compile_statement(source_select(kind, a, ADMIN, geometry=None, safe=True), (await s.connection()).dialect)
        where = f"AND h.admin_code LIKE '{county}%'" if params else ""  # a code from the command line, digits only
        plain = PLAIN.format(where=where)
        t_anju, t_copy, t_plain, rss = [], [], [], []
        rows = size = 0
        for _ in range(runs):
            d, (size, n), r = await _peak_rss(lambda fmt=fmt, params=params: _anju(sm, settings, fmt, params))  # type: ignore[misc]
            t_anju.append(d)
            rss.append(r)
            d, (_, rows) = await _time(lambda plan=plan: _copy(engine, plan.sql, plan.params))  # type: ignore[misc]
            t_copy.append(d)
            d, _ = await _time(lambda plain=plain: _copy(engine, plain))  # type: ignore[misc]
            t_plain.append(d)
            if fmt == "csv":
                assert n - 1 == rows, (n, rows)  # the same rows: header + every row COPY gave
        ma, mc, mp = statistics.median(t_anju), statistics.median(t_copy), statistics.median(t_plain)
        line = (
            f"| {label} | {fmt} | {rows:,} | {size:,} | {ma:.2f} | {mc:.2f} | {mp:.2f} | {ma / mc:.2f} | {ma / mp:.2f} "
            f"| {max(r[0] for r in rss) / 2**20:.0f} (+{max(r[1] for r in rss) / 2**20:.0f}) |"
        )
        print(line, flush=True)  # noqa: T201
        lines.append(line)
    lines += [
        "",
        load_note(load),
        "",
        "Anju's CSV is PostgreSQL's COPY of the export statement with a BOM and the header in front, streamed through an",
        "asyncio queue (back-pressure), so its ratio to `COPY export SQL` is the cost of that plumbing; the gap to",
        "`COPY plain rows` is the statement's own work (enum words, masking checks, spreadsheet-safe CASEs, ST_X/ST_Y).",
        "XLSX (xlsxwriter, constant memory) and GeoPackage (GDAL through pyogrio/Arrow) are written row by row in Python",
        "/ GDAL, then streamed from the file: they are compared with COPY of the same rows only to show their cost.",
        "Peak RSS: this process's largest resident memory during the export's runs (VmRSS every 50 ms), and in brackets",
        "the most it rose above its level just before a run.",
    ]
    await engine.dispose()
    await service.dispose()
    out = RESULTS / "exports.md" if not output else Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"→ {out}")  # noqa: T201


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database-url", default=SICHUAN)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--county", default="513432")
    p.add_argument("--county-formats", default="csv,xlsx,gpkg", help="formats of the one-county case ('' for none)")
    p.add_argument("--make-slice", type=int, default=0, help="build anju_bench_exports (demo × N, generated) and use it")
    p.add_argument("--output", default="", help="the results file (default bench/results/exports.md)")
    args = p.parse_args()
    if not args.county.isdigit():
        p.error("--county: digits only")
    url = asyncio.run(make_slice(args.make_slice)) if args.make_slice else args.database_url
    asyncio.run(main(url, args.runs, args.county, [f for f in args.county_formats.split(",") if f], args.output))
