"""A hand-built fixture of 13 households covering the edges of API.md's definitions, on its own
database (migrated with Alembic, no demo seed). Expected numbers are written out in the tests,
computed by hand from the table below.

As of D = 2024-06-30 (year 2024, previous 2023); site S1 at village 513432100004 holds h1..h12,
h13 lives in village 513432100005 with no site.

| hh  | members (lf = labor force)         | employments (active on D unless said)                         |
|-----|------------------------------------|----------------------------------------------------------------|
| h1  | a (no lf), b (no lf)               | a: FLEXIBLE, not stable                                        |
| h2  | c (lf)                             | c: LOCAL_ENTERPRISE, not stable                                |
| h3  | d (lf)                             | d: WORKSHOP@F1 stable, ended D-1                               |
| h4  | e (lf)                             | e: LABOR_EXPORT stable, ends on D                              |
| h5  | f (lf)                             | f: WORKSHOP@F1 stable, starts D+1                              |
| h6  | g (lf), h (lf)                     | g: WORKSHOP@F1 stable; h: PUBLIC_WELFARE_POST stable           |
| h7  | i (lf)                             | i: SELF_EMPLOYMENT stable + FLEXIBLE not stable                |
| h8  | (none: size 0)                     |                                                                |
| h9  | j (lf)                             | none                                                           |
| h10 | k (no lf), l (no lf)               | none                                                           |
| h11 | m1 (lf), m2, m3 (no lf)            | m1: LOCAL_ENTERPRISE@F1 stable                                 |
| h12 | n (lf)                             | n: LABOR_EXPORT stable                                         |
| h13 | o (lf)                             | none                                                           |

Linkages 2024: h6 WAGE@F1 1200.00 + DIVIDEND@F2 300.50; h7 DIVIDEND@F2 100.00 (and 999.00 in
2023); h8 LAND_RENT@F2 50.00; h10 ORDER_PURCHASE 0.05 (no facility); h11 WAGE@F1 1000.00.
Net income 2023 → 2024: h2 — → 8000; h8 — → 5000; h9 36000 → 36000; h10 19000 → 20000;
h11 30000 → 27000; h12 15000 → 12000.50.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import models as m
from anju import db
from anju.settings import Settings

D = dt.date(2024, 6, 30)
EC = m.EmploymentChannel


async def _new_id(c: AsyncConnection, model: Any, **values: Any) -> int:
    """Insert one row of ``model`` and answer its id."""
    return int((await c.execute(insert(model).values(**values).returning(model.id))).scalar_one())


async def build(settings: Settings, name: str) -> tuple[AsyncEngine, dict[str, int]]:
    """Create database ``name`` (dropped first), migrate it, load the fixture; return engine and ids."""
    await db.ensure_database(settings, name, drop_first=True)
    await db.migrate(settings, name)
    eng = db.create_engine(settings, name)
    ids: dict[str, int] = {}
    async with eng.begin() as c:
        areas = [
            ("510000", "四川省", "province", None),
            ("513400", "凉山彝族自治州", "prefecture", "510000"),
            ("513432", "喜德县", "county", "513400"),
            ("513432100", "光明镇", "township", "513432"),
            ("513432100004", "彝欣社区居民委员会", "village", "513432100"),
            ("513432100005", "光明社区居民委员会", "village", "513432100"),
        ]
        await c.execute(
            insert(m.AdminArea), [{"code": a, "name": n, "level": m.AdminLevel(lv), "parent_code": p} for a, n, lv, p in areas]
        )
        pt = text("ST_SetSRID(ST_MakePoint(102.41, 28.31), 4326)")
        ids["S1"] = await _new_id(
            c, m.RelocationSite, name="S1 fixture site", kind=m.SiteKind.URBAN, admin_code="513432100004", location=pt
        )
        ids["F1"] = await _new_id(
            c,
            m.Facility,
            name="F1 workshop",
            kind=m.FacilityKind.ASSISTANCE_WORKSHOP,
            admin_code="513432100004",
            location=pt,
            site_id=ids["S1"],
            planned_jobs=4,
        )
        ids["F2"] = await _new_id(
            c, m.Facility, name="F2 vegetable base", kind=m.FacilityKind.VEGETABLE_BASE, admin_code="513432", location=pt
        )
        for i in range(1, 14):
            at_site = i <= 12
            ids[f"h{i}"] = await _new_id(
                c,
                m.Household,
                code=f"FX-{i:02d}",
                admin_code="513432100004" if at_site else "513432100005",
                site_id=ids["S1"] if at_site else None,
                poverty_status=m.PovertyStatus.POVERTY_ALLEVIATED,
            )
        members = {
            "a": ("h1", False),
            "b": ("h1", False),
            "c": ("h2", True),
            "d": ("h3", True),
            "e": ("h4", True),
            "f": ("h5", True),
            "g": ("h6", True),
            "h": ("h6", True),
            "i": ("h7", True),
            "j": ("h9", True),
            "k": ("h10", False),
            "l": ("h10", False),
            "m1": ("h11", True),
            "m2": ("h11", False),
            "m3": ("h11", False),
            "n": ("h12", True),
            "o": ("h13", True),
        }
        for key, (hh, lf) in members.items():
            ids[key] = await _new_id(
                c,
                m.Member,
                household_id=ids[hh],
                name=f"成员{key}",
                gender=m.Gender.FEMALE,
                birth_year=1985,
                relation=m.Relation.HEAD,
                labor_force=lf,
            )

        def job(
            who: str,
            ch: EC,
            stable: bool,
            start: dt.date = dt.date(2023, 1, 1),
            end: dt.date | None = None,
            facility: str | None = None,
        ) -> dict[str, Any]:
            return {
                "member_id": ids[who],
                "channel": ch,
                "stable": stable,
                "start_on": start,
                "end_on": end,
                "facility_id": ids[facility] if facility else None,
                "employer_name": "fixture",
                "monthly_wage": Decimal("2000.00"),
            }

        await c.execute(
            insert(m.Employment),
            [
                job("a", EC.FLEXIBLE, False),
                job("c", EC.LOCAL_ENTERPRISE, False),
                job("d", EC.WORKSHOP, True, end=D - dt.timedelta(days=1), facility="F1"),
                job("e", EC.LABOR_EXPORT, True, end=D),
                job("f", EC.WORKSHOP, True, start=D + dt.timedelta(days=1), facility="F1"),
                job("g", EC.WORKSHOP, True, facility="F1"),
                job("h", EC.PUBLIC_WELFARE_POST, True),
                job("i", EC.SELF_EMPLOYMENT, True),
                job("i", EC.FLEXIBLE, False),
                job("m1", EC.LOCAL_ENTERPRISE, True, facility="F1"),
                job("n", EC.LABOR_EXPORT, True),
            ],
        )
        LM = m.LinkageMechanism

        def link(hh: str, mech: m.LinkageMechanism, amount: str, fac: str | None, year: int = 2024) -> dict[str, Any]:
            return {
                "household_id": ids[hh],
                "mechanism": mech,
                "amount": Decimal(amount),
                "year": year,
                "facility_id": ids[fac] if fac else None,
            }

        await c.execute(
            insert(m.IncomeLinkage),
            [
                link("h6", LM.WAGE, "1200.00", "F1"),
                link("h6", LM.DIVIDEND, "300.50", "F2"),
                link("h7", LM.DIVIDEND, "100.00", "F2"),
                link("h7", LM.DIVIDEND, "999.00", "F2", 2023),
                link("h8", LM.LAND_RENT, "50.00", "F2"),
                link("h10", LM.ORDER_PURCHASE, "0.05", None),
                link("h11", LM.WAGE, "1000.00", "F1"),
            ],
        )
        incomes = [
            ("h2", 2024, "8000"),
            ("h8", 2024, "5000"),
            ("h9", 2023, "36000"),
            ("h9", 2024, "36000"),
            ("h10", 2023, "19000"),
            ("h10", 2024, "20000"),
            ("h11", 2023, "30000"),
            ("h11", 2024, "27000"),
            ("h12", 2023, "15000"),
            ("h12", 2024, "12000.50"),
        ]
        await c.execute(
            insert(m.HouseholdIncome), [{"household_id": ids[h], "year": y, "net_income": Decimal(v)} for h, y, v in incomes]
        )
    return eng, ids
