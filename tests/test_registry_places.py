"""Keeping the registry: create, update and close relocation sites and facilities on a fresh copy of the
demo seed (the shared seed stays clean). Effects, omitted vs null, optimistic locking, audit rows, who
may write where (row-level security for officers), bad inputs (code, field, nothing written), and
closed facilities dropping out of the proximity queries after their date — expectations computed
independently (pyproj geodesics over the raw rows)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pyproj import Geod
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker
from starlette.testclient import TestClient

from anju import db
from anju.app import create_app
from anju.auth import issue_token
from anju.seed import load_demo
from resolvers.access import Role, Viewer, add_user
from schema import Context
from tests.conftest import ADMIN
from tests.digest import digest

GEOD = Geod(ellps="WGS84")
DB = "anju_test_places"
XIDE_OFFICER = Viewer(None, "o-xide", Role.COUNTY_OFFICER, area_codes=("513432",))
ZHAOJUE_OFFICER = Viewer(None, "o-zhaojue", Role.COUNTY_OFFICER, area_codes=("513431",))
PLANNER = Viewer(None, "planner", Role.PLANNER)
YIXIN = [102.410818, 28.31002]  # the demo site 彝欣社区, in village 513432100004 of Xide (513432)
ZHAOJUE = [102.86033507231512, 28.03804335745953]  # Zhaojue's vegetable park, ~55 km from Xide's boundary
SQUARE = {
    "type": "Polygon",
    "coordinates": [[[102.409, 28.309], [102.412, 28.309], [102.412, 28.311], [102.409, 28.311], [102.409, 28.309]]],
}

SITE = (
    "relocationSite { id name kind version closedOn openedOn plannedHouseholds plannedPopulation boundary location "
    "adminArea { code } originAreas { code } }"
)
FACILITY = "facility { id name kind version closedOn openedOn operator footprint areaMu plannedJobs site { id } }"
CREATE_SITE = f"mutation($in: CreateRelocationSiteInput!) {{ createRelocationSite(input: $in) {{ {SITE} }} }}"
UPDATE_SITE = f"mutation($in: UpdateRelocationSiteInput!) {{ updateRelocationSite(input: $in) {{ {SITE} }} }}"
CLOSE_SITE = f"mutation($in: ClosePlaceInput!) {{ closeRelocationSite(input: $in) {{ {SITE} }} }}"
CREATE_FACILITY = f"mutation($in: CreateFacilityInput!) {{ createFacility(input: $in) {{ {FACILITY} }} }}"
UPDATE_FACILITY = f"mutation($in: UpdateFacilityInput!) {{ updateFacility(input: $in) {{ {FACILITY} }} }}"
CLOSE_FACILITY = f"mutation($in: ClosePlaceInput!) {{ closeFacility(input: $in) {{ {FACILITY} }} }}"


@pytest.fixture(scope="module")
async def px(settings, schema):  # type: ignore[no-untyped-def]
    """(run, snapshot, sql, settings of the copy): a freshly seeded database of this module's own."""
    await db.ensure_database(settings, DB, drop_first=True)
    await db.migrate(settings, DB)
    eng = db.create_engine(settings, DB)
    await load_demo(eng)
    sm = async_sessionmaker(eng, expire_on_commit=False)

    async def run(query: str, viewer: Viewer = ADMIN, **variables: Any) -> Any:
        ctx = Context(sessionmaker=sm, settings=settings, viewer=viewer)
        return await schema.execute(query, variable_values=variables or None, context_value=ctx)

    async def sql(q: str, **params: Any) -> list[Any]:
        async with eng.connect() as c:
            return list((await c.execute(text(q), params)).all())

    async def snapshot() -> str:
        """Equal digests = nothing written (tests/digest.py: every table)."""
        return await digest(eng)

    copy = settings.model_copy(update={"local_db": settings.local_db.model_copy(update={"database": DB})})
    yield run, snapshot, sql, copy, sm
    await eng.dispose()


def ok(r: Any) -> Any:
    assert r.errors is None, [e.formatted for e in r.errors]
    return r.data


def today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()


async def new_facility(run: Any, **over: Any) -> dict[str, Any]:
    values = {
        "name": "测试车间",
        "kind": "ASSISTANCE_WORKSHOP",
        "adminCode": "513432100004",
        "location": {"type": "Point", "coordinates": YIXIN},
    }
    return ok(await run(CREATE_FACILITY, **{"in": {**values, **over}}))["createFacility"]["facility"]  # type: ignore[no-any-return]


