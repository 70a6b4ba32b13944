"""The household registry (registerHousehold, addMember/memberLeaves, correct/delete employment, moves,
corrections) on a writable copy of the demo seed: a grid worker's day over HTTP, dates before/at/after
relocations, moves, joins and leaves with expectations computed from the raw rows, and the trigger-kept
values against one raw recomputation (tests/raw_status.py) after every mutation kind and concurrent writers."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import mapbox_vector_tile
import pytest
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
from tests.raw_status import status_mismatches

NAME = "anju_test_registry"
VILLAGE = "513432100004"  # Yixin's community (彝欣社区 lies in it)
ORIGIN = "513432102201"
OTHER_VILLAGE = "513432104200"
DWELLING = [102.4109, 28.3101]
OFFICER = Viewer(None, "t-officer", Role.COUNTY_OFFICER, area_codes=("513432",))
DATES = [dt.date(2016, 1, 1), dt.date(2019, 6, 1), dt.date(2024, 2, 29), dt.date(2024, 3, 1), dt.date(2025, 6, 1)]


def shanghai_today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()


@pytest.fixture(scope="module")
async def reg(settings, schema):  # type: ignore[no-untyped-def]
    await db.ensure_database(settings, NAME, drop_first=True)
    await db.migrate(settings, NAME)
    eng = db.create_engine(settings, NAME)
    await load_demo(eng)
    sm = async_sessionmaker(eng, expire_on_commit=False)
    for name, role, areas in (
        ("t-officer", Role.COUNTY_OFFICER, ("513432",)),
        ("t-officer-zhaojue", Role.COUNTY_OFFICER, ("513431",)),
        ("t-planner", Role.PLANNER, ()),
        ("t-admin", Role.ADMIN, ()),
    ):
        await add_user(sm, name, role, areas, None)
    local = settings.model_copy(
        update={"local_db": settings.local_db.model_copy(update={"database": NAME})} if settings.uses_local_db else {}
    )

    async def run(query: str, viewer: Viewer = ADMIN, **variables: Any) -> Any:
        return await schema.execute(
            query, variable_values=variables or None, context_value=Context(sessionmaker=sm, settings=settings, viewer=viewer)
        )

    yield {"eng": eng, "sm": sm, "run": run, "settings": local}
    await eng.dispose()


async def snapshot(eng: Any) -> str:
    """Equal digests = nothing written (tests/digest.py: every table)."""
    return await digest(eng)


async def scalar(eng: Any, sql: str, **params: Any) -> Any:
    async with eng.connect() as c:
        return await c.scalar(text(sql), params)


def member(name: str, birth_year: int, relation: str, labor_force: bool, **more: Any) -> dict[str, Any]:
    return {
        "name": name,
        "gender": "FEMALE" if name.endswith("F") else "MALE",
        "birthYear": birth_year,
        "relation": relation,
        "laborForce": labor_force,
        **more,
    }


FIVE = [
    member("户主M", 1980, "HEAD", True),
    member("配偶F", 1982, "SPOUSE", True),
    member("儿子M", 2008, "CHILD", False),
    member("女儿F", 2012, "CHILD", False),
    member("母亲F", 1950, "PARENT", False),
]
REGISTER = (
    "mutation($in: RegisterHouseholdInput!) { registerHousehold(input: $in) { household { id code version size "
    "laborForceCount relocatedOn site { id } adminArea { code } originArea { code } dwelling "
    "members { id name joinedOn joinReason laborForce } residences { validFrom site { id } adminArea { code } } } } }"
)


def register_input(code: str = "GW-0001", **over: Any) -> dict[str, Any]:
    return {
        "code": code,
        "adminCode": VILLAGE,
        "siteId": "1",
        "originAdminCode": ORIGIN,
        "relocatedOn": "2024-03-01",
        "dwelling": {"type": "Point", "coordinates": DWELLING},
        "povertyStatus": "POVERTY_ALLEVIATED",
        "members": FIVE,
        **over,
    }


# --------------------------------------------------------------------------- a grid worker's day over HTTP


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


COVERAGE = (
    "query { relocationSite(id: 1) { employmentCoverage { households householdsWithLaborForce householdsCovered "
    "zeroEmploymentHouseholds } } zeroEmploymentHouseholds(siteId: 1, first: 500) { totalCount nodes { id } } "
    "layer: featureCollection(layer: HOUSEHOLDS, filter: {siteId: 1}, limit: 10000) }"
)


async def test_a_grid_workers_day(reg):  # type: ignore[no-untyped-def]
    eng, settings = reg["eng"], reg["settings"]
    tokens = {u: issue_token(settings, u) for u in ("t-officer", "t-officer-zhaojue", "t-planner")}
    today = shanghai_today()
    yesterday = today - dt.timedelta(days=1)
    with TestClient(create_app(settings)) as app:

        def post(user: str, query: str, **variables: Any) -> dict[str, Any]:
            r = app.post(
                "/graphql",
                json={"query": query, "variables": variables},
                headers={"Authorization": f"Bearer {tokens[user]}"},
            )
            assert r.status_code == 200, r.text
            return dict(r.json())

        def ok(user: str, query: str, **variables: Any) -> dict[str, Any]:
            body = post(user, query, **variables)
            assert "errors" not in body, body["errors"]
            return dict(body["data"])

        def state(hid: str) -> dict[str, Any]:
            data = ok("t-officer", COVERAGE)
            feature = next((f for f in data["layer"]["features"] if str(f["id"]) == hid), None)
            x, y = _tile_of(DWELLING[0], DWELLING[1], 14)
            r = app.get(f"/tiles/households/14/{x}/{y}.mvt", headers={"Authorization": f"Bearer {tokens['t-officer']}"})
            assert r.status_code == 200
            tile = mapbox_vector_tile.decode(r.content)["households"]["features"]
            in_tile = next((f["properties"] for f in tile if str(f["properties"].get("id", f.get("id"))) == hid), None)
            return {
                "coverage": data["relocationSite"]["employmentCoverage"],
                "zero": hid in {n["id"] for n in data["zeroEmploymentHouseholds"]["nodes"]},
                "zero_total": data["zeroEmploymentHouseholds"]["totalCount"],
                "feature": feature["properties"] if feature else None,
                "tile": in_tile,
            }

        before = state("none")
        # someone outside: an officer of Zhaojue and a planner cannot register in Xide; nothing is written
        snap = await snapshot(eng)
        for user in ("t-officer-zhaojue", "t-planner"):
            body = post(user, REGISTER, **{"in": register_input("GW-X")})
            assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", (user, body)
        assert await snapshot(eng) == snap

        # 1. register a household of five with a dwelling
        data = ok("t-officer", REGISTER, **{"in": register_input("GW-0001")})
        h = data["registerHousehold"]["household"]
        hid = h["id"]
        assert (h["code"], h["version"], h["size"], h["laborForceCount"], h["relocatedOn"]) == ("GW-0001", 1, 5, 2, "2024-03-01")
        assert h["site"] == {"id": "1"} and h["adminArea"] == {"code": VILLAGE} and h["originArea"] == {"code": ORIGIN}
        assert h["dwelling"] == {"type": "Point", "coordinates": DWELLING}
        assert [(x["joinedOn"], x["joinReason"]) for x in h["members"]] == [(None, "REGISTERED")] * 5
        assert h["residences"] == [
            {"validFrom": None, "site": None, "adminArea": {"code": ORIGIN}},
            {"validFrom": "2024-03-01", "site": {"id": "1"}, "adminArea": {"code": VILLAGE}},
        ]
        s1 = state(hid)
        c0, c1 = before["coverage"], s1["coverage"]
        assert c1["households"] == c0["households"] + 1
        assert c1["householdsWithLaborForce"] == c0["householdsWithLaborForce"] + 1
        assert c1["householdsCovered"] == c0["householdsCovered"]
        assert c1["zeroEmploymentHouseholds"] == c0["zeroEmploymentHouseholds"] + 1
        assert s1["zero"] and s1["zero_total"] == before["zero_total"] + 1
        assert s1["feature"] == {"siteId": 1, "size": 5, "zeroEmployment": True}
        assert s1["tile"] is not None and s1["tile"]["size"] == 5

        # the officer of Zhaojue cannot add to it either
        snap = await snapshot(eng)
        add = (
            "mutation($in: AddMemberInput!) { addMember(input: $in) { member { id joinedOn joinReason } "
            "household { version size laborForceCount } } }"
        )
        newborn = {
            "householdId": hid,
            "version": 1,
            **member("新生儿F", yesterday.year, "GRANDCHILD", False),
            "joinedOn": yesterday.isoformat(),
            "joinReason": "BIRTH",
        }
        body = post("t-officer-zhaojue", add, **{"in": newborn})
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert await snapshot(eng) == snap

        # 2. a newborn
        data = ok("t-officer", add, **{"in": newborn})["addMember"]
        assert data["member"]["joinedOn"] == yesterday.isoformat() and data["member"]["joinReason"] == "BIRTH"
        assert data["household"] == {"version": 2, "size": 6, "laborForceCount": 2}
        s2 = state(hid)
        assert s2["coverage"] == s1["coverage"] and s2["zero"]
        assert s2["feature"]["size"] == 6 and s2["tile"]["size"] == 6

        # 3. an employment (not stable): employed, not yet covered
        head = next(x["id"] for x in h["members"] if x["name"] == "户主M")
        rec = (
            "mutation($in: RecordEmploymentInput!) { recordEmployment(input: $in) { employment { id stable } "
            "household { version } } }"
        )
        start = (today - dt.timedelta(days=10)).isoformat()
        emp = ok(
            "t-officer",
            rec,
            **{
                "in": {
                    "memberId": head,
                    "version": 2,
                    "channel": "LOCAL_ENTERPRISE",
                    "employerName": "示例企业",
                    "startOn": start,
                    "stable": False,
                }
            },
        )["recordEmployment"]
        eid = emp["employment"]["id"]
        s3 = state(hid)
        assert not s3["zero"] and s3["zero_total"] == before["zero_total"]
        assert s3["coverage"]["householdsCovered"] == c0["householdsCovered"]
        assert s3["coverage"]["zeroEmploymentHouseholds"] == c0["zeroEmploymentHouseholds"]
        assert s3["feature"]["zeroEmployment"] is False and s3["tile"]["size"] == 6  # tiles carry id, site_id, size

        # 4. corrected: it was a stable job (a wrong entry fixed in place, audited before/after)
        fix = (
            "mutation($in: CorrectEmploymentInput!) { correctEmployment(input: $in) { employment { id stable "
            "monthlyWage employerName } household { version stablyEmployedCount } } }"
        )
        data = ok("t-officer", fix, **{"in": {"id": eid, "version": 3, "stable": True, "monthlyWage": "3200.00"}})
        assert data["correctEmployment"] == {
            "employment": {"id": eid, "stable": True, "monthlyWage": "3200.00", "employerName": "示例企业"},
            "household": {"version": 4, "stablyEmployedCount": 1},
        }
        async with eng.connect() as c:
            row = (
                await c.execute(
                    text("SELECT user_name, before, after FROM audit_log WHERE action = 'correctEmployment' AND entity_id = :i"),
                    {"i": eid},
                )
            ).one()
        assert row.user_name == "t-officer"
        assert (row.before["stable"], row.after["stable"], row.before["monthly_wage"], row.after["monthly_wage"]) == (
            False,
            True,
            None,
            "3200.00",
        )
        s4 = state(hid)
        assert s4["coverage"]["householdsCovered"] == c0["householdsCovered"] + 1
        assert s4["coverage"]["households"] == c0["households"] + 1

        # 5. this year's income: its household size is the six present at the survey
        inc = (
            "mutation($in: RecordHouseholdIncomeInput!) { recordHouseholdIncome(input: $in) { household { version "
            "income(year: $y) { netIncome householdSize } } } }"
        )
        body = post(
            "t-officer",
            inc.replace("$y", str(today.year)),
            **{"in": {"householdId": hid, "version": 4, "year": today.year, "netIncome": "36000.00"}},
        )
        assert "errors" not in body, body
        assert body["data"]["recordHouseholdIncome"]["household"] == {
            "version": 5,
            "income": {"netIncome": "36000.00", "householdSize": 6},
        }

        # a planner's write is refused, nothing written
        snap = await snapshot(eng)
        body = post("t-planner", fix, **{"in": {"id": eid, "version": 5, "stable": False}})
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert await snapshot(eng) == snap
    async with eng.connect() as c:
        assert await status_mismatches(c, [*DATES, yesterday, today]) == []


# --------------------------------------------------------------------------- bad input: field named, nothing written


@pytest.mark.parametrize(
    ("over", "code", "field"),
    [
        pytest.param({"adminCode": "513432999999"}, "NOT_FOUND", "adminCode", id="unknown admin code"),
        pytest.param({"adminCode": "513432100"}, "BAD_USER_INPUT", "adminCode", id="township, not a village"),
        pytest.param(
            {"dwelling": {"type": "Point", "coordinates": [104.06, 30.66]}},
            "BAD_USER_INPUT",
            "dwelling",
            id="dwelling in Chengdu",
        ),
        pytest.param({"code": "513432100004-0001"}, "CONFLICT", "code", id="duplicate code"),
        pytest.param({"relocatedOn": "2099-01-01"}, "BAD_USER_INPUT", "relocatedOn", id="relocation in the future"),
        pytest.param({"relocatedOn": None}, "BAD_USER_INPUT", "relocatedOn", id="site without relocation date"),
        pytest.param({"siteId": "999999"}, "NOT_FOUND", "siteId", id="unknown site"),
        pytest.param({"members": []}, "BAD_USER_INPUT", "members", id="no members"),
        pytest.param(
            {"members": [member("未来M", 1990, "HEAD", True, joinedOn="2099-01-01")]},
            "BAD_USER_INPUT",
            "members[0].joinedOn",
            id="member joins in the future",
        ),
        pytest.param(
            {
                "members": [
                    member("户主M", 1990, "HEAD", True),
                    member("婴儿F", 2020, "CHILD", False, joinedOn="2021-05-01", joinReason="BIRTH"),
                ]
            },
            "BAD_USER_INPUT",
            "members[1].joinedOn",
            id="birth not in the birth year",
        ),
        pytest.param(
            {"members": [member("X", 1990, "HEAD", True, phone="12")]}, "BAD_USER_INPUT", "members[0].phone", id="bad phone"
        ),
    ],
)
async def test_register_bad_input_writes_nothing(reg, over, code, field):  # type: ignore[no-untyped-def]
    snap = await snapshot(reg["eng"])
    r = await reg["run"](REGISTER, OFFICER, **{"in": register_input(**{"code": "BAD-1", **over})})
    assert r.data == {"registerHousehold": None}
    ext = r.errors[0].extensions
    assert (ext["code"], ext.get("field")) == (code, field), r.errors[0].message
    assert await snapshot(reg["eng"]) == snap


async def test_a_closed_site_takes_no_one(reg):  # type: ignore[no-untyped-def]
    eng = reg["eng"]
    async with eng.begin() as c:
        sid = await c.scalar(
            text(
                "INSERT INTO relocation_site (name, kind, admin_code, location, opened_on, closed_on) VALUES "
                "('closed site', 'town', :v, ST_SetSRID(ST_MakePoint(102.41, 28.31), 4326), '2018-01-01', '2023-01-01') "
                "RETURNING id"
            ),
            {"v": VILLAGE},
        )
    snap = await snapshot(eng)
    r = await reg["run"](REGISTER, OFFICER, **{"in": register_input("CLOSED-1", siteId=str(sid))})
    assert r.errors[0].extensions == {"code": "BAD_USER_INPUT", "field": "siteId"}
    assert await snapshot(eng) == snap


async def test_corrections_keep_residence_dates_true(reg):  # type: ignore[no-untyped-def]
    """A correction cannot date a relocation before its site opened, nor give a never-relocated household a site
    from before its records began (that is a move: moveHousehold); a year's income is not recorded before it begins."""
    eng, run = reg["eng"], reg["run"]
    async with eng.begin() as c:
        sid = await c.scalar(
            text(
                "INSERT INTO relocation_site (name, kind, admin_code, location, opened_on) VALUES "
                "('opened 2019-10-01', 'town', :v, ST_SetSRID(ST_MakePoint(102.41, 28.31), 4326), '2019-10-01') RETURNING id"
            ),
            {"v": VILLAGE},
        )
    sited, _ = await _register(reg, "FIX-1", siteId=str(sid), relocatedOn="2020-01-01")
    unsited, _ = await _register(reg, "FIX-2", siteId=None, relocatedOn=None, originAdminCode=None)
    update = "mutation($in: UpdateHouseholdInput!) { updateHousehold(input: $in) { household { version } } }"
    income = "mutation($in: RecordHouseholdIncomeInput!) { recordHouseholdIncome(input: $in) { household { version } } }"
    next_year = shanghai_today().year + 1
    snap = await snapshot(eng)
    for query, values, field in (
        (update, {"id": sited, "version": 1, "relocatedOn": "2019-09-30"}, "relocatedOn"),
        (update, {"id": unsited, "version": 1, "siteId": str(sid)}, "siteId"),
        (income, {"householdId": sited, "version": 1, "year": next_year, "netIncome": "1.00"}, "year"),
    ):
        r = await run(query, OFFICER, **{"in": values})
        assert r.errors is not None and r.errors[0].extensions == {"code": "BAD_USER_INPUT", "field": field}, r.errors
        assert await snapshot(eng) == snap, values


