"""The read API through ``schema.execute``: values a user checks, computed independently
(shapely on the source GeoJSON file, raw SQL, the report's figures)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from shapely.geometry import shape
from sqlalchemy import text

from tests.conftest import DATA, FACTS

COUNTIES = {
    f["properties"]["code"]: f
    for f in json.loads((DATA / "liangshan" / "counties.geojson").read_text(encoding="utf-8"))["features"]
}

YIXIN = """{ relocationSites(filter: {name: "彝欣社区"}) { totalCount nodes {
  id name householdCount population location adminArea { code name } } } }"""


async def test_yixin_must_show(gql):  # type: ignore[no-untyped-def]
    r = await gql(YIXIN)
    assert r.errors is None
    conn = r.data["relocationSites"]
    assert conn["totalCount"] == 1
    site = conn["nodes"][0]
    assert site["householdCount"] == FACTS["relocation_sites"][0]["households"] == 1447
    assert site["population"] == FACTS["relocation_sites"][0]["population"] == 7518
    assert site["location"]["type"] == "Point"
    assert shape(COUNTIES["513432"]["geometry"]).contains(shape(site["location"]))
    assert site["adminArea"]["code"].startswith("513432")


async def test_liangshan_counties_with_polygons(gql):  # type: ignore[no-untyped-def]
    r = await gql('{ adminArea(code: "513400") { name children(first: 50) { totalCount nodes { code name geometry } } } }')
    assert r.errors is None
    area = r.data["adminArea"]
    assert area["name"] == "凉山彝族自治州"
    nodes = area["children"]["nodes"]
    assert area["children"]["totalCount"] == len(nodes) == 17
    assert {n["code"] for n in nodes} == set(COUNTIES)
    for n in nodes:
        src = shape(COUNTIES[n["code"]]["geometry"])
        got = shape(n["geometry"])
        assert n["geometry"]["type"] == "MultiPolygon"
        assert n["name"] == COUNTIES[n["code"]]["properties"]["name"]
        # Same polygon as the source file (both on the 1e-6° grid): no area differs.
        assert got.symmetric_difference(src).area < 1e-9, n["code"]
        for poly in got.geoms:  # RFC 7946 §3.1.6: exterior rings counter-clockwise
            assert poly.exterior.is_ccw


async def test_area_tree_walks_down_and_up(gql):  # type: ignore[no-untyped-def]
    r = await gql(
        '{ adminArea(code: "513432208201") { name level parent { code level parent { code name '
        "assistanceTier parent { code parent { code parent { code } } } } } } }"
    )
    assert r.errors is None
    v = r.data["adminArea"]
    assert (v["name"], v["level"]) == ("且拖村村民委员会", "VILLAGE")
    assert v["parent"]["code"] == "513432208" and v["parent"]["level"] == "TOWNSHIP"
    assert v["parent"]["parent"]["name"] == "喜德县" and v["parent"]["parent"]["assistanceTier"] == "NATIONAL_KEY"
    assert v["parent"]["parent"]["parent"]["code"] == "513400"
    assert v["parent"]["parent"]["parent"]["parent"]["code"] == "510000"
    assert v["parent"]["parent"]["parent"]["parent"]["parent"] is None


@pytest.mark.parametrize(
    ("via", "query"),
    [
        pytest.param(
            "root",
            "query($after: String, $site: ID!) { households(filter: {siteId: $site}, first: 500, "
            "after: $after) { totalCount nodes { id } pageInfo { hasNextPage endCursor } } }",
            id="root",
        ),
        pytest.param(
            "nested",
            "query($after: String, $site: ID!) { relocationSite(id: $site) { households(first: 500, "
            "after: $after) { totalCount nodes { id } pageInfo { hasNextPage endCursor } } } }",
            id="nested",
        ),
    ],
)
async def test_pagination_walks_every_household_once(gql, engine, via, query):  # type: ignore[no-untyped-def]
    async with engine.connect() as c:
        site_id = await c.scalar(text("SELECT id FROM relocation_site WHERE name = '彝欣社区'"))
        expected = {str(i) for i in (await c.scalars(text("SELECT id FROM household WHERE site_id = :s"), {"s": site_id})).all()}
    seen: list[str] = []
    after, pages = None, 0
    while True:
        r = await gql(query, after=after, site=str(site_id))
        assert r.errors is None
        conn = r.data["households"] if via == "root" else r.data["relocationSite"]["households"]
        assert conn["totalCount"] == 1447
        seen += [n["id"] for n in conn["nodes"]]
        pages += 1
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert pages == 3  # 500 + 500 + 447
    assert len(seen) == len(set(seen)) == 1447
    assert set(seen) == expected


@pytest.mark.parametrize(
    ("area", "expected"),
    [
        pytest.param("513432208", 126, id="qietuo-township"),  # the report's 126 tea-farming households
        pytest.param("513432100004", 1447, id="yixin-community"),
        pytest.param("513432", 1447 + 126, id="xide-county"),
        pytest.param("513400", 1447 + 126, id="liangshan-prefecture"),
        pytest.param("510000", 1447 + 126, id="sichuan-province"),
        pytest.param("513401", 0, id="xichang-none"),
    ],
)
async def test_households_by_area_code(gql, area, expected):  # type: ignore[no-untyped-def]
    r = await gql("query($a: String!) { households(filter: {areaCode: $a}, first: 1) { totalCount } }", a=area)
    assert r.errors is None
    assert r.data["households"]["totalCount"] == expected


async def test_facilities_filter_by_kind_and_area(gql):  # type: ignore[no-untyped-def]
    r = await gql(
        "{ facilities(filter: {kinds: [VEGETABLE_BASE]}) { totalCount nodes { adminArea { code } } } "
        ' xide: facilities(filter: {areaCode: "513432", kinds: [TEA_PLANTATION, PROCESSING_PLANT]}) '
        "{ totalCount nodes { name kind areaMu } } }"
    )
    assert r.errors is None
    assert r.data["facilities"]["totalCount"] == FACTS["facilities"][0]["count"] == 6
    assert len({n["adminArea"]["code"] for n in r.data["facilities"]["nodes"]}) == 6
    xide = {n["kind"]: n for n in r.data["xide"]["nodes"]}
    assert r.data["xide"]["totalCount"] == 2
    assert xide["TEA_PLANTATION"]["areaMu"] == FACTS["facilities"][1]["planted_mu"]


async def test_household_nested_fields_match_rows(gql, engine):  # type: ignore[no-untyped-def]
    """One household's size, labor force, employments on a date, linkages and income vs raw SQL."""
    async with engine.connect() as c:
        hid = await c.scalar(
            text(
                "SELECT h.id FROM household h JOIN member m ON m.household_id = h.id JOIN employment e ON e.member_id = m.id "
                "WHERE e.end_on IS NOT NULL GROUP BY h.id ORDER BY count(*) DESC, h.id LIMIT 1"
            )
        )
        members = (await c.execute(text("SELECT id, labor_force FROM member WHERE household_id = :h"), {"h": hid})).all()
        emps = (
            await c.execute(
                text(
                    "SELECT e.id, e.start_on, e.end_on FROM employment e JOIN member m ON m.id = e.member_id "
                    "WHERE m.household_id = :h"
                ),
                {"h": hid},
            )
        ).all()
        income = await c.scalar(
            text("SELECT net_income FROM household_income WHERE household_id = :h AND year = 2024"), {"h": hid}
        )
        links = (await c.execute(text("SELECT year, amount FROM income_linkage WHERE household_id = :h"), {"h": hid})).all()
    day = dt.date(2024, 4, 13)
    active = {str(e.id) for e in emps if e.start_on <= day and (e.end_on is None or e.end_on >= day)}
    r = await gql(
        "query($id: ID!) { household(id: $id) { size laborForceCount members { id employments { id } } "
        'employments(asOf: "2024-04-13") { id member { household { id } } } netIncome(year: 2024) '
        "incomeLinkages { year amount } y2024: incomeLinkages(year: 2024) { year } } }",
        id=str(hid),
    )
    assert r.errors is None
    h = r.data["household"]
    assert h["size"] == len(members) == len(h["members"])
    assert h["laborForceCount"] == sum(1 for mb in members if mb.labor_force)
    assert {e["id"] for e in h["employments"]} == active
    assert all(e["member"]["household"]["id"] == str(hid) for e in h["employments"])
    assert sum(len(mb["employments"]) for mb in h["members"]) == len(emps)  # no asOf on Member: all spells
    assert h["netIncome"] == f"{income:.2f}"
    assert sorted((x["year"], x["amount"]) for x in h["incomeLinkages"]) == sorted((y, f"{a:.2f}") for y, a in links)
    assert all(x["year"] == 2024 for x in h["y2024"])