async def test_create_update_close_relocation_site(px):  # type: ignore[no-untyped-def]
    run, _, sql, _, _ = px
    created = ok(
        await run(
            CREATE_SITE,
            **{
                "in": {
                    "name": " 新村安置点 ",
                    "kind": "TOWN",
                    "adminCode": "513432100004",
                    "location": {"type": "Point", "coordinates": YIXIN},
                    "boundary": SQUARE,
                    "plannedHouseholds": 100,
                    "plannedPopulation": 420,
                    "openedOn": "2020-05-01",
                    "originAreaCodes": ["513432100201", "513432100201"],
                }
            },
        )
    )["createRelocationSite"]["relocationSite"]
    sid = created["id"]
    assert {k: created[k] for k in ("name", "kind", "version", "closedOn", "openedOn", "plannedHouseholds")} == {
        "name": "新村安置点",
        "kind": "TOWN",
        "version": 1,
        "closedOn": None,
        "openedOn": "2020-05-01",
        "plannedHouseholds": 100,
    }
    assert created["boundary"] == {"type": "MultiPolygon", "coordinates": [SQUARE["coordinates"]]}
    assert created["location"] == {"type": "Point", "coordinates": YIXIN}
    assert created["adminArea"] == {"code": "513432100004"} and created["originAreas"] == [{"code": "513432100201"}]

    # omitted = unchanged; null clears a nullable field
    upd = ok(await run(UPDATE_SITE, **{"in": {"id": sid, "version": 1, "boundary": None, "plannedHouseholds": 120}}))
    site = upd["updateRelocationSite"]["relocationSite"]
    assert (site["version"], site["boundary"], site["plannedHouseholds"]) == (2, None, 120)
    assert (site["name"], site["plannedPopulation"], site["openedOn"], site["originAreas"]) == (
        "新村安置点",
        420,
        "2020-05-01",
        [{"code": "513432100201"}],
    )
    upd = ok(await run(UPDATE_SITE, **{"in": {"id": sid, "version": 2, "originAreaCodes": None}}))
    assert upd["updateRelocationSite"]["relocationSite"]["originAreas"] == []

    closed = ok(await run(CLOSE_SITE, **{"in": {"id": sid, "version": 3, "closedOn": "2024-01-01"}}))
    assert closed["closeRelocationSite"]["relocationSite"]["closedOn"] == "2024-01-01"
    assert closed["closeRelocationSite"]["relocationSite"]["version"] == 4
    # a closed site stays listed
    listed = ok(await run('{ relocationSites(filter: {nameContains: "新村"}) { nodes { id closedOn } } }'))
    assert listed["relocationSites"]["nodes"] == [{"id": sid, "closedOn": "2024-01-01"}]

    rows = await sql(
        "SELECT action, entity, entity_id, before, after, user_name FROM audit_log WHERE entity = 'relocation_site' ORDER BY id"
    )
    assert [(r.action, r.entity, r.entity_id, r.user_name) for r in rows] == [
        ("createRelocationSite", "relocation_site", sid, "test-admin"),
        ("updateRelocationSite", "relocation_site", sid, "test-admin"),
        ("updateRelocationSite", "relocation_site", sid, "test-admin"),
        ("closeRelocationSite", "relocation_site", sid, "test-admin"),
    ]
    first, second = rows[0], rows[1]
    assert first.before is None and first.after["planned_households"] == 100 and first.after["version"] == 1
    assert first.after["origin_area_codes"] == ["513432100201"] and "boundary" not in first.after
    assert (second.before["planned_households"], second.after["planned_households"]) == (100, 120)
    assert (rows[3].before["closed_on"], rows[3].after["closed_on"]) == (None, "2024-01-01")


