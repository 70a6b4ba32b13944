"""The demo dataset agrees with the report (data/seed-article-facts.json) on its date, recomputed
here in Python from raw rows — a different method from the seed's own SQL check."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import defaultdict

from shapely.geometry import Point, shape
from sqlalchemy import text

from anju.seed import load_demo
from tests.conftest import DATA, FACTS

REPORT_DATE = dt.date.fromisoformat(FACTS["source"]["date"])
SITE = FACTS["relocation_sites"][0]


async def _rows(engine, sql, **params):  # type: ignore[no-untyped-def]
    async with engine.connect() as c:
        return (await c.execute(text(sql), params)).mappings().all()


async def test_yixin_employment_matches_report(engine):  # type: ignore[no-untyped-def]
    members = await _rows(
        engine,
        "SELECT m.id, m.household_id, m.labor_force FROM member m "
        "JOIN household h ON h.id = m.household_id JOIN relocation_site s ON s.id = h.site_id "
        "WHERE s.name = :n",
        n=SITE["name"],
    )
    emps = await _rows(
        engine,
        "SELECT e.member_id, e.start_on, e.end_on, e.stable, f.kind AS facility_kind "
        "FROM employment e LEFT JOIN facility f ON f.id = e.facility_id",
    )
    by_member = defaultdict(list)
    for e in emps:
        if e["start_on"] <= REPORT_DATE and (e["end_on"] is None or e["end_on"] >= REPORT_DATE):
            by_member[e["member_id"]].append(e)
    households: dict[int, list] = defaultdict(list)
    for mb in members:
        households[mb["household_id"]].append(mb)
    with_labor = [h for h, ms in households.items() if any(m["labor_force"] for m in ms)]
    covered = [h for h in with_labor if any(e["stable"] for m in households[h] for e in by_member[m["id"]])]
    employed = {m["id"] for m in members if by_member[m["id"]]}
    at_base = {m["id"] for m in members if any(e["facility_kind"] == "training_base" for e in by_member[m["id"]])}

    assert len(households) == SITE["households"] == 1447
    assert len(members) == SITE["population"] == 7518
    assert SITE["every_household_with_labor_force_has_stable_employment"] is True
    assert len(with_labor) > 0 and len(covered) == len(with_labor)
    assert len(employed) >= SITE["transferred_employment_last_year_at_least"]  # 3,000+
    assert len(at_base) >= SITE["training_base"]["nearby_employed_at_least"]  # 500+
    # Every channel of the report is represented among active employments.
    channels = {r["channel"] for r in await _rows(engine, "SELECT DISTINCT channel::text FROM employment")}
    assert {"labor_export", "workshop", "self_employment", "public_welfare_post"} <= channels


async def test_qietuo_tea_households(engine):  # type: ignore[no-untyped-def]
    tea = FACTS["facilities"][1]
    rows = await _rows(
        engine,
        "SELECT l.year, count(DISTINCT l.household_id) AS n, bool_and(h.site_id IS NULL) AS no_site, "
        "bool_and(h.admin_code = :v) AS in_village FROM income_linkage l "
        "JOIN household h ON h.id = l.household_id JOIN facility f ON f.id = l.facility_id "
        "WHERE f.kind = 'tea_plantation' GROUP BY l.year ORDER BY l.year",
        v=FACTS["admin_codes"]["qietuo_village_committee"],
    )
    assert [(r["year"], r["n"], r["no_site"], r["in_village"]) for r in rows] == [
        (2023, tea["tea_farming_households"], True, True),
        (2024, tea["tea_farming_households"], True, True),
    ]
    area = await _rows(engine, "SELECT area_mu FROM facility WHERE kind = 'tea_plantation'")
    assert [r["area_mu"] for r in area] == [tea["planted_mu"]]


async def test_admin_areas_are_the_real_sources(engine):  # type: ignore[no-untyped-def]
    with (DATA / "liangshan" / "xide_divisions.csv").open(encoding="utf-8") as f:
        source = {r["code"]: r for r in csv.DictReader(f)}
    rows = await _rows(engine, "SELECT code, name, level::text, parent_code FROM admin_area WHERE code LIKE '513432%'")
    got = {r["code"]: r for r in rows}
    assert set(got) == set(source)
    for code, r in source.items():
        assert got[code]["name"] == r["name"]
        assert got[code]["level"] == r["level"]
        if r["level"] != "county":
            assert got[code]["parent_code"] == r["parent_code"]
    assert got["513432"]["parent_code"] == "513400"
    tiers = await _rows(engine, "SELECT count(*) AS n FROM admin_area WHERE assistance_tier = 'national_key'")
    assert tiers[0]["n"] == FACTS["province"]["liangshan_national_key_counties"]


async def test_points_lie_in_their_counties(engine):  # type: ignore[no-untyped-def]
    counties = {
        f["properties"]["code"]: shape(f["geometry"])
        for f in json.loads((DATA / "liangshan" / "counties.geojson").read_text(encoding="utf-8"))["features"]
    }
    rows = await _rows(
        engine,
        "SELECT left(admin_code, 6) AS county, ST_X(location) AS x, ST_Y(location) AS y FROM facility "
        "UNION ALL SELECT left(admin_code, 6), ST_X(location), ST_Y(location) FROM relocation_site "
        "UNION ALL SELECT county_code, ST_X(dwelling), ST_Y(dwelling) FROM household",
    )
    outside = [r for r in rows if not counties[r["county"]].contains(Point(r["x"], r["y"]))]
    assert len(rows) == 9 + 1 + 1573 and outside == []


async def test_seed_is_idempotent(engine):  # type: ignore[no-untyped-def]
    sql = (
        "SELECT (SELECT count(*) FROM household) h, (SELECT count(*) FROM member) m, (SELECT count(*) FROM employment) e,"
        " (SELECT count(*) FROM income_linkage) l, (SELECT count(*) FROM admin_area) a, (SELECT count(*) FROM facility) f"
    )
    before = dict((await _rows(engine, sql))[0])
    again = await load_demo(engine)
    assert again.loaded is False
    assert dict((await _rows(engine, sql))[0]) == before
