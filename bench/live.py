"""Benchmark of the live-update outbox (not a test: nothing here asserts a time).

What the statement-level triggers of migrations/sql/live_events.sql add to writes, against the same writes with those
triggers disabled (the raw-SQL baseline: every other trigger of the table still runs), and what numbering the pending
events (``anju_live_sequence()``) costs. On a database of its own (``anju_bench_live``: migrated, demo seed: 1,573
households, 1,447 of them in Xide's community). Each write runs in a transaction rolled back afterwards (the database
stays as seeded); runs alternate between the two so machine noise hits both alike.

Usage: ``.venv/bin/python -m bench.live [--repeats 7]``; writes ``bench/results/live.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from anju import db
from anju.seed import load_demo
from anju.settings import Settings
from bench.common import RESULTS, machine

NAME = "anju_bench_live"
LIVE_TRIGGERS = dict.fromkeys(("household", "member"), ("live_insert", "live_update", "live_delete"))

Write = Callable[[asyncpg.Connection], Awaitable[Any]]


async def _bulk_update(c: asyncpg.Connection) -> None:
    await c.execute("UPDATE household SET remark = '生成的备注 generated remark' WHERE county_code = '513432'")


async def _single_updates(c: asyncpg.Connection) -> None:
    ids = await c.fetch("SELECT id FROM household ORDER BY id LIMIT 200")
    for r in ids:
        await c.execute("SAVEPOINT s")
        await c.execute("UPDATE household SET remark = 'generated' WHERE id = $1", r["id"])
        await c.execute("RELEASE SAVEPOINT s")


async def _member_insert(c: asyncpg.Connection) -> None:
    await c.execute(
        "INSERT INTO member (household_id, name, gender, birth_year, relation, labor_force) "
        "SELECT id, '生成成员 GENERATED', 'male', 1990, 'other', true FROM household ORDER BY id LIMIT 1000"
    )


CASES: dict[str, tuple[str, Write]] = {
    "bulk UPDATE of 1,573 households (one statement)": ("household", _bulk_update),
    "200 single-household UPDATEs (one statement each)": ("household", _single_updates),
    "INSERT of 1,000 members into 1,000 households (one statement)": ("member", _member_insert),
}


async def _timed(c: asyncpg.Connection, write: Write, table: str, live: bool) -> float:
    tx = c.transaction()
    await tx.start()
    try:
        if not live:
            for trigger in LIVE_TRIGGERS[table]:
                await c.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
        start = time.perf_counter()
        await write(c)
        return (time.perf_counter() - start) * 1000
    finally:
        await tx.rollback()


async def main(repeats: int) -> None:
    """Run every case ``repeats`` times each way; print and write the table."""
    settings = Settings()
    await db.ensure_database(settings, NAME, drop_first=True)
    await db.migrate(settings, NAME)
    engine = db.create_engine(settings, NAME)
    await load_demo(engine)
    await engine.dispose()
    c = await asyncpg.connect(settings.sqlalchemy_url(NAME).replace("postgresql+asyncpg://", "postgresql://", 1))
    lines = [
        "# Live updates: outbox cost (`bench/live.py`)",
        "",
        machine(),
        "",
        f"Medians of {repeats} runs (each in a transaction rolled back); baseline: the same SQL with the live-event "
        "triggers disabled (every other trigger still runs).",
        "",
        "| write | with live triggers ms | baseline ms | ratio |",
        "|---|---:|---:|---:|",
    ]
    for name, (table, write) in CASES.items():
        with_live: list[float] = []
        without: list[float] = []
        for _ in range(repeats):
            with_live.append(await _timed(c, write, table, True))
            without.append(await _timed(c, write, table, False))
        a, b = statistics.median(with_live), statistics.median(without)
        lines.append(f"| {name} | {a:.1f} | {b:.1f} | {a / b:.2f} |")
    # numbering: the bulk update committed, then its 1,573 pending events numbered in one call
    numbering: list[float] = []
    for _ in range(repeats):
        await _bulk_update(c)
        start = time.perf_counter()
        await c.fetchval("SELECT anju_live_sequence()")
        numbering.append((time.perf_counter() - start) * 1000)
    events = await c.fetchval("SELECT count(*) FROM live_event")
    lines += [
        "",
        f"Numbering (`anju_live_sequence()`) of the 1,573 pending events of one committed bulk update: median "
        f"{statistics.median(numbering):.1f} ms ({events:,} events numbered in all).",
    ]
    await c.close()
    text = "\n".join(lines) + "\n"
    print(text)  # noqa: T201
    (RESULTS / "live.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    asyncio.run(main(parser.parse_args().repeats))