async def test_create_update_close_facility(px):  # type: ignore[no-untyped-def]
    run, _, sql, _, _ = px
    f = await new_facility(
        run, footprint=SQUARE, operator="某合作社", areaMu=12.5, plannedJobs=30, siteId="1", openedOn="2021-03-01"
    )
    assert (f["version"], f["operator"], f["areaMu"], f["plannedJobs"], f["site"]) == (1, "某合作社", 12.5, 30, {"id": "1"})
    assert f["footprint"]["type"] == "MultiPolygon"
    upd = ok(
        await run(UPDATE_FACILITY, **{"in": {"id": f["id"], "version": 1, "operator": None, "footprint": None, "siteId": None}})
    )
    g = upd["updateFacility"]["facility"]
    assert (g["version"], g["operator"], g["footprint"], g["site"], g["areaMu"], g["name"]) == (
        2,
        None,
        None,
        None,
        12.5,
        "测试车间",
    )
    closed = ok(await run(CLOSE_FACILITY, **{"in": {"id": f["id"], "version": 2, "closedOn": "2023-12-31"}}))
    assert (closed["closeFacility"]["facility"]["closedOn"], closed["closeFacility"]["facility"]["version"]) == ("2023-12-31", 3)
    # still there by id, in lists and on the map (with its closing date)
    again = ok(await run("query($id: ID!) { facility(id: $id) { closedOn } }", id=f["id"]))
    assert again["facility"] == {"closedOn": "2023-12-31"}
    layer = ok(await run('{ featureCollection(layer: FACILITIES, filter: {areaCode: "513432100004"}, zoom: 14) }'))
    props = {str(x["id"]): x["properties"] for x in layer["featureCollection"]["features"]}
    assert props[f["id"]]["closedOn"] == "2023-12-31"
    rows = await sql(
        "SELECT action, before, after FROM audit_log WHERE entity = 'facility' AND entity_id = :i ORDER BY id", i=f["id"]
    )
    assert [r.action for r in rows] == ["createFacility", "updateFacility", "closeFacility"]
    assert (rows[1].before["operator"], rows[1].after["operator"]) == ("某合作社", None)


async def test_stale_version_is_a_conflict_and_writes_nothing(px):  # type: ignore[no-untyped-def]
    run, snapshot, _, _, _ = px
    f = await new_facility(run)
    ok(await run(UPDATE_FACILITY, **{"in": {"id": f["id"], "version": 1, "plannedJobs": 5}}))
    before = await snapshot()
    for query, values in (
        (UPDATE_FACILITY, {"plannedJobs": 9}),
        (CLOSE_FACILITY, {"closedOn": "2024-01-01"}),
    ):
        r = await run(query, **{"in": {"id": f["id"], "version": 1, **values}})
        assert r.errors[0].extensions == {"code": "CONFLICT", "field": "version"}, r.errors[0].message
    r = await run(UPDATE_SITE, **{"in": {"id": "1", "version": 7, "name": "x"}})
    assert r.errors[0].extensions == {"code": "CONFLICT", "field": "version"}
    assert await snapshot() == before
    r = await run(UPDATE_FACILITY, **{"in": {"id": "999999", "version": 1, "name": "x"}})
    assert r.errors[0].extensions == {"code": "NOT_FOUND", "field": "id"}
    assert await snapshot() == before