# --------------------------------------------------------------------------- as of a date, from the raw rows


async def _residence_rows(eng: Any) -> list[Any]:
    async with eng.connect() as c:
        return list(
            (
                await c.execute(
                    text(
                        "SELECT household_id, CASE WHEN valid_from = '-infinity' THEN NULL ELSE valid_from END AS valid_from, "
                        "site_id FROM household_residence"
                    )
                )
            ).all()
        )


def _at_site_on(rows: list[Any], site_id: int, day: dt.date) -> set[int]:
    """Households whose residence in effect on ``day`` (latest row starting on or before it) is at ``site_id``."""
    latest: dict[int, tuple[dt.date, int | None]] = {}
    for r in rows:
        start = r.valid_from or dt.date.min
        if start <= day and (r.household_id not in latest or start > latest[r.household_id][0]):
            latest[r.household_id] = (start, r.site_id)
    return {h for h, (_, s) in latest.items() if s == site_id}


SITE_HOUSEHOLDS = "query($d: Date!) { relocationSite(id: 1) { employmentCoverage(asOf: $d) { households } } }"


async def test_yixin_before_anyone_moved_in(reg):  # type: ignore[no-untyped-def]
    rows = await _residence_rows(reg["eng"])
    for day in (dt.date(2016, 1, 1), dt.date(2019, 6, 1), dt.date(2020, 1, 1), dt.date(2024, 3, 1)):
        r = await reg["run"](SITE_HOUSEHOLDS, d=day.isoformat())
        assert r.errors is None, r.errors
        expected = len(_at_site_on(rows, 1, day))
        assert r.data["relocationSite"]["employmentCoverage"]["households"] == expected, day
    assert len(_at_site_on(rows, 1, dt.date(2016, 1, 1))) == 0