async def test_nested_query_statement_count_does_not_grow(gql, count_statements):  # type: ignore[no-untyped-def]
    q = (
        "query($n: Int) { households(first: $n) { nodes { id size site { name } adminArea { name } "
        'members { name employments(asOf: "2024-04-13") { channel facility { name } } } '
        "incomeLinkages(year: 2024) { amount facility { name } } netIncome(year: 2024) } } }"
    )
    counts = []
    seen = []
    for n in (5, 100, 500):
        with count_statements() as counter:
            r = await gql(q, n=n)
        assert r.errors is None and len(r.data["households"]["nodes"]) == n
        counts.append(len(counter.statements))
        seen.append([st.split("FROM")[1][:60] if "FROM" in st else st[:60] for st in counter.statements])
    # 5, 100 or 500 households: the same handful of batched statements (a DataLoader batch may split
    # in two when resolvers reach it on different event-loop ticks; a query per row would add hundreds).
    assert max(counts) <= 10 and max(counts) - min(counts) <= 2, seen


async def test_admin_areas_layer_area_code_is_by_code_not_polygon(gql):  # type: ignore[no-untyped-def]
    """Xide (513432) on the ADMIN_AREAS layer: the county only (in the demo data its townships and villages have no
    polygon) — not Liangshan (513400), whose outline contains it, nor the counties sharing its border."""
    r = await gql('{ featureCollection(layer: ADMIN_AREAS, filter: {areaCode: "513432"}) }')
    assert r.errors is None
    assert [f["id"] for f in r.data["featureCollection"]["features"]] == ["513432"]