async def test_who_may_write_where(px):  # type: ignore[no-untyped-def]
    run, snapshot, sql, _, _ = px
    # the Xide officer records and changes a facility in Xide
    r = await run(
        CREATE_FACILITY,
        XIDE_OFFICER,
        **{
            "in": {
                "name": "喜德诊所",
                "kind": "CLINIC",
                "adminCode": "513432",
                "location": {"type": "Point", "coordinates": YIXIN},
            }
        },
    )
    f = ok(r)["createFacility"]["facility"]
    r = await run(UPDATE_FACILITY, XIDE_OFFICER, **{"in": {"id": f["id"], "version": 1, "plannedJobs": 3}})
    assert ok(r)["updateFacility"]["facility"]["version"] == 2
    r = await run(
        CREATE_SITE,
        XIDE_OFFICER,
        **{
            "in": {
                "name": "官员安置点",
                "kind": "OTHER",
                "adminCode": "513432100004",
                "location": {"type": "Point", "coordinates": YIXIN},
                "originAreaCodes": ["513432100201"],
            }
        },
    )
    assert ok(r)["createRelocationSite"]["relocationSite"]["originAreas"] == [{"code": "513432100201"}]
    rows = await sql("SELECT user_name, role FROM audit_log WHERE entity = 'facility' AND entity_id = :i ORDER BY id", i=f["id"])
    assert [tuple(x) for x in rows] == [("o-xide", "county_officer")] * 2

    before = await snapshot()
    forbidden: list[tuple[Viewer, str, dict[str, Any]]] = [
        # another county's officer: neither a new place in Xide nor a change to one
        (
            ZHAOJUE_OFFICER,
            CREATE_FACILITY,
            {"name": "x", "kind": "CLINIC", "adminCode": "513432", "location": {"type": "Point", "coordinates": YIXIN}},
        ),
        (ZHAOJUE_OFFICER, UPDATE_FACILITY, {"id": f["id"], "version": 2, "plannedJobs": 9}),
        (ZHAOJUE_OFFICER, CLOSE_FACILITY, {"id": f["id"], "version": 2, "closedOn": "2024-01-01"}),
        (ZHAOJUE_OFFICER, UPDATE_SITE, {"id": "1", "version": 1, "plannedHouseholds": 1}),
        (
            ZHAOJUE_OFFICER,
            CREATE_SITE,
            {"name": "x", "kind": "OTHER", "adminCode": "513432100004", "location": {"type": "Point", "coordinates": YIXIN}},
        ),
        # the Xide officer cannot move its facility into Zhaojue
        (
            XIDE_OFFICER,
            UPDATE_FACILITY,
            {"id": f["id"], "version": 2, "adminCode": "513431", "location": {"type": "Point", "coordinates": ZHAOJUE}},
        ),
        # planners and partners never write places
        (
            PLANNER,
            CREATE_FACILITY,
            {"name": "x", "kind": "CLINIC", "adminCode": "513432", "location": {"type": "Point", "coordinates": YIXIN}},
        ),
        (PLANNER, UPDATE_FACILITY, {"id": f["id"], "version": 2, "plannedJobs": 9}),
        (PLANNER, CLOSE_SITE, {"id": "1", "version": 1, "closedOn": "2024-01-01"}),
    ]
    pid = (await sql("SELECT id FROM cooperation_partner ORDER BY id LIMIT 1"))[0][0]
    partner = Viewer(None, "p", Role.PARTNER, partner_id=pid, paired_counties=("513432",))
    forbidden += [
        (
            partner,
            CREATE_SITE,
            {"name": "x", "kind": "OTHER", "adminCode": "513432100004", "location": {"type": "Point", "coordinates": YIXIN}},
        ),
        (partner, UPDATE_FACILITY, {"id": f["id"], "version": 2, "plannedJobs": 9}),
    ]
    for viewer, query, values in forbidden:
        r = await run(query, viewer, **{"in": values})
        assert r.errors is not None and r.errors[0].extensions["code"] == "FORBIDDEN", (viewer.name, query[:40], r)
        assert list(r.data.values()) == [None]
    assert await snapshot() == before


BAD = [
    pytest.param(CREATE_SITE, {"adminCode": "513432999999"}, "NOT_FOUND", "adminCode", id="unknown-admin-code"),
    pytest.param(CREATE_SITE, {"adminCode": "5134"}, "BAD_USER_INPUT", "adminCode", id="malformed-admin-code"),
    pytest.param(CREATE_SITE, {"adminCode": "513400"}, "BAD_USER_INPUT", "adminCode", id="site-in-a-prefecture"),
    pytest.param(CREATE_SITE, {"adminCode": "510000"}, "BAD_USER_INPUT", "adminCode", id="site-in-a-province"),
    pytest.param(
        CREATE_SITE, {"location": {"type": "Point", "coordinates": ZHAOJUE}}, "BAD_USER_INPUT", "location", id="far-outside-area"
    ),
    pytest.param(CREATE_SITE, {"location": SQUARE}, "BAD_USER_INPUT", "location", id="location-not-a-point"),
    pytest.param(
        CREATE_SITE, {"location": {"type": "Point", "coordinates": [200, 28]}}, "BAD_USER_INPUT", "location", id="lon-range"
    ),
    pytest.param(
        CREATE_SITE,
        {
            "boundary": {
                "type": "Polygon",
                "coordinates": [[[102.40, 28.30], [102.42, 28.32], [102.42, 28.30], [102.40, 28.32], [102.40, 28.30]]],
            }
        },
        "BAD_USER_INPUT",
        "boundary",
        id="self-intersecting-boundary",
    ),
    pytest.param(CREATE_SITE, {"plannedHouseholds": -1}, "BAD_USER_INPUT", "plannedHouseholds", id="negative-households"),
    pytest.param(CREATE_SITE, {"plannedPopulation": -5}, "BAD_USER_INPUT", "plannedPopulation", id="negative-population"),
    pytest.param(CREATE_SITE, {"name": "  "}, "BAD_USER_INPUT", "name", id="blank-name"),
    pytest.param(
        CREATE_SITE, {"originAreaCodes": ["513432100201", "513432999998"]}, "NOT_FOUND", "originAreaCodes", id="unknown-origin"
    ),
    pytest.param(CREATE_FACILITY, {"areaMu": -0.5}, "BAD_USER_INPUT", "areaMu", id="negative-area"),
    pytest.param(CREATE_FACILITY, {"plannedJobs": -1}, "BAD_USER_INPUT", "plannedJobs", id="negative-jobs"),
    pytest.param(CREATE_FACILITY, {"siteId": "999999"}, "NOT_FOUND", "siteId", id="unknown-site"),
    pytest.param(CREATE_FACILITY, {"siteId": "abc"}, "BAD_USER_INPUT", "siteId", id="malformed-site-id"),
    pytest.param(
        CREATE_FACILITY,
        {"footprint": {"type": "Point", "coordinates": YIXIN}},
        "BAD_USER_INPUT",
        "footprint",
        id="footprint-point",
    ),
    pytest.param(CREATE_FACILITY, {"openedOn": "1800-01-01"}, "BAD_USER_INPUT", "openedOn", id="opened-on-range"),
]