HH = (
    "query($h: ID!, $d: Date!) { household(id: $h) { version size(asOf: $d) laborForceCount(asOf: $d) "
    "site { id } adminArea { code } residences { validFrom site { id } adminArea { code } } } }"
)


async def _register(reg: Any, code: str, **over: Any) -> tuple[str, dict[str, Any]]:
    r = await reg["run"](REGISTER, OFFICER, **{"in": register_input(code, **over)})
    assert r.errors is None, r.errors
    h = r.data["registerHousehold"]["household"]
    return h["id"], h


async def test_relocation_move_join_and_leave_as_of(reg):  # type: ignore[no-untyped-def]
    run, eng = reg["run"], reg["eng"]
    hid, h = await _register(reg, "ASOF-1")
    # relocated on 2024-03-01: at the site from that day, in its origin village before
    for day, at_site in ((dt.date(2024, 2, 29), False), (dt.date(2024, 3, 1), True), (dt.date(2024, 3, 2), True)):
        rows = await _residence_rows(eng)
        assert (int(hid) in _at_site_on(rows, 1, day)) is at_site
        r = await run(SITE_HOUSEHOLDS, d=day.isoformat())
        assert r.data["relocationSite"]["employmentCoverage"]["households"] == len(_at_site_on(rows, 1, day))

    # a move: on 2025-06-01 out of the site to another village
    move = (
        "mutation($in: MoveHouseholdInput!) { moveHousehold(input: $in) { household { version site { id } "
        "adminArea { code } relocatedOn residences { validFrom } } } }"
    )
    bad = [
        ({"movedOn": "2024-02-01"}, "movedOn"),  # before the current residence began
        ({"movedOn": "2024-03-01"}, "movedOn"),  # on the day it began
        ({"movedOn": "2099-01-01"}, "movedOn"),  # in the future
        ({"adminCode": "513432"}, "adminCode"),  # a county, not a village
        ({"dwelling": {"type": "Point", "coordinates": [110.0, 20.0]}}, "dwelling"),
    ]
    for over, field in bad:
        snap = await snapshot(eng)
        r = await run(
            move, OFFICER, **{"in": {"id": hid, "version": 1, "movedOn": "2025-06-01", "adminCode": OTHER_VILLAGE, **over}}
        )
        assert r.errors[0].extensions == {"code": "BAD_USER_INPUT", "field": field}, over
        assert await snapshot(eng) == snap
    r = await run(move, OFFICER, **{"in": {"id": hid, "version": 0, "movedOn": "2025-06-01", "adminCode": OTHER_VILLAGE}})
    assert r.errors[0].extensions["code"] == "CONFLICT"
    r = await run(move, OFFICER, **{"in": {"id": hid, "version": 1, "movedOn": "2025-06-01", "adminCode": OTHER_VILLAGE}})
    assert r.errors is None, r.errors
    assert r.data["moveHousehold"]["household"] == {
        "version": 2,
        "site": None,
        "adminArea": {"code": OTHER_VILLAGE},
        "relocatedOn": "2024-03-01",
        "residences": [{"validFrom": None}, {"validFrom": "2024-03-01"}, {"validFrom": "2025-06-01"}],
    }
    rows = await _residence_rows(eng)
    for day in (dt.date(2025, 5, 31), dt.date(2025, 6, 1)):
        r = await run(SITE_HOUSEHOLDS, d=day.isoformat())
        assert r.data["relocationSite"]["employmentCoverage"]["households"] == len(_at_site_on(rows, 1, day))
    assert int(hid) in _at_site_on(rows, 1, dt.date(2025, 5, 31)) and int(hid) not in _at_site_on(rows, 1, dt.date(2025, 6, 1))

    # members: one leaves on 2025-01-01; another joins by marriage on 2025-03-10
    async with eng.connect() as c:
        mids = [
            r[0] for r in (await c.execute(text("SELECT id FROM member WHERE household_id = :h ORDER BY id"), {"h": int(hid)}))
        ]
    leave = (
        "mutation($in: MemberLeavesInput!) { memberLeaves(input: $in) { member { leftOn leaveReason } "
        "household { version size members { id } all: members(includeLeft: true) { id } } } }"
    )
    r = await run(leave, OFFICER, **{"in": {"memberId": str(mids[4]), "version": 2, "leftOn": "2099-01-01", "reason": "DEATH"}})
    assert r.errors[0].extensions == {"code": "BAD_USER_INPUT", "field": "leftOn"}
    r = await run(leave, OFFICER, **{"in": {"memberId": str(mids[4]), "version": 2, "leftOn": "2025-01-01", "reason": "DEATH"}})
    assert r.errors is None, r.errors
    p = r.data["memberLeaves"]
    assert p["member"] == {"leftOn": "2025-01-01", "leaveReason": "DEATH"}
    assert p["household"]["size"] == 4 and len(p["household"]["members"]) == 4 and len(p["household"]["all"]) == 5
    r = await run(leave, OFFICER, **{"in": {"memberId": str(mids[4]), "version": 3, "leftOn": "2025-02-01", "reason": "OTHER"}})
    assert r.errors[0].extensions == {"code": "BAD_USER_INPUT", "field": "leftOn"}  # leaving twice
    add = "mutation($in: AddMemberInput!) { addMember(input: $in) { member { id } household { version } } }"
    r = await run(
        add,
        OFFICER,
        **{
            "in": {
                "householdId": hid,
                "version": 3,
                **member("儿媳F", 2000, "CHILD_IN_LAW", True),
                "joinedOn": "2025-03-10",
                "joinReason": "MARRIAGE",
            }
        },
    )
    assert r.errors is None, r.errors
    new_member = r.data["addMember"]["member"]["id"]
    r = await run(leave, OFFICER, **{"in": {"memberId": new_member, "version": 4, "leftOn": "2025-03-10", "reason": "MARRIAGE"}})
    assert r.errors[0].extensions == {"code": "BAD_USER_INPUT", "field": "leftOn"}  # not after joining

    async with eng.connect() as c:
        raw = (
            await c.execute(text("SELECT joined_on, left_on, labor_force FROM member WHERE household_id = :h"), {"h": int(hid)})
        ).all()

    def present(day: dt.date) -> tuple[int, int]:
        p = [x for x in raw if (x.joined_on is None or x.joined_on <= day) and (x.left_on is None or day < x.left_on)]
        return len(p), sum(1 for x in p if x.labor_force)

    for day in (dt.date(2024, 12, 31), dt.date(2025, 1, 1), dt.date(2025, 3, 9), dt.date(2025, 3, 10), dt.date(2026, 1, 1)):
        r = await run(HH, h=hid, d=day.isoformat())
        assert (r.data["household"]["size"], r.data["household"]["laborForceCount"]) == present(day), day
    assert present(dt.date(2024, 12, 31)) == (5, 2) and present(dt.date(2025, 3, 10)) == (5, 3)
    async with eng.connect() as c:
        assert await status_mismatches(c, [*DATES, dt.date(2025, 1, 1), dt.date(2025, 3, 10), dt.date(2025, 5, 31)]) == []


