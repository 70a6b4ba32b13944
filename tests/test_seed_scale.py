"""The fast Sichuan-scale load (deferred status refresh, no live outbox) leaves every trigger-kept value exactly as
the triggers firing per statement would: a small generated slice loaded both ways into two fresh databases, every
table the load writes or the triggers maintain compared row for row."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from anju import db
from anju.seed import SeedSummary, load_sichuan

SLICE = {"sites": 20, "households": 3_000, "facilities": 200}
"""A small generated slice (same script, same seed as the Sichuan tier)."""

TABLES = {
    # trigger-kept: household_status (status triggers), household_residence (household_residence_insert),
    # household.member_count / labor_force_count / located_code / site_id / admin_code / relocated_on (count, locate and
    # residence triggers), employment.household_id (employment_household), household_income.household_size
    # (income_household_size), located_code of sites and facilities; the rest: the generated rows themselves.
    "household_status": "household_id, valid_from",
    "household_residence": "household_id, valid_from",
    "household": "id",
    "member": "id",
    "employment": "id",
    "income_linkage": "id",
    "household_income": "household_id, year",
    "relocation_site": "id",
    "facility": "id",
    "admin_area": "code",
}


async def _load(settings, name: str, *, deferred: bool) -> tuple[AsyncEngine, SeedSummary]:  # type: ignore[no-untyped-def]
    await db.ensure_database(settings, name, drop_first=True)
    await db.migrate(settings, name)
    eng = db.create_engine(settings, name)
    return eng, await load_sichuan(eng, **SLICE, deferred=deferred)


@pytest.fixture(scope="module")
async def both(settings) -> AsyncIterator[dict[str, tuple[AsyncEngine, SeedSummary]]]:  # type: ignore[no-untyped-def]
    loaded = {
        "triggers": await _load(settings, "anju_test_seed_triggers", deferred=False),
        "fast": await _load(settings, "anju_test_seed_fast", deferred=True),
    }
    yield loaded
    for eng, _ in loaded.values():
        await eng.dispose()


async def _rows(eng: AsyncEngine, table: str, order: str) -> list[str]:
    async with eng.connect() as c:
        return list((await c.execute(text(f"SELECT t::text FROM {table} t ORDER BY {order}"))).scalars())


@pytest.mark.parametrize("table", list(TABLES))
async def test_fast_load_equals_trigger_load(both, table: str) -> None:  # type: ignore[no-untyped-def]
    slow = await _rows(both["triggers"][0], table, TABLES[table])
    fast = await _rows(both["fast"][0], table, TABLES[table])
    assert len(fast) == len(slow)
    differing = [(s, f) for s, f in zip(slow, fast, strict=True) if s != f]
    assert differing == [], f"{len(differing)} of {len(slow)} {table} rows differ, first: {differing[:3]}"


async def test_slice_is_generated_and_counted(both) -> None:  # type: ignore[no-untyped-def]
    """The same counts both ways, the generated rows really there, and the counts the summary reports are the tables'."""
    (_, slow), (fast_eng, fast) = both["triggers"], both["fast"]
    assert slow.loaded and fast.loaded
    fields = ("sites", "facilities", "households", "members", "employments", "income_linkages")
    assert [getattr(fast, f) for f in fields] == [getattr(slow, f) for f in fields]
    async with fast_eng.connect() as c:
        r = (
            await c.execute(
                text(
                    "SELECT (SELECT count(*) FROM relocation_site WHERE name LIKE '[generated] Sichuan-scale site %') AS sites,"
                    " (SELECT count(*) FROM household WHERE code LIKE 'SC-%') AS households,"
                    " (SELECT count(*) FROM household) AS all_households, (SELECT count(*) FROM member) AS members"
                )
            )
        ).one()
    # about the slice asked for (sites split by county area, households 0.2×–1.8× the mean per site)
    assert 17 <= r.sites <= 40 and 1_500 <= r.households <= 9_000
    assert r.all_households == fast.households and r.members == fast.members


async def test_fast_load_counts_are_the_members(both) -> None:  # type: ignore[no-untyped-def]
    """Independently of the triggers: member counts and today's status recomputed from the member and employment rows."""
    async with both["fast"][0].connect() as c:
        wrong_counts = await c.scalar(
            text(
                "SELECT count(*) FROM household h LEFT JOIN LATERAL ("
                "  SELECT count(*) FILTER (WHERE m.left_on IS NULL) AS n,"
                "         count(*) FILTER (WHERE m.left_on IS NULL AND m.labor_force) AS lf"
                "  FROM member m WHERE m.household_id = h.id) x ON true"
                " WHERE (h.member_count, h.labor_force_count) IS DISTINCT FROM (x.n, x.lf)"
            )
        )
        wrong_status = await c.scalar(
            text(
                "SELECT count(*) FROM household h JOIN household_status s ON s.household_id = h.id"
                " AND s.valid_from <= current_date AND current_date < s.valid_to"
                " WHERE h.code LIKE 'SC-%' AND (s.members, s.employed) IS DISTINCT FROM ("
                "  (SELECT count(*) FROM member m WHERE m.household_id = h.id"
                "     AND coalesce(m.joined_on, date '-infinity') <= current_date"
                "     AND current_date < coalesce(m.left_on, date 'infinity')),"
                "  (SELECT count(DISTINCT e.member_id) FROM employment e JOIN member m ON m.id = e.member_id"
                "    WHERE m.household_id = h.id AND e.start_on <= current_date"
                "      AND (e.end_on IS NULL OR e.end_on >= current_date)"
                "      AND coalesce(m.joined_on, date '-infinity') <= current_date"
                "      AND current_date < coalesce(m.left_on, date 'infinity')))"
            )
        )
        generated = await c.scalar(text("SELECT count(*) FROM household WHERE code LIKE 'SC-%'"))
        with_status = await c.scalar(
            text(
                "SELECT count(DISTINCT s.household_id) FROM household_status s JOIN household h ON h.id = s.household_id"
                " WHERE h.code LIKE 'SC-%'"
            )
        )
        sized = await c.scalar(
            text(
                "SELECT count(*) FROM household_income i JOIN household h ON h.id = i.household_id"
                " WHERE h.code LIKE 'SC-%' AND i.household_size IS NOT NULL"
            )
        )
    assert (wrong_counts, wrong_status) == (0, 0)
    assert with_status == generated
    assert sized == 2 * generated  # 2023 and 2024, the size read from the refreshed status


async def test_live_outbox(both) -> None:  # type: ignore[no-untyped-def]
    """The fast load sends no live events for the generated rows (the trigger path does) and leaves the triggers on."""
    count = (
        "SELECT count(*) FROM live_pending p JOIN household h ON h.id = p.entity_id"
        " WHERE p.topic = 'household' AND h.code LIKE 'SC-%'"
    )
    async with both["triggers"][0].connect() as c:
        assert await c.scalar(text(count)) > 0
    async with both["fast"][0].connect() as c:
        assert await c.scalar(text(count)) == 0
        disabled = await c.scalar(text("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgenabled = 'D'"))
        assert disabled == 0