@pytest.mark.parametrize(("query", "over", "code", "field"), BAD)
async def test_bad_create_input_is_named_and_writes_nothing(px, query, over, code, field):  # type: ignore[no-untyped-def]
    run, snapshot, _, _, _ = px
    base = {"name": "坏输入", "adminCode": "513432100004", "location": {"type": "Point", "coordinates": YIXIN}}
    base["kind"] = "OTHER" if query == CREATE_SITE else "CLINIC"
    before = await snapshot()
    r = await run(query, **{"in": {**base, **over}})
    assert r.errors is not None and r.errors[0].extensions == {"code": code, "field": field}, r.errors[0].message
    assert await snapshot() == before


async def test_bad_update_and_close_inputs_are_named_and_write_nothing(px):  # type: ignore[no-untyped-def]
    run, snapshot, _, _, _ = px
    f = await new_facility(run, openedOn="2022-01-01")
    future = (today() + dt.timedelta(days=3)).isoformat()
    before = await snapshot()
    cases = [
        (UPDATE_FACILITY, {"name": None}, "name"),
        (UPDATE_FACILITY, {"kind": None}, "kind"),
        (UPDATE_FACILITY, {"adminCode": None}, "adminCode"),
        (UPDATE_FACILITY, {"location": None}, "location"),
        (UPDATE_FACILITY, {"location": {"type": "Point", "coordinates": ZHAOJUE}}, "location"),
        (UPDATE_FACILITY, {"adminCode": "513431"}, "location"),  # its point lies in Xide, far from Zhaojue
        (UPDATE_FACILITY, {}, "input"),
        (CLOSE_FACILITY, {"closedOn": future}, "closedOn"),
        (CLOSE_FACILITY, {"closedOn": "2021-12-31"}, "closedOn"),
        (UPDATE_SITE, {"adminCode": "513400"}, "adminCode"),
        (UPDATE_SITE, {"originAreaCodes": ["513432999998"]}, "originAreaCodes"),
    ]
    for query, values, field in cases:
        target = {"id": "1", "version": 1} if query == UPDATE_SITE else {"id": f["id"], "version": 1}
        r = await run(query, **{"in": {**target, **values}})
        assert r.errors is not None and r.errors[0].extensions["field"] == field, (values, r.errors)
        assert r.errors[0].extensions["code"] in ("BAD_USER_INPUT", "NOT_FOUND"), r.errors[0].message
        assert await snapshot() == before, values
    # closed once; then openedOn may not move past the closing date
    ok(await run(CLOSE_FACILITY, **{"in": {"id": f["id"], "version": 1, "closedOn": "2023-01-01"}}))
    before = await snapshot()
    for query, values, field in (
        (CLOSE_FACILITY, {"closedOn": "2023-06-01"}, "closedOn"),
        (UPDATE_FACILITY, {"openedOn": "2023-02-01"}, "openedOn"),
    ):
        r = await run(query, **{"in": {"id": f["id"], "version": 2, **values}})
        assert r.errors[0].extensions == {"code": "BAD_USER_INPUT", "field": field}, r.errors[0].message
    assert await snapshot() == before
    # a planned facility may open in the future
    g = await new_facility(run, openedOn=future)
    assert g["openedOn"] == future