async def test_a_member_added_later_does_not_change_earlier_per_capita(reg):  # type: ignore[no-untyped-def]
    run, eng = reg["run"], reg["eng"]
    async with eng.connect() as c:
        hid, total = (
            await c.execute(
                text(
                    "SELECT household_id, sum(amount) FROM income_linkage WHERE year = 2024 GROUP BY household_id "
                    "ORDER BY household_id LIMIT 1"
                )
            )
        ).one()
        members = (await c.execute(text("SELECT joined_on, left_on FROM member WHERE household_id = :h"), {"h": hid})).all()
        recorded = await c.scalar(
            text("SELECT household_size FROM household_income WHERE household_id = :h AND year = 2024"), {"h": hid}
        )
        version = await c.scalar(text("SELECT version FROM household WHERE id = :h"), {"h": hid})
    end_2024 = dt.date(2024, 12, 31)
    size_2024 = recorded or sum(
        1 for x in members if (x.joined_on is None or x.joined_on <= end_2024) and (x.left_on is None or end_2024 < x.left_on)
    )
    expected = (Decimal(total) / size_2024).quantize(Decimal("0.01"))
    q = "query($h: ID!) { household(id: $h) { linkedIncome(year: 2024) { total perCapita } } }"
    r = await run(q, h=str(hid))
    assert Decimal(r.data["household"]["linkedIncome"]["perCapita"]) == expected
    r = await run(
        "mutation($in: AddMemberInput!) { addMember(input: $in) { member { joinedOn } household { size } } }",
        OFFICER,
        **{"in": {"householdId": str(hid), "version": version, **member("后来M", 1995, "OTHER", True)}},
    )
    assert r.errors is None, r.errors
    assert r.data["addMember"]["member"]["joinedOn"] == shanghai_today().isoformat()
    r = await run(q, h=str(hid))
    assert Decimal(r.data["household"]["linkedIncome"]["perCapita"]) == expected


