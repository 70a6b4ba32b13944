"""Benchmark of ``anju import households`` (not a test: nothing here asserts a time).

A GENERATED roster of 10,000 households (codes ``GEN-…``, names ``生成…`` — generated records, labelled as such; valid
ID-number check digits and phone numbers, all in Yixin's community 513432100004 at site 1) is written as a CSV, then in
one database (``anju_bench_import``: migrated, demo seed), each run in its own fresh copy of the seeded database:

- ``COPY`` baseline: PostgreSQL's own ``COPY`` of the same file into a table of the same columns (text), nothing checked;
- the import's Python pass alone (reading, parsing, the registry's per-row rules: what COPY streams into staging);
- the import (atomic), the same as a county officer (row-level security), the same file again (idempotent: nothing
  written), and a dry run.

Usage: ``.venv/bin/python -m bench.imports [--households 10000]``; writes ``bench/results/imports.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from stdnum.cn import ric

from anju import db
from anju.auth import keys
from anju.seed import load_demo
from anju.settings import Settings
from bench.common import RESULTS, machine
from resolvers.access import Role, Viewer, scoped_sessionmaker
from resolvers.household_import import COLUMNS, _Reader, import_households, map_header
from resolvers.tabular import FileLimits, open_table

SEED_DB = "anju_bench_import_seed"
RUN_DB = "anju_bench_import"
VILLAGE, ORIGIN, SITE = "513432100004", "513432102201", 1


def generated_rows(households: int, *, start: int = 0) -> list[list[str]]:
    """Rows of a GENERATED roster: household i has 1 + i % 6 members (head, spouse, children, a parent).

    Every member has a distinct valid ID number (the sequence digits and birth date vary), names are ``生成户{i}-{k}``.
    """
    rows: list[list[str]] = []
    seq = 0
    for i in range(start, start + households):
        size = 1 + i % 6
        for k in range(size):
            relation, year = [("户主", 1970), ("配偶", 1972), ("子女", 2000), ("子女", 2004), ("子女", 2008), ("父母", 1945)][k]
            year -= (i // 1000) % 20  # spread birth years, so ID numbers stay distinct
            seq += 1
            cells = {
                "household_code": f"GEN-{i:07d}",
                "admin_code": VILLAGE,
                "poverty_status": "脱贫户" if i % 3 else "一般户",
                "site_id": str(SITE),
                "relocated_on": "2019-05-01",
                "origin_admin_code": ORIGIN,
                "dwelling_lon": f"{102.40 + (i % 100) * 0.0002:.6f}",
                "dwelling_lat": f"{28.30 + (i // 100 % 100) * 0.0002:.6f}",
                "name": f"生成户{i}-{k}",
                "gender": "男" if k % 2 == 0 else "女",
                "birth_year": str(year),
                "relation": relation,
                "labor_force": "是" if 16 <= 2024 - year <= 59 else "否",
                "id_number": _unique_id(seq, year),
                "phone": f"139{seq:08d}" if k < 2 else "",
                "skills": "缝纫、彝绣" if k == 1 else "",
                "joined_on": "",
                "join_reason": "",
            }
            rows.append([cells.get(c.key, "") for c in COLUMNS])
    return rows


def _unique_id(seq: int, year: int) -> str:
    """A GENERATED ID number unique per ``seq`` (< 365 × 1000 × 10): birth date and sequence digits from it."""
    day = dt.date(year, 1, 1) + dt.timedelta(days=seq // 1000 % 365)
    body = f"5134{32 + seq // 365_000:02d}{day:%Y%m%d}{seq % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")  # python-stdnum reads the first 17 of 18 characters


def write_roster(path: Path, households: int) -> int:
    """Write the GENERATED roster as CSV (UTF-8); returns the data rows."""
    rows = generated_rows(households)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow([c.header for c in COLUMNS])
        w.writerows(rows)
    return len(rows)


async def _fresh(settings: Settings) -> Any:
    """A fresh copy of the seeded database (CREATE DATABASE … TEMPLATE): each timed run starts from the same state."""
    admin = create_async_engine(settings.sqlalchemy_url("postgres"), isolation_level="AUTOCOMMIT")
    async with admin.connect() as c:
        await c.execute(text(f'DROP DATABASE IF EXISTS "{RUN_DB}" WITH (FORCE)'))
        await c.execute(text(f'CREATE DATABASE "{RUN_DB}" TEMPLATE "{SEED_DB}"'))
    await admin.dispose()
    return db.create_engine(settings, RUN_DB)


async def main(households: int) -> None:
    settings = Settings()
    await db.ensure_database(settings, SEED_DB, drop_first=True)
    await db.migrate(settings, SEED_DB)
    seed = db.create_engine(settings, SEED_DB)
    await load_demo(seed)
    await seed.dispose()
    key = keys(settings).id_number_key
    limits = FileLimits(**settings.imports.model_dump())
    today = dt.date.today()
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "roster.csv"
        n_rows = write_roster(path, households)
        size_mb = path.stat().st_size / 1_048_576

        async def run(label: str, **kw: Any) -> tuple[float, Any]:
            eng = await _fresh(settings)
            sm = async_sessionmaker(eng, expire_on_commit=False)
            if kw.pop("officer", False):  # a county officer of Xide: row-level security on every statement
                sm = scoped_sessionmaker(sm, Viewer(None, "bench-officer", Role.COUNTY_OFFICER, area_codes=("513432",)))
            try:
                if kw.pop("twice", False):
                    await import_households(sm, path, limits=limits, today=today, id_number_key=key)
                t0 = time.perf_counter()
                result = await import_households(sm, path, limits=limits, today=today, id_number_key=key, **kw)
                elapsed = time.perf_counter() - t0
            finally:
                await eng.dispose()
            return elapsed, result

        async def copy_baseline() -> float:
            eng = await _fresh(settings)
            try:
                async with eng.connect() as c:
                    raw: Any = (await c.get_raw_connection()).driver_connection
                    cols = ", ".join(f"c{i} text" for i in range(len(COLUMNS)))
                    await raw.execute(f"CREATE TEMP TABLE copy_baseline ({cols})")
                    t0 = time.perf_counter()
                    await raw.copy_to_table("copy_baseline", source=str(path), format="csv", header=True)
                    return time.perf_counter() - t0
            finally:
                await eng.dispose()

        def python_pass() -> float:
            table = open_table(path, limits)
            reader = _Reader(table.header, map_header(table.header), today, key, settings.features.max_vertices)
            t0 = time.perf_counter()
            for _ in reader.stage(table.rows):
                pass
            return time.perf_counter() - t0

        cases: list[tuple[str, list[float], Any]] = []
        copies = [await copy_baseline() for _ in range(3)]
        cases.append(("PostgreSQL COPY of the same file into a text table (baseline)", copies, None))
        passes = [python_pass() for _ in range(3)]
        cases.append(("the import's Python pass alone: read, parse, the registry's rules per row (no database)", passes, None))
        for label, kw in (
            ("import (atomic), empty of these households", {}),
            ("the same import as a county officer of Xide (row-level security)", {"officer": True}),
            ("the same file again (idempotent: nothing written)", {"twice": True}),
            ("dry run", {"dry_run": True}),
        ):
            times, last = [], None
            for _ in range(3):
                elapsed, last = await run(label, **dict(kw))
                times.append(elapsed)
            cases.append((label, times, last))
    base = statistics.median(copies)
    lines.append("# Import benchmark (`bench/imports.py`)")
    lines.append("")
    lines.append(
        f"Machine: {machine()}. File: a GENERATED roster of {households:,} households / {n_rows:,} member rows "
        f"(CSV, {size_mb:.1f} MiB; codes GEN-…, names 生成户…), into a fresh copy of the demo database for every run "
        "(3 runs per case; median and min/max, seconds)."
    )
    lines.append("")
    lines.append("| case | median s | min s | max s | × COPY | households ins/upd/same | members ins/upd/same |")
    lines.append("|---|---|---|---|---|---|---|")
    for label, times, result in cases:
        med = statistics.median(times)
        counts = (
            "–"
            if result is None
            else "/".join(map(str, (result.households.inserted, result.households.updated, result.households.unchanged)))
        )
        mcounts = (
            "–"
            if result is None
            else "/".join(map(str, (result.members.inserted, result.members.updated, result.members.unchanged)))
        )
        lines.append(f"| {label} | {med:.2f} | {min(times):.2f} | {max(times):.2f} | {med / base:.1f}× | {counts} | {mcounts} |")
    out = "\n".join(lines) + "\n"
    print(out)  # noqa: T201
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "imports.md").write_text(out, encoding="utf-8")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=10_000)
    asyncio.run(main(parser.parse_args().households))