async def test_a_sites_dates_agree_with_who_lived_there(px):  # type: ignore[no-untyped-def]
    """Yixin (site 1) has households from their relocation dates (2019–2020) on: it can neither open after the first
    of them moved in nor close while they live there; the first relocation date comes from the raw residence rows."""
    run, snapshot, sql, _, _ = px
    (first,) = (await sql("SELECT min(valid_from) FROM household_residence WHERE site_id = 1"))[0]
    (version,) = (await sql("SELECT version FROM relocation_site WHERE id = 1"))[0]
    before = await snapshot()
    later = (first + dt.timedelta(days=1)).isoformat()
    r = await run(UPDATE_SITE, **{"in": {"id": "1", "version": version, "openedOn": later}})
    assert r.errors[0].extensions == {"code": "BAD_USER_INPUT", "field": "openedOn"}, r.errors[0].message
    r = await run(CLOSE_SITE, **{"in": {"id": "1", "version": version, "closedOn": "2025-01-01"}})
    assert r.errors[0].extensions == {"code": "BAD_USER_INPUT", "field": "closedOn"}, r.errors[0].message
    assert "1447 households" in r.errors[0].message
    assert await snapshot() == before
    ok(await run(UPDATE_SITE, **{"in": {"id": "1", "version": version, "openedOn": first.isoformat()}}))


async def test_a_closed_facility_drops_out_of_proximity_after_its_date(px):  # type: ignore[no-untyped-def]
    run, _, sql, _, _ = px
    at = [102.4200, 28.3150]  # about 1 km east of the demo site; no other water supply exists
    existing = await sql("SELECT count(*) FROM facility WHERE kind = 'water_supply'")
    assert existing[0][0] == 0
    f = await new_facility(
        run, kind="WATER_SUPPLY", name="供水站", location={"type": "Point", "coordinates": at}, openedOn="2020-01-01"
    )
    ok(await run(CLOSE_FACILITY, **{"in": {"id": f["id"], "version": 1, "closedOn": "2024-06-01"}}))
    dwellings = await sql("SELECT id, ST_X(dwelling) AS lon, ST_Y(dwelling) AS lat FROM household WHERE dwelling IS NOT NULL")
    radius = 1500.0
    dist = {r.id: GEOD.inv(at[0], at[1], r.lon, r.lat)[2] for r in dwellings}
    assert not [d for d in dist.values() if abs(d - radius) < 0.05]  # nothing on the edge: the count is unambiguous
    beyond_open = sorted(h for h, d in dist.items() if d > radius)
    assert 0 < len(beyond_open) < len(dwellings)

    q_beyond = (
        "query($d: Date) { householdsBeyond(distanceMeters: 1500, ofKinds: [WATER_SUPPLY], asOf: $d, first: 500) { totalCount } }"
    )
    assert ok(await run(q_beyond, d="2024-05-31"))["householdsBeyond"]["totalCount"] == len(beyond_open)
    assert ok(await run(q_beyond, d="2024-06-01"))["householdsBeyond"]["totalCount"] == len(dwellings)
    assert ok(await run(q_beyond, d="2019-12-31"))["householdsBeyond"]["totalCount"] == len(dwellings)  # not open yet

    site = (await sql("SELECT ST_X(location), ST_Y(location) FROM relocation_site WHERE id = 1"))[0]
    expected = GEOD.inv(site[0], site[1], at[0], at[1])[2]
    q_near = (
        'query($d: Date) { nearestFacilities(point: {type: "Point", coordinates: [102.410818, 28.31002]}, '
        "kinds: [WATER_SUPPLY], k: 1, asOf: $d) { facility { id } distanceMeters } "
        'relocationSite(id: "1") { nearbyFacilities(radiusMeters: 5000, kinds: [WATER_SUPPLY], asOf: $d) '
        "{ facility { id } distanceMeters } nearestByKind(kinds: [WATER_SUPPLY], asOf: $d) { facility { id } distanceMeters } } }"
    )
    before = ok(await run(q_near, d="2024-05-31"))
    for got in (
        before["nearestFacilities"],
        before["relocationSite"]["nearbyFacilities"],
        before["relocationSite"]["nearestByKind"],
    ):
        assert [x["facility"]["id"] for x in got] == [f["id"]]
        assert got[0]["distanceMeters"] == pytest.approx(expected, abs=0.01)
    after = ok(await run(q_near, d="2024-06-01"))
    assert after["nearestFacilities"] == [] and after["relocationSite"] == {"nearbyFacilities": [], "nearestByKind": []}
    # without asOf: today, after the closing
    today_ = ok(await run(q_near.replace("query($d: Date)", "query").replace(", asOf: $d", "")))
    assert today_["nearestFacilities"] == []