# --------------------------------------------------------------------------- corrections, deletions, trigger-kept values


async def test_every_mutation_kind_keeps_the_derived_values_exact(reg):  # type: ignore[no-untyped-def]
    run, eng = reg["run"], reg["eng"]
    hid, h = await _register(reg, "KINDS-1")
    mids = [x["id"] for x in h["members"]]
    version = 1
    dates = [*DATES, dt.date(2024, 5, 1), dt.date(2024, 6, 30), dt.date(2024, 7, 1)]

    async def step(query: str, **variables: Any) -> Any:
        nonlocal version
        r = await run(query, OFFICER, **variables)
        assert r.errors is None, r.errors
        version += 1
        async with eng.connect() as c:
            assert await status_mismatches(c, dates) == [], query[:60]
        return r.data

    rec = "mutation($in: RecordEmploymentInput!) { recordEmployment(input: $in) { employment { id } } }"
    eid = (
        await step(
            rec,
            **{
                "in": {
                    "memberId": mids[1],
                    "version": version,
                    "channel": "FLEXIBLE",
                    "startOn": "2024-05-01",
                    "endOn": "2024-06-30",
                    "stable": False,
                }
            },
        )
    )["recordEmployment"]["employment"]["id"]
    fix = "mutation($in: CorrectEmploymentInput!) { correctEmployment(input: $in) { employment { endOn channel } } }"
    d = await step(fix, **{"in": {"id": eid, "version": version, "endOn": None, "channel": "SELF_EMPLOYMENT"}})
    assert d["correctEmployment"]["employment"] == {"endOn": None, "channel": "SELF_EMPLOYMENT"}
    r = await run(fix, OFFICER, **{"in": {"id": eid, "version": version, "startOn": "2099-01-01"}})
    assert r.errors[0].extensions == {"code": "BAD_USER_INPUT", "field": "startOn"}
    r = await run(fix, OFFICER, **{"in": {"id": eid, "version": version, "channel": "WORKSHOP"}})
    assert r.errors[0].extensions == {"code": "BAD_USER_INPUT", "field": "facilityId"}
    await step(
        "mutation($in: DeleteRecordInput!) { deleteEmployment(input: $in) { deletedId } }",
        **{"in": {"id": eid, "version": version}},
    )
    assert await scalar(eng, "SELECT count(*) FROM employment WHERE id = :i", i=int(eid)) == 0
    lid = (
        await step(
            "mutation($h: ID!, $v: Int!) { recordIncomeLinkage(input: {householdId: $h, version: $v, mechanism: WAGE, "
            'year: 2024, amount: "100.00"}) { incomeLinkage { id } } }',
            h=hid,
            v=version,
        )
    )["recordIncomeLinkage"]["incomeLinkage"]["id"]
    d = await step(
        "mutation($in: CorrectIncomeLinkageInput!) { correctIncomeLinkage(input: $in) { incomeLinkage { amount mechanism } } }",
        **{"in": {"id": lid, "version": version, "amount": "120.50", "mechanism": "DIVIDEND"}},
    )
    assert d["correctIncomeLinkage"]["incomeLinkage"] == {"amount": "120.50", "mechanism": "DIVIDEND"}
    await step(
        "mutation($in: DeleteRecordInput!) { deleteIncomeLinkage(input: $in) { deletedId } }",
        **{"in": {"id": lid, "version": version}},
    )
    upd = (
        "mutation($in: UpdateHouseholdInput!) { updateHousehold(input: $in) { household { code relocatedOn dwelling "
        "originArea { code } residences { validFrom adminArea { code } } } } }"
    )
    d = await step(upd, **{"in": {"id": hid, "version": version, "relocatedOn": "2024-04-01", "dwelling": None}})
    hh = d["updateHousehold"]["household"]
    assert hh["relocatedOn"] == "2024-04-01" and hh["dwelling"] is None
    assert [x["validFrom"] for x in hh["residences"]] == [None, "2024-04-01"]
    d = await step(upd, **{"in": {"id": hid, "version": version, "originAdminCode": OTHER_VILLAGE, "code": "KINDS-1b"}})
    hh = d["updateHousehold"]["household"]
    assert hh["code"] == "KINDS-1b" and hh["originArea"] == {"code": OTHER_VILLAGE}
    async with eng.connect() as c:  # the audit's before is the household at the version the change was made from
        audited = (
            await c.execute(
                text(
                    "SELECT before ->> 'code', (before ->> 'version')::int, after ->> 'code', (after ->> 'version')::int "
                    "FROM audit_log WHERE action = 'updateHousehold' AND entity_id = :h ORDER BY id DESC LIMIT 1"
                ),
                {"h": str(hid)},
            )
        ).one()
    assert tuple(audited) == ("KINDS-1", version - 1, "KINDS-1b", version)
    assert hh["residences"][0]["adminArea"] == {"code": OTHER_VILLAGE}
    r = await run(upd, OFFICER, **{"in": {"id": hid, "version": version, "code": "513432100004-0001"}})
    assert r.errors[0].extensions == {"code": "CONFLICT", "field": "code"}
    r = await run(upd, OFFICER, **{"in": {"id": hid, "version": version, "relocatedOn": None}})
    assert r.errors[0].extensions == {"code": "BAD_USER_INPUT", "field": "relocatedOn"}
    d = await step(
        "mutation($in: UpdateMemberInput!) { updateMember(input: $in) { member { phone skills laborForce } } }",
        **{"in": {"memberId": mids[0], "version": version, "phone": "13812345678", "skills": ["彝绣"]}},
    )
    d = await step(
        "mutation($in: UpdateMemberInput!) { updateMember(input: $in) { member { phone skills laborForce } } }",
        **{"in": {"memberId": mids[0], "version": version, "phone": None, "laborForce": False}},
    )
    assert d["updateMember"]["member"] == {"phone": None, "skills": ["彝绣"], "laborForce": False}
    r = await run(
        "mutation($in: UpdateMemberInput!) { updateMember(input: $in) { member { id } } }",
        OFFICER,
        **{"in": {"memberId": mids[0], "version": version, "name": None}},
    )
    assert r.errors[0].extensions == {"code": "BAD_USER_INPUT", "field": "name"}
    d = await step(
        "mutation($in: RecordHouseholdIncomeInput!) { recordHouseholdIncome(input: $in) { household { "
        "income(year: 2024) { householdSize surveyedOn } } } }",
        **{
            "in": {
                "householdId": hid,
                "version": version,
                "year": 2024,
                "netIncome": "30000.00",
                "householdSize": 4,
                "surveyedOn": "2025-01-15",
            }
        },
    )
    assert d["recordHouseholdIncome"]["household"]["income"] == {"householdSize": 4, "surveyedOn": "2025-01-15"}


