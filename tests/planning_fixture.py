"""A generated area for the planning tests (issue #15), on its own database: every record here is [generated].

County 513432 is drawn as a 14 × 15 km box around (102.45, 28.30); 513431 as a box to its west. 150 households with
dwellings scattered by a seeded random generator (``SEED``), 1–4 members each, some employed on D; three relocation
sites in 513432 and one in 513431; one open assistance workshop, one closed one; a school, a clinic and a water supply;
incomes of 2023 and 2024; linkages of 2024. Tests recompute every expected figure from these raw rows.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

import models as m
from anju import db
from anju.settings import Settings

D = dt.date(2024, 6, 30)
SEED = 15
BOX = {"513432": (102.38, 28.23, 102.52, 28.37), "513431": (102.20, 28.23, 102.37, 28.37)}
"""County boxes (min lon, min lat, max lon, max lat)."""


def _pt(lon: float, lat: float) -> Any:
    return text(f"ST_SetSRID(ST_MakePoint({lon!r}, {lat!r}), 4326)")


async def build(settings: Settings, name: str) -> tuple[AsyncEngine, dict[str, Any]]:
    """Create database ``name`` (dropped first), migrate it and load the generated area; return engine and ids."""
    await db.ensure_database(settings, name, drop_first=True)
    await db.migrate(settings, name)
    eng = db.create_engine(settings, name)
    rng = random.Random(SEED)
    ids: dict[str, Any] = {"sites": {}, "households": []}
    async with eng.begin() as c:
        await c.execute(
            insert(m.AdminArea),
            [
                {"code": "510000", "name": "四川省", "level": m.AdminLevel.PROVINCE, "parent_code": None},
                {"code": "513400", "name": "凉山彝族自治州", "level": m.AdminLevel.PREFECTURE, "parent_code": "510000"},
            ],
        )
        for code, (x0, y0, x1, y1) in BOX.items():
            await c.execute(
                insert(m.AdminArea).values(
                    code=code,
                    name=f"[generated] county {code}",
                    level=m.AdminLevel.COUNTY,
                    parent_code="513400",
                    geom=text(f"ST_Multi(ST_MakeEnvelope({x0}, {y0}, {x1}, {y1}, 4326))"),
                )
            )
            await c.execute(
                insert(m.AdminArea).values(
                    code=code + "100", name=f"[generated] town {code}", level=m.AdminLevel.TOWNSHIP, parent_code=code
                )
            )
        site_points = {"A": (102.41, 28.26), "B": (102.47, 28.31), "C": (102.50, 28.35), "W": (102.25, 28.30)}
        for key, (lon, lat) in site_points.items():
            county = "513431" if key == "W" else "513432"
            ids["sites"][key] = (
                await c.execute(
                    insert(m.RelocationSite)
                    .values(
                        name=f"[generated] site {key}", kind=m.SiteKind.TOWN, admin_code=county + "100", location=_pt(lon, lat)
                    )
                    .returning(m.RelocationSite.id)
                )
            ).scalar_one()
        facilities = [
            ("workshop open", m.FacilityKind.ASSISTANCE_WORKSHOP, (102.42, 28.27), None),
            ("workshop closed", m.FacilityKind.ASSISTANCE_WORKSHOP, (102.48, 28.33), dt.date(2024, 1, 1)),
            ("school", m.FacilityKind.SCHOOL, (102.46, 28.30), None),
            ("clinic", m.FacilityKind.CLINIC, (102.30, 28.30), None),
            ("water", m.FacilityKind.WATER_SUPPLY, (102.49, 28.34), None),
        ]
        for name, kind, (lon, lat), closed in facilities:
            ids[name] = (
                await c.execute(
                    insert(m.Facility)
                    .values(
                        name=f"[generated] {name}",
                        kind=kind,
                        admin_code="513432",
                        location=_pt(lon, lat),
                        opened_on=dt.date(2020, 1, 1),
                        closed_on=closed,
                    )
                    .returning(m.Facility.id)
                )
            ).scalar_one()
        for i in range(150):
            county = "513431" if i % 10 == 9 else "513432"
            x0, y0, x1, y1 = BOX[county]
            lon, lat = rng.uniform(x0, x1), rng.uniform(y0, y1)
            # households near a site live there (site's county only)
            site = next(
                (
                    sid
                    for key, sid in ids["sites"].items()
                    if (key == "W") == (county == "513431")
                    and abs(site_points[key][0] - lon) < 0.03
                    and abs(site_points[key][1] - lat) < 0.03
                ),
                None,
            )
            hid = (
                await c.execute(
                    insert(m.Household)
                    .values(
                        code=f"GEN-{i:03d}",
                        admin_code=county + "100",
                        site_id=site,
                        dwelling=_pt(lon, lat),
                        poverty_status=m.PovertyStatus.POVERTY_ALLEVIATED if i % 3 else m.PovertyStatus.NON_POOR,
                    )
                    .returning(m.Household.id)
                )
            ).scalar_one()
            ids["households"].append(hid)
            for j in range(rng.randint(1, 4)):
                lf = rng.random() < 0.7
                mid = (
                    await c.execute(
                        insert(m.Member)
                        .values(
                            household_id=hid,
                            name=f"[generated] 成员{i}-{j}",
                            gender=m.Gender.MALE if j % 2 else m.Gender.FEMALE,
                            birth_year=1970 + rng.randint(0, 35),
                            relation=m.Relation.HEAD if j == 0 else m.Relation.CHILD,
                            labor_force=lf,
                        )
                        .returning(m.Member.id)
                    )
                ).scalar_one()
                roll = rng.random()
                if lf and roll < 0.45:  # employed (a third of them at the open workshop); some spells ended before D
                    start = dt.date(2022, 1, 1) + dt.timedelta(days=rng.randint(0, 900))
                    end = start + dt.timedelta(days=rng.randint(30, 700)) if rng.random() < 0.4 else None
                    await c.execute(
                        insert(m.Employment).values(
                            member_id=mid,
                            channel=m.EmploymentChannel.LOCAL_ENTERPRISE,
                            facility_id=ids["workshop open"] if roll < 0.15 else None,
                            start_on=start,
                            end_on=end,
                            stable=rng.random() < 0.7,
                            employer_name="[generated]",
                            monthly_wage=Decimal("2500.00"),
                        )
                    )
            for year in (2023, 2024):
                if rng.random() < 0.85:
                    await c.execute(
                        insert(m.HouseholdIncome).values(
                            household_id=hid,
                            year=year,
                            net_income=Decimal(rng.randint(8000, 60000)),
                            surveyed_on=dt.date(year, 11, 1),
                        )
                    )
            if rng.random() < 0.3:
                await c.execute(
                    insert(m.IncomeLinkage).values(
                        household_id=hid,
                        facility_id=ids["workshop open"],
                        mechanism=m.LinkageMechanism.WAGE,
                        year=2024,
                        amount=Decimal(rng.randint(500, 9000)),
                    )
                )
        # [generated] trainings (精培) of labor-force members, 2021–2024, some completed; follow-up visits of some
        members = (
            await c.execute(
                text(
                    "SELECT m.id, m.household_id FROM member m JOIN household h ON h.id = m.household_id "
                    "WHERE m.labor_force ORDER BY m.id"
                )
            )
        ).all()
        ids["trainings"] = []
        for mid, hid in rng.sample(members, 60):
            start = dt.date(2021, 1, 1) + dt.timedelta(days=rng.randint(0, 1200))
            end = start + dt.timedelta(days=rng.randint(20, 120))
            done = rng.random() < 0.8 and end <= D
            tid = (
                await c.execute(
                    insert(m.TrainingRecord)
                    .values(
                        member_id=mid,
                        household_id=hid,
                        course=rng.choice(
                            ["[generated] 彝绣 embroidery", "[generated] 电工 electrician", "[generated] 家政 housekeeping"]
                        ),
                        provider_facility_id=ids["workshop open"] if rng.random() < 0.5 else None,
                        provider_name="[generated] 县职业技能培训中心",
                        started_on=start,
                        ended_on=end if done or rng.random() < 0.5 else None,
                        completed=done,
                        certificate="[generated] 结业证书" if done and rng.random() < 0.6 else None,
                    )
                    .returning(m.TrainingRecord.id)
                )
            ).scalar_one()
            ids["trainings"].append(tid)
            for _ in range(rng.randint(0, 3)):
                await c.execute(
                    insert(m.TrainingFollowUp).values(
                        training_id=tid,
                        household_id=hid,
                        visited_on=end + dt.timedelta(days=rng.randint(30, 700)),
                        note="[generated]",
                    )
                )
        pid = (
            await c.execute(
                insert(m.CooperationPartner)
                .values(name="[generated] partner", kind=m.PartnerKind.ENTERPRISE)
                .returning(m.CooperationPartner.id)
            )
        ).scalar_one()
        await c.execute(insert(m.PartnerCounty).values(partner_id=pid, county_code="513432"))
        ids["partner"] = pid
        ids["project"] = (
            await c.execute(
                insert(m.CooperationProject)
                .values(
                    partner_id=pid,
                    name="[generated] workshop co-funding",
                    county_code="513432",
                    facility_id=ids["workshop open"],
                    year=2024,
                    funds=Decimal("500000.00"),
                )
                .returning(m.CooperationProject.id)
            )
        ).scalar_one()
        ids["site project"] = (
            await c.execute(
                insert(m.CooperationProject)
                .values(
                    partner_id=pid,
                    name="[generated] site B services",
                    county_code="513432",
                    site_id=ids["sites"]["B"],
                    year=2024,
                    funds=Decimal("100000.00"),
                )
                .returning(m.CooperationProject.id)
            )
        ).scalar_one()
    return eng, ids