async def test_over_http_with_a_token(px):  # type: ignore[no-untyped-def]
    _, snapshot, sql, copy, sm = px
    await add_user(sm, "http-officer", Role.COUNTY_OFFICER, ["513432"])
    await add_user(sm, "http-planner", Role.PLANNER)
    body = {
        "query": CREATE_FACILITY,
        "variables": {
            "in": {
                "name": "HTTP 车间",
                "kind": "COMMUNITY_FACTORY",
                "adminCode": "513432",
                "location": {"type": "Point", "coordinates": YIXIN},
            }
        },
    }
    with TestClient(create_app(copy)) as c:
        before = await snapshot()
        r = c.post("/graphql", json=body, headers={"Authorization": f"Bearer {issue_token(copy, 'http-planner')}"})
        assert r.status_code == 200 and r.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert await snapshot() == before
        r = c.post("/graphql", json=body, headers={"Authorization": f"Bearer {issue_token(copy, 'http-officer')}"})
        assert r.status_code == 200
        f = r.json()["data"]["createFacility"]["facility"]
        assert (f["name"], f["version"], f["closedOn"]) == ("HTTP 车间", 1, None)
    rows = await sql("SELECT user_name, after FROM audit_log WHERE entity = 'facility' AND entity_id = :i", i=f["id"])
    assert [(x.user_name, x.after["name"]) for x in rows] == [("http-officer", "HTTP 车间")]
    assert json.dumps(rows[0].after)  # plain JSON


async def test_location_tolerance_is_a_setting(px, settings, schema):  # type: ignore[no-untyped-def]
    """Zhaojue's point is refused for Xide at the default 2,000 m, accepted with a 200 km tolerance; a point
    inside Xide passes even with no tolerance at all."""
    _, _, _, _, sm = px

    def with_tolerance(meters: float) -> Any:
        return settings.model_copy(
            update={"registry": settings.registry.model_copy(update={"location_tolerance_meters": meters})}
        )

    async def create(s: Any, at: list[float]) -> Any:
        values = {"name": "容差", "kind": "CLINIC", "adminCode": "513432", "location": {"type": "Point", "coordinates": at}}
        ctx = Context(sessionmaker=sm, settings=s, viewer=ADMIN)
        return await schema.execute(CREATE_FACILITY, variable_values={"in": values}, context_value=ctx)

    r = await create(settings, ZHAOJUE)
    assert r.errors[0].extensions == {"code": "BAD_USER_INPUT", "field": "location"}
    assert ok(await create(with_tolerance(200_000.0), ZHAOJUE))["createFacility"]["facility"]["version"] == 1
    assert ok(await create(with_tolerance(0.0), YIXIN))["createFacility"]["facility"]["version"] == 1


async def test_a_places_audit_before_image_is_the_version_changed(px):  # type: ignore[no-untyped-def]
    """updateFacility and closeFacility at version v: the audit's before image is the facility at v (what the change was
    made from, as a household's: claimed_image), the after image at v + 1 — not the claimed v + 1 on both sides."""
    run, _, sql, _, _ = px
    f = await new_facility(run, operator="甲合作社")
    ok(await run(UPDATE_FACILITY, **{"in": {"id": f["id"], "version": 1, "operator": "乙合作社"}}))
    ok(await run(CLOSE_FACILITY, **{"in": {"id": f["id"], "version": 2, "closedOn": "2023-12-31"}}))
    rows = await sql(
        "SELECT action, before, after FROM audit_log WHERE entity = 'facility' AND entity_id = :i ORDER BY id", i=f["id"]
    )
    assert [(r.action, r.before and r.before["version"], r.after["version"]) for r in rows] == [
        ("createFacility", None, 1),
        ("updateFacility", 1, 2),
        ("closeFacility", 2, 3),
    ]
    # the before image is the row as it was, field for field: the previous after image
    assert rows[1].before == rows[0].after and rows[2].before == rows[1].after