async def test_concurrent_writers(reg):  # type: ignore[no-untyped-def]
    run, eng = reg["run"], reg["eng"]
    a, ha = await _register(reg, "CONC-A")
    b, hb = await _register(reg, "CONC-B")
    leave = "mutation($in: MemberLeavesInput!) { memberLeaves(input: $in) { household { version size } } }"
    add = "mutation($in: AddMemberInput!) { addMember(input: $in) { household { version size } } }"
    # different households at once: both write
    r1, r2 = await asyncio.gather(
        run(
            leave,
            OFFICER,
            **{"in": {"memberId": ha["members"][4]["id"], "version": 1, "leftOn": "2025-01-01", "reason": "DEATH"}},
        ),
        run(
            add,
            OFFICER,
            **{
                "in": {
                    "householdId": b,
                    "version": 1,
                    **member("迁入M", 1990, "OTHER", True),
                    "joinedOn": "2025-01-01",
                    "joinReason": "MOVING_IN",
                }
            },
        ),
    )
    assert r1.errors is None and r2.errors is None, (r1.errors, r2.errors)
    assert r1.data["memberLeaves"]["household"] == {"version": 2, "size": 4}
    assert r2.data["addMember"]["household"] == {"version": 2, "size": 6}
    # the same household at once with the same version: one wins, the other is told (CONFLICT), nothing half-written
    results = await asyncio.gather(
        run(
            leave,
            OFFICER,
            **{"in": {"memberId": hb["members"][0]["id"], "version": 2, "leftOn": "2025-02-01", "reason": "MOVING_OUT"}},
        ),
        run(
            add,
            OFFICER,
            **{
                "in": {
                    "householdId": b,
                    "version": 2,
                    **member("又一M", 1991, "OTHER", True),
                    "joinedOn": "2025-02-01",
                    "joinReason": "MOVING_IN",
                }
            },
        ),
        run(
            "mutation($in: MoveHouseholdInput!) { moveHousehold(input: $in) { household { version } } }",
            OFFICER,
            **{"in": {"id": b, "version": 2, "movedOn": "2025-02-01", "adminCode": OTHER_VILLAGE}},
        ),
    )
    codes = sorted("ok" if r.errors is None else r.errors[0].extensions["code"] for r in results)
    assert codes == ["CONFLICT", "CONFLICT", "ok"]
    assert await scalar(eng, "SELECT version FROM household WHERE id = :h", h=int(b)) == 3
    async with eng.connect() as c:
        assert await status_mismatches(c, [*DATES, dt.date(2025, 1, 1), dt.date(2025, 2, 1)]) == []
