"""Benchmark of importing a Sichuan-scale household roster (issue #13), beside PostgreSQL's own ``COPY`` (not a test).

Input: a GENERATED roster (``bench/imports.py`` ``generated_rows``: codes ``GEN-…``, names ``生成户…``, valid ID-number
check digits; labelled as generated) of ``--households`` households (default 360,000, ≈ 1.26 M member rows: the
Sichuan scale), written as one CSV in the households template's columns. (The read-only ``anju_sichuan`` database holds
ID-number hashes, never the numbers, so a roster exported from it would carry no ID numbers; and it was not built when
this ran. The generator gives every member a real-shaped ID number, which is the harder case for the import.)

Into a FRESH database (``anju_bench_ie``: migrated, the demo seed for the areas and site 1), in the same run:

- ``COPY`` baseline: PostgreSQL's own ``COPY`` of the same file into a plain table of the same columns (text);
- ``import_households`` — the function ``anju import households FILE`` runs — atomic, timed by phase through its
  ``progress`` callback: reading (parse + the registry's per-row rules in Python, streamed into the staging table by
  COPY), checking (the SQL checks over all rows), writing (the set-based INSERT/UPDATE statements, triggers, audit rows,
  commit);
- the same file again (idempotent: nothing written; not with ``--once``).

Export: ``bench/exports.py`` times the exports beside ``COPY … TO``; its table stands in the Export section of
bench/results/import_export.md, which this run keeps as it is (it rewrites the Import section only).

Usage: ``.venv/bin/python -m bench.import_export [--households 360000] [--once]``; writes ``bench/results/import_export.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker

from anju import db
from anju.auth import keys
from anju.seed import load_demo
from anju.settings import Settings
from bench.common import RESULTS, machine
from bench.imports import write_roster
from resolvers.access import id_number_hash
from resolvers.household_import import BY_KEY, COLUMNS, import_households
from resolvers.tabular import FileLimits

DB = "anju_bench_ie"


def word(key: str, v: Callable[[str], str]) -> str:
    """A word of the roster's column ``key`` (性别 男 …) as the enum value stored, by the import's own parser."""
    return str(BY_KEY[key].parse(v(key), key).value)


async def _copy_into_tables(eng: Any, path: Path, tmp: Path, key: bytes) -> tuple[float, str]:
    """Seconds to COPY the file's households and members into ``household`` and ``member`` (rolled back), and the counts.

    The rows as the import stores them (ID numbers as their HMAC, the located code and counts given) are prepared from
    the file first (not timed); then, in one transaction with ``session_replication_role = replica`` (no triggers, no
    foreign-key checks: the superuser of the local cluster), PostgreSQL's own COPY of the two CSV files, the tables'
    indexes maintained. What storing the same rows costs in this schema, before any checking, trigger or audit row.
    """
    households: dict[str, list[str]] = {}
    members: list[list[str]] = []
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        next(reader)  # the header: the template's columns, in order (write_roster)
        at = {c.key: i for i, c in enumerate(COLUMNS)}
        for cells in reader:
            v = dict(zip(at, cells, strict=True)).__getitem__
            code = v("household_code")
            h = households.setdefault(code, [code, v("admin_code"), v("site_id"), v("origin_admin_code"),
                                             f"SRID=4326;POINT({v('dwelling_lon')} {v('dwelling_lat')})", v("relocated_on"),
                                             word("poverty_status", v), "", "0", "0"])  # fmt: skip
            labor = BY_KEY["labor_force"].parse(v("labor_force"), "laborForce")
            h[8] = str(int(h[8]) + 1)
            h[9] = str(int(h[9]) + labor)
            hashed = id_number_hash(key, v("id_number"))
            skills = BY_KEY["skills"].parse(v("skills"), "skills") or []
            members.append([code, v("name"), word("gender", v), v("birth_year"), word("relation", v), str(labor).lower(),
                            hashed, v("id_number")[-4:], v("phone") or "", "{" + ",".join(skills) + "}",
                            "registered"])  # fmt: skip
    async with eng.connect() as c:
        raw: Any = (await c.get_raw_connection()).driver_connection
        first = await raw.fetchval("SELECT coalesce(max(id), 0) + 1 FROM household")
        ids = {code: first + i for i, code in enumerate(households)}
        located = await raw.fetchval(
            "SELECT l.code FROM anju_locate_each(ARRAY[ST_SetSRID(ST_MakePoint($1, $2), 4326)]) l", 102.40, 28.30
        )
        hfile, mfile = tmp / "h.csv", tmp / "m.csv"
        with hfile.open("w", encoding="utf-8", newline="") as f:
            csv.writer(f).writerows([ids[h[0]], *h[:7], located or "", *h[8:]] for h in households.values())
        with mfile.open("w", encoding="utf-8", newline="") as f:
            csv.writer(f).writerows([ids[m[0]], *m[1:]] for m in members)
        del households, members
        tr = raw.transaction()
        await tr.start()
        await raw.execute("SET LOCAL session_replication_role = replica")
        t0 = time.perf_counter()
        await raw.copy_to_table(
            "household", source=str(hfile), format="csv",
            columns=["id", "code", "admin_code", "site_id", "origin_admin_code", "dwelling", "relocated_on", "poverty_status",
                     "located_code", "member_count", "labor_force_count"],
        )  # fmt: skip
        await raw.copy_to_table(
            "member", source=str(mfile), format="csv", null="",
            columns=["household_id", "name", "gender", "birth_year", "relation", "labor_force", "id_number_hash",
                     "id_number_last4", "phone", "skills", "join_reason"],
        )  # fmt: skip
        seconds = time.perf_counter() - t0
        counted = await raw.fetchval("SELECT format('%s/%s stored', (SELECT count(*) FROM household WHERE id >= $1), "
                                     "(SELECT count(*) FROM member WHERE household_id >= $1))", first)  # fmt: skip
        await tr.rollback()
    return seconds, counted


async def main(households: int, once: bool = False) -> None:
    settings = Settings()
    await db.ensure_database(settings, DB, drop_first=True)
    await db.migrate(settings, DB)
    eng = db.create_engine(settings, DB)
    await load_demo(eng)
    sm = async_sessionmaker(eng, expire_on_commit=False)
    key = keys(settings).id_number_key
    limits = FileLimits(**settings.imports.model_dump())
    today = dt.date.today()
    rows_out: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "roster.csv"
        t0 = time.perf_counter()
        n_rows = write_roster(path, households)
        print(f"generated {n_rows:,} rows in {time.perf_counter() - t0:.0f} s", flush=True)  # noqa: T201
        size_mb = path.stat().st_size / 1_048_576

        async with eng.connect() as c:
            raw: Any = (await c.get_raw_connection()).driver_connection
            cols = ", ".join(f"c{i} text" for i in range(len(COLUMNS)))
            await raw.execute(f"DROP TABLE IF EXISTS copy_baseline; CREATE TABLE copy_baseline ({cols})")
            t0 = time.perf_counter()
            await raw.copy_to_table("copy_baseline", source=str(path), format="csv", header=True)
            copy_s = time.perf_counter() - t0
            await raw.execute("DROP TABLE copy_baseline")
        print(f"COPY {copy_s:.1f} s", flush=True)  # noqa: T201
        rows_out.append(("PostgreSQL `COPY` of the same file into a plain table (baseline)", copy_s, "–"))
        floor_s, floor_counts = await _copy_into_tables(eng, path, Path(tmp), key)
        print(f"COPY into the tables {floor_s:.1f} s", flush=True)  # noqa: T201
        rows_out.append((
            "PostgreSQL `COPY` of the same households and members into `household` and `member` themselves (their indexes; "
            "no triggers, no foreign-key checks; rolled back): the storage floor", floor_s, floor_counts,
        ))  # fmt: skip

        async def timed(label: str) -> tuple[float, dict[str, float], Any]:
            marks: list[tuple[str, float]] = []

            async def progress(phase: str, rows: int) -> None:
                marks.append((phase, time.perf_counter()))

            start = time.perf_counter()
            result = await import_households(
                sm, path, limits=limits, today=today, id_number_key=key,
                tolerance_meters=settings.registry.location_tolerance_meters, max_vertices=settings.features.max_vertices,
                progress=progress,
            )  # fmt: skip
            end = time.perf_counter()
            marks.append(("end", end))
            phases = {a[0]: b[1] - a[1] for a, b in zip(marks, marks[1:], strict=False)}
            print(label, f"{end - start:.1f} s", phases, result.households, result.members, flush=True)  # noqa: T201
            return end - start, phases, result

        total, phases, result = await timed("import")
        counts = f"{result.households.inserted}/{result.members.inserted} inserted"
        rows_out.append(("`anju import households` (atomic), into the fresh database", total, counts))
        for phase in ("reading", "checking", "writing"):
            if phase in phases:
                what = {
                    "reading": "parse + the registry's per-row rules (Python), COPY into staging",
                    "checking": "the SQL checks over all rows, matching, classifying",
                    "writing": "INSERT/UPDATE … SELECT, triggers, audit rows, commit",
                }[phase]
                rows_out.append((f"… of which {phase}: {what}", phases[phase], ""))
        if not once:
            total2, _, again = await timed("again")
            rows_out.append((
                "the same file again (idempotent: nothing written)", total2,
                f"{again.households.unchanged}/{again.members.unchanged} unchanged",
            ))  # fmt: skip
    await eng.dispose()
    lines = [
        "# Import/export benchmark (`bench/import_export.py`)",
        "",
        f"Machine: {machine()}. File: a GENERATED roster of {households:,} households / {n_rows:,} member rows "
        f"(CSV, {size_mb:.0f} MiB; codes GEN-…, names 生成户…), into a fresh database (migrated, demo seed). One run "
        "each (seconds; the machine's 2 cores are shared by other sessions: expect ±30 % between runs).",
        "",
        "## Import",
        "",
        "| case | s | × COPY | households/members |",
        "|---|---|---|---|",
    ]
    for label, secs, counts in rows_out:
        lines.append(f"| {label} | {secs:.1f} | {secs / copy_s:.1f}× | {counts} |")
    print("\n".join(lines))  # noqa: T201
    # this run replaces the Import section only: the Export section is bench/exports.py's table, kept as it stands
    target = RESULTS / "import_export.md"
    kept = target.read_text(encoding="utf-8") if target.exists() else ""
    export = kept[kept.index("## Export") :] if "## Export" in kept else "## Export\n\n(bench/exports.py's table.)\n"
    RESULTS.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines) + "\n\n" + export, encoding="utf-8")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--households", type=int, default=360_000)
    parser.add_argument("--once", action="store_true", help="time the first import only (not the same file again)")
    args = parser.parse_args()
    asyncio.run(main(args.households, args.once))
