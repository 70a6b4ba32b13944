# ruff: noqa: E501  (the raw recomputations are SQL text)
"""Monitoring casework (issue #17) on a writable copy of the demo seed, over HTTP with each acting role's token.

Grids and the grid worker's scope at every entry point (GraphQL, featureCollection, tiles, OGC items, writes); a case's
whole life by the roles of each stage; out-of-order, wrong-level, out-of-grid and stale writes refused with nothing
written (digest of every table); two concurrent approvals of one stage, one wins; the audit log of each step; the
missed-monitoring list and the ledger recomputed from raw rows on dates before and after changes; a finding's life and
the overdue list recomputed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from decimal import Decimal
from typing import Any

import mapbox_vector_tile
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker
from starlette.testclient import TestClient

from anju import db
from anju.app import create_app
from anju.auth import issue_token
from anju.seed import load_demo
from resolvers import casework as cw
from resolvers.access import Role, Viewer, add_user, scoped_sessionmaker
from resolvers.errors import StaleVersion
from tests.digest import digest

NAME = "anju_test_casework"
COUNTY, TOWNSHIP, VILLAGE = "513432", "513432100", "513432100004"  # Xide, Guangming town, Yixin's community
ACTORS = {"t-gw": "GW", "t-village": "V", "t-township": "T", "t-county": "C"}


@pytest.fixture(scope="module")
async def cx(settings):  # type: ignore[no-untyped-def]
    await db.ensure_database(settings, NAME, drop_first=True)
    await db.migrate(settings, NAME)
    eng = db.create_engine(settings, NAME)
    await load_demo(eng)
    sm = async_sessionmaker(eng, expire_on_commit=False)
    users = {
        "t-admin": (Role.ADMIN, ()),
        "t-planner": (Role.PLANNER, ()),
        "t-county": (Role.COUNTY_OFFICER, (COUNTY,)),
        "t-township": (Role.COUNTY_OFFICER, (TOWNSHIP,)),
        "t-village": (Role.COUNTY_OFFICER, (VILLAGE,)),
        "t-gw": (Role.GRID_WORKER, ()),
        "t-gw2": (Role.GRID_WORKER, ()),
    }
    for name, (role, areas) in users.items():
        await add_user(sm, name, role, areas, None)
    async with sm() as s:  # the demo partner, paired with Xide
        pid = await s.scalar(text("SELECT id FROM cooperation_partner ORDER BY id LIMIT 1"))
    await add_user(sm, "t-partner", Role.PARTNER, (), pid)
    users["t-partner"] = (Role.PARTNER, ())
    local = settings.model_copy(
        update={"local_db": settings.local_db.model_copy(update={"database": NAME})}
        if settings.uses_local_db
        else {"database_url": settings.sqlalchemy_url().rsplit("/", 1)[0] + "/" + NAME}
    )
    tokens = {n: issue_token(local, n) for n in users}
    with TestClient(create_app(local)) as client:
        yield {"eng": eng, "sm": sm, "client": client, "tokens": tokens, "settings": local}
    await eng.dispose()


def gql(cx: dict[str, Any], user: str, query: str, **variables: Any) -> dict[str, Any]:
    r = cx["client"].post(
        "/graphql", json={"query": query, "variables": variables}, headers={"Authorization": f"Bearer {cx['tokens'][user]}"}
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def ok(body: dict[str, Any]) -> dict[str, Any]:
    assert not body.get("errors"), body
    return dict(body["data"])


def code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors") or []
    return errors[0]["extensions"]["code"] if errors else None


async def rows(cx: dict[str, Any], sql: str, **params: Any) -> list[Any]:
    async with cx["eng"].connect() as c:
        return list((await c.execute(text(sql), params)).all())


async def one(cx: dict[str, Any], sql: str, **params: Any) -> Any:
    async with cx["eng"].connect() as c:
        return await c.scalar(text(sql), params)


GRID = "mutation($in: CreateGridInput!) { createGrid(input: $in) { id level levelName code worker householdCount } }"
ASSIGN = "mutation($g: ID!, $h: [ID!]!, $w: String) { assignHouseholdsToGrid(gridId: $g, householdIds: $h, workerName: $w) }"


@pytest.fixture(scope="module")
async def grids(cx):  # type: ignore[no-untyped-def]
    """Town → Yixin community → two buildings; the first 40 of Yixin's households (by id) in building 1 (t-gw), the
    next 30 in building 2 (t-gw2): made by the county officer over HTTP."""
    top = ok(gql(cx, "t-county", GRID, **{"in": {"countyCode": COUNTY, "code": "G1", "name": "光明镇"}}))["createGrid"]
    assert (top["level"], top["levelName"]) == (1, "乡镇 township")
    mid = ok(gql(cx, "t-county", GRID, **{"in": {"parentId": top["id"], "code": "G1-1", "name": "彝欣社区"}}))["createGrid"]
    b1 = ok(gql(cx, "t-county", GRID, **{"in": {"parentId": mid["id"], "code": "G1-1-1", "name": "1栋", "workerName": "t-gw"}}))
    b2 = ok(gql(cx, "t-county", GRID, **{"in": {"parentId": mid["id"], "code": "G1-1-2", "name": "2栋"}}))
    b1, b2 = b1["createGrid"], b2["createGrid"]
    # a fourth level is refused
    body = gql(cx, "t-county", GRID, **{"in": {"parentId": b1["id"], "code": "X", "name": "x"}})
    assert code(body) == "BAD_USER_INPUT" and body["errors"][0]["extensions"]["field"] == "parentId"
    ids = [
        r[0]
        for r in await rows(
            cx,
            f"SELECT id FROM household h WHERE admin_code = '{VILLAGE}' AND NOT EXISTS (SELECT 1 FROM monitoring_case c WHERE c.household_id = h.id) ORDER BY id LIMIT 70",
        )
    ]
    assert ok(gql(cx, "t-county", ASSIGN, g=b1["id"], h=[str(i) for i in ids[:40]]))["assignHouseholdsToGrid"] == 40
    assert ok(gql(cx, "t-county", ASSIGN, g=b2["id"], h=[str(i) for i in ids[40:]], w="t-gw2"))["assignHouseholdsToGrid"] == 30
    # households go to bottom-level grids only; the grid worker cannot keep grids
    assert code(gql(cx, "t-county", ASSIGN, g=mid["id"], h=[str(ids[0])])) == "BAD_USER_INPUT"
    assert code(gql(cx, "t-gw", ASSIGN, g=b1["id"], h=[str(ids[50])])) == "FORBIDDEN"
    return {"top": top["id"], "mid": mid["id"], "b1": b1["id"], "b2": b2["id"], "mine": ids[:40], "other": ids[40:]}


def _tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


async def test_grid_worker_sees_and_writes_only_its_grids_at_every_entry_point(cx, grids):  # type: ignore[no-untyped-def]
    mine = set(grids["mine"])
    with_dwelling = {
        r[0] for r in await rows(cx, "SELECT id FROM household WHERE grid_id = :g AND dwelling IS NOT NULL", g=int(grids["b1"]))
    }
    assert with_dwelling and with_dwelling <= mine
    # GraphQL lists, one household, featureCollection
    d = ok(gql(cx, "t-gw", "{ households(first: 500) { totalCount nodes { id } } }"))
    assert d["households"]["totalCount"] == 40 and {int(x["id"]) for x in d["households"]["nodes"]} == mine
    outside = grids["other"][0]
    q1 = "query($id: ID!) { household(id: $id) { code members { name } } }"
    assert ok(gql(cx, "t-gw", q1, id=str(outside)))["household"] is None
    names = ok(gql(cx, "t-gw", q1, id=str(grids["mine"][0])))["household"]["members"]
    raw = [r[0] for r in await rows(cx, "SELECT name FROM member WHERE household_id = :h ORDER BY id", h=grids["mine"][0])]
    assert [x["name"] for x in names] == raw  # personal data unmasked within its grids
    fc = ok(gql(cx, "t-gw", "{ featureCollection(layer: HOUSEHOLDS, limit: 5000) }"))
    assert {int(f["id"]) for f in fc["featureCollection"]["features"]} == with_dwelling
    assert ok(gql(cx, "t-gw", "{ grids { code } }"))["grids"] == [{"code": "G1"}, {"code": "G1-1"}, {"code": "G1-1-1"}]
    # OGC items and a single item; vector tiles
    headers = {"Authorization": f"Bearer {cx['tokens']['t-gw']}"}
    r = cx["client"].get("/ogc/collections/households/items?limit=10000", headers=headers)
    assert r.status_code == 200 and {f["id"] for f in r.json()["features"]} == with_dwelling
    assert r.json()["numberMatched"] == len(with_dwelling)
    assert cx["client"].get(f"/ogc/collections/households/items/{outside}", headers=headers).status_code == 404
    lon, lat = (await rows(cx, "SELECT ST_X(dwelling), ST_Y(dwelling) FROM household WHERE id = :h", h=min(with_dwelling)))[0]
    x, y = _tile(lon, lat, 14)
    r = cx["client"].get(f"/tiles/households/14/{x}/{y}.mvt", headers=headers)
    assert r.status_code == 200
    got = {f["id"] for f in mapbox_vector_tile.decode(r.content)["households"]["features"]}
    assert got and got <= with_dwelling
    # writes: a household of another grid is FORBIDDEN and nothing is written; its own is written
    before = await digest(cx["eng"])
    v = await one(cx, "SELECT version FROM household WHERE id = :h", h=outside)
    upd = "mutation($in: UpdateHouseholdInput!) { updateHousehold(input: $in) { household { version } } }"
    body = gql(cx, "t-gw", upd, **{"in": {"id": str(outside), "version": v, "povertyStatus": "NON_POOR"}})
    assert code(body) == "FORBIDDEN"
    opened = "mutation($in: OpenMonitoringCaseInput!) { openMonitoringCase(input: $in) { id } }"
    case_in = {"householdId": str(outside), "category": "MARGINAL", "riskTypes": ["ILLNESS"], "source": "GRID_VISIT",
               "openedOn": "2024-05-01"}  # fmt: skip
    assert code(gql(cx, "t-gw", opened, **{"in": case_in})) == "FORBIDDEN"
    assert await digest(cx["eng"]) == before
    # planners and admins see every household; the officer of the village its village's
    assert ok(gql(cx, "t-village", "{ households { totalCount } }"))["households"]["totalCount"] == await one(
        cx, f"SELECT count(*) FROM household WHERE admin_code LIKE '{VILLAGE}%'"
    )


CASE = "id stage stageOn version closedOn includedOn nextStage steps { stage approved stageAfter userName actorLevel }"
OPEN = f"mutation($in: OpenMonitoringCaseInput!) {{ openMonitoringCase(input: $in) {{ {CASE} }} }}"
ACT = f"mutation($in: ActOnCaseInput!) {{ actOnMonitoringCase(input: $in) {{ {CASE} }} }}"
LIFE = [  # (stage, who, actedOn, extra)
    ("HOME_VERIFICATION", "t-gw", "2024-05-03", {"participants": ["网格员甲"]}),
    ("VILLAGE_APPRAISAL", "t-village", "2024-05-06", {}),
    ("PUBLIC_NOTICE", "t-village", "2024-05-14", {"noticeFrom": "2024-05-07", "noticeTo": "2024-05-13"}),
    ("TOWNSHIP_REVIEW", "t-township", "2024-05-20", {}),
    ("COUNTY_APPROVAL", "t-county", "2024-05-25", {}),
    ("ELIMINATION_PROPOSAL", "t-gw", "2024-11-01", {}),
    ("ELIMINATION_VERIFICATION", "t-gw", "2024-11-03", {"participants": ["网格员甲", "驻村干部乙"]}),
    ("ELIMINATION_APPRAISAL", "t-village", "2024-11-05", {}),
    ("ELIMINATION_NOTICE", "t-village", "2024-11-13", {"noticeFrom": "2024-11-06", "noticeTo": "2024-11-12"}),
    ("ELIMINATION_REVIEW", "t-township", "2024-11-20", {}),
    ("ELIMINATION_CONFIRMATION", "t-county", "2024-11-28", {}),
]


async def test_a_case_whole_life_over_http_with_every_refusal(cx, grids):  # type: ignore[no-untyped-def]
    hid = grids["mine"][1]
    start = {"householdId": str(hid), "category": "UNSTABLE_OUT_OF_POVERTY", "riskTypes": ["ILLNESS", "LACK_OF_LABOR"],
             "source": "GRID_VISIT", "openedOn": "2024-05-01"}  # fmt: skip
    case = ok(gql(cx, "t-gw", OPEN, **{"in": start}))["openMonitoringCase"]
    assert case["stage"] == "APPLICATION" and case["nextStage"] == "HOME_VERIFICATION"
    # a second open case of the same household: CONFLICT
    assert code(gql(cx, "t-gw", OPEN, **{"in": start})) == "CONFLICT"
    cid = case["id"]
    for i, (stage, who, on, extra) in enumerate(LIFE):
        act = {"caseId": cid, "version": case["version"], "stage": stage, "actedOn": on, **extra}
        before = await digest(cx["eng"])
        # out of order: the stage after the next one, by its own actor → refused, nothing written
        if i + 1 < len(LIFE):
            skip, skip_who, skip_on, skip_extra = LIFE[i + 1]
            body = gql(cx, skip_who, ACT, **{"in": {**act, "stage": skip, "actedOn": skip_on, **skip_extra}})
            assert code(body) == "BAD_USER_INPUT" and body["errors"][0]["extensions"]["field"] == "stage", body
        # a level above (or beside) the one of this stage → FORBIDDEN, nothing written
        wrong = "t-county" if who != "t-county" else "t-village"
        assert code(gql(cx, wrong, ACT, **{"in": act})) == "FORBIDDEN", (stage, wrong)
        # a stale version → CONFLICT
        assert code(gql(cx, who, ACT, **{"in": {**act, "version": case["version"] - 1}})) == "CONFLICT"
        assert await digest(cx["eng"]) == before, stage
        case = ok(gql(cx, who, ACT, **{"in": act}))["actOnMonitoringCase"]
        assert case["stage"] == stage and case["stageOn"] == on
    assert case["closedOn"] == "2024-11-28" and case["includedOn"] == "2024-05-25" and case["nextStage"] is None
    assert [s["stage"] for s in case["steps"]] == ["APPLICATION"] + [x[0] for x in LIFE]
    assert [s["userName"] for s in case["steps"]] == ["t-gw"] + [x[1] for x in LIFE]
    assert [s["actorLevel"] for s in case["steps"]][:6] == [
        "grid_worker",
        "grid_worker",
        "village",
        "village",
        "township",
        "county",
    ]
    # the audit log holds each step (raw rows), and an admin reads it over GraphQL
    actions = [
        r[0]
        for r in await rows(
            cx, "SELECT action FROM audit_log WHERE entity = 'monitoring_case' AND entity_id = :c ORDER BY id", c=cid
        )
    ]
    assert actions == ["openMonitoringCase"] + [f"case.{x[0].lower()}" for x in LIFE]
    log = ok(gql(cx, "t-admin", '{ auditLog(entity: "monitoring_case", first: 50) { nodes { action userName } } }'))
    assert {"action": "case.county_approval", "userName": "t-county"} in log["auditLog"]["nodes"]
    # never deleted, even by the owner
    async with cx["eng"].connect() as c:
        with pytest.raises(Exception, match="never deleted"):
            await c.execute(text("DELETE FROM monitoring_case WHERE id = :c"), {"c": int(cid)})
    # the household's monitoring flags followed the case
    assert tuple(
        (await rows(cx, "SELECT monitoring_category::text, risk_eliminated FROM household WHERE id = :h", h=hid))[0]
    ) == (
        "unstable_out_of_poverty",
        True,
    )


async def test_notice_days_participants_and_refusals(cx, grids):  # type: ignore[no-untyped-def]
    hid = grids["mine"][2]
    start = {
        "householdId": str(hid),
        "category": "MARGINAL",
        "riskTypes": ["DISASTER"],
        "source": "HOTLINE",
        "openedOn": "2024-06-01",
    }
    case = ok(gql(cx, "t-village", OPEN, **{"in": start}))["openMonitoringCase"]
    for stage, who, on in (("HOME_VERIFICATION", "t-gw", "2024-06-02"), ("VILLAGE_APPRAISAL", "t-village", "2024-06-03")):
        case = ok(gql(cx, who, ACT, **{"in": {"caseId": case["id"], "version": case["version"], "stage": stage, "actedOn": on}}))[
            "actOnMonitoringCase"
        ]
    short = {"caseId": case["id"], "version": case["version"], "stage": "PUBLIC_NOTICE", "actedOn": "2024-06-10",
             "noticeFrom": "2024-06-04", "noticeTo": "2024-06-08"}  # fmt: skip  # 5 days < N = 7
    body = gql(cx, "t-village", ACT, **{"in": short})
    assert code(body) == "BAD_USER_INPUT" and body["errors"][0]["extensions"]["field"] == "noticeTo"
    good = {**short, "actedOn": "2024-06-12", "noticeTo": "2024-06-10"}
    case = ok(gql(cx, "t-village", ACT, **{"in": good}))["actOnMonitoringCase"]
    # the township acts only after the notice ended; then refuses: the case closes NOT_INCLUDED
    early = {"caseId": case["id"], "version": case["version"], "stage": "TOWNSHIP_REVIEW", "actedOn": "2024-06-10"}
    assert code(gql(cx, "t-township", ACT, **{"in": early})) == "BAD_USER_INPUT"
    refuse = {**early, "actedOn": "2024-06-15", "approved": False, "notes": "收入达标"}
    case = ok(gql(cx, "t-township", ACT, **{"in": refuse}))["actOnMonitoringCase"]
    assert (case["stage"], case["closedOn"], case["nextStage"]) == ("NOT_INCLUDED", "2024-06-15", None)
    assert (
        code(
            gql(
                cx,
                "t-county",
                ACT,
                **{"in": {**early, "version": case["version"], "stage": "COUNTY_APPROVAL", "actedOn": "2024-06-16"}},
            )
        )
        == "BAD_USER_INPUT"
    )


async def test_two_concurrent_approvals_one_wins(cx, grids):  # type: ignore[no-untyped-def]
    hid = grids["mine"][3]
    admin_sm = cx["sm"]
    gw = Viewer(await one(cx, "SELECT id FROM app_user WHERE name = 't-gw'"), "t-gw", Role.GRID_WORKER)
    sm = scoped_sessionmaker(admin_sm, gw)
    actors = cx["settings"].casework.stage_actors
    today = dt.date(2025, 1, 1)
    cid = await cw.open_case(
        sm, household_id=hid, category=cw.m.MonitoringCategory.MARGINAL, risk_types=[cw.m.RiskType.ACCIDENT],
        source=cw.m.CaseSource.GRID_VISIT, opened_on=dt.date(2024, 7, 1), notes=None, today=today, actors=actors,
    )  # fmt: skip
    steps_before = await one(cx, "SELECT count(*) FROM case_step WHERE case_id = :c", c=cid)

    async def approve(note: str) -> Any:
        return await cw.act_on_case(
            sm, case_id=cid, version=1, stage=cw.m.CaseStage.HOME_VERIFICATION, approved=True, acted_on=dt.date(2024, 7, 2),
            notes=note, participants=[], notice_from=None, notice_to=None, today=today, actors=actors, notice_days={},
        )  # fmt: skip

    results = await asyncio.gather(approve("first"), approve("second"), return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["StaleVersion", "int"], results
    assert any(isinstance(r, StaleVersion) and r.code == "CONFLICT" for r in results)
    assert await one(cx, "SELECT count(*) FROM case_step WHERE case_id = :c", c=cid) == steps_before + 1
    assert await one(cx, "SELECT version FROM monitoring_case WHERE id = :c", c=cid) == 2
    # the trigger refuses a skipped stage even written around the mutations (owner, no row-level security)
    async with cx["eng"].connect() as c:
        with pytest.raises(Exception, match="does not follow"):
            await c.execute(
                text("INSERT INTO case_step (case_id, stage, approved, stage_after, acted_on, user_name, actor_level) "
                     "VALUES (:c, 'public_notice', true, 'public_notice', '2024-07-03', 'x', 'admin')"),
                {"c": cid},
            )  # fmt: skip


MISSED = (
    "query($on: Date, $y: Int, $g: ID) { missedMonitoring(on: $on, incomeYear: $y, gridId: $g, first: 500) { totalCount "
    "nodes { household { id } belowLine incomeDrop guaranteesFailing hardship rebound } } }"
)
RAW_MISSED = """
WITH pc AS (SELECT household_id, year, net_income / household_size AS pc FROM household_income WHERE household_size > 0),
g AS (SELECT DISTINCT ON (household_id) * FROM guarantee_check WHERE checked_on <= :on ORDER BY household_id, checked_on DESC, id DESC)
SELECT h.id,
  coalesce(c.pc < CAST(:line AS numeric), false) AS below,
  coalesce(p.pc > 0 AND c.pc < p.pc * (1 - CAST(:share AS numeric)), false) AS drop,
  array_remove(ARRAY[CASE WHEN g.education = false THEN 'education' END, CASE WHEN g.medical = false THEN 'medical' END,
    CASE WHEN g.housing = false THEN 'housing' END, CASE WHEN g.drinking_water = false THEN 'drinking_water' END], NULL) AS failing,
  EXISTS (SELECT 1 FROM hardship_report r WHERE r.household_id = h.id AND r.reported_on <= :on AND r.reported_on > :on - 365) AS hardship,
  EXISTS (SELECT 1 FROM monitoring_case k WHERE k.household_id = h.id AND k.stage = 'elimination_confirmation' AND k.closed_on <= :on) AS rebound
FROM household h
LEFT JOIN pc c ON c.household_id = h.id AND c.year = :y
LEFT JOIN pc p ON p.household_id = h.id AND p.year = :y - 1
LEFT JOIN g ON g.household_id = h.id
WHERE h.grid_id = :grid
  AND NOT EXISTS (SELECT 1 FROM monitoring_case k WHERE k.household_id = h.id AND k.opened_on <= :on AND (k.closed_on IS NULL OR :on < k.closed_on))
"""


async def _raw_missed(cx: dict[str, Any], on: str, year: int, grid: int) -> dict[int, tuple[Any, ...]]:
    out = {}
    for r in await rows(
        cx, RAW_MISSED, on=dt.date.fromisoformat(on), y=year, grid=grid, line=Decimal(10000), share=Decimal("0.3")
    ):
        if r.below or r.drop or r.failing or r.hardship:
            out[r.id] = (r.below, r.drop, sorted(r.failing), r.hardship, r.rebound)
    return out


def _got(d: dict[str, Any]) -> dict[int, tuple[Any, ...]]:
    return {
        int(n["household"]["id"]): (n["belowLine"], n["incomeDrop"], sorted(n["guaranteesFailing"]), n["hardship"], n["rebound"])
        for n in d["missedMonitoring"]["nodes"]
    }


async def test_missed_monitoring_and_rebound_recomputed_from_raw_rows(cx, grids):  # type: ignore[no-untyped-def]
    g = int(grids["b1"])
    checks = [("2024-04-13", 2023), ("2024-12-31", 2024), ("2025-03-01", 2024)]
    for on, year in checks:
        got = _got(ok(gql(cx, "t-gw", MISSED, on=on, y=year, g=str(g))))
        assert got == await _raw_missed(cx, on, year, g), on
    # changes: a failing guarantee, a hardship, on 2025-02-01 for two households of the grid without an open case
    free = list(grids["mine"][10:])[:2]
    mk = 'mutation($h: ID!, $g: GuaranteesInput!) { recordGuaranteeCheck(householdId: $h, checkedOn: "2025-02-01", guarantees: $g) }'
    ok(gql(cx, "t-gw", mk, h=str(free[0]), g={"education": True, "medical": False, "housing": True, "drinkingWater": False}))
    hs = 'mutation($h: ID!) { reportHardship(householdId: $h, reportedOn: "2025-02-01", riskType: ACCIDENT) }'
    ok(gql(cx, "t-gw", hs, h=str(free[1])))
    before = _got(ok(gql(cx, "t-gw", MISSED, on="2025-01-31", y=2024, g=str(g))))
    after = _got(ok(gql(cx, "t-gw", MISSED, on="2025-03-01", y=2024, g=str(g))))
    assert after[free[0]][2] == ["drinking_water", "medical"] and after[free[1]][3] is True
    assert free[0] not in before or before[free[0]][2] == []
    for on in ("2025-01-31", "2025-03-01"):
        assert _got(ok(gql(cx, "t-gw", MISSED, on=on, y=2024, g=str(g)))) == await _raw_missed(cx, on, 2024, g)
    # the household whose risk was eliminated on 2024-11-28 (the life test) counts as a rebound when it meets a criterion
    eliminated = grids["mine"][1]
    ok(gql(cx, "t-gw", hs, h=str(eliminated)))
    got = _got(ok(gql(cx, "t-gw", MISSED, on="2025-03-01", y=2024, g=str(g))))
    assert got[eliminated][4] is True and got[eliminated][3] is True
    # while it was under its case (2024-06-01) it is not missed
    assert eliminated not in _got(ok(gql(cx, "t-gw", MISSED, on="2024-06-01", y=2023, g=str(g))))


LEDGER = (
    "query($on: Date, $a: String, $g: ID, $y: Int) { monitoringLedger(on: $on, areaCode: $a, gridId: $g, year: $y) "
    "{ cells { dimension key households persons } twoGroups { households persons incomeDown belowLine withMeasures } suppressed } }"
)
RAW_LEDGER = """
WITH p AS (
  SELECT c.id, c.household_id, c.category::text AS category, c.risk_types,
    (SELECT s.stage_after::text FROM case_step s WHERE s.case_id = c.id AND s.acted_on <= :on ORDER BY s.acted_on DESC, s.id DESC LIMIT 1) AS stage,
    (SELECT count(*) FROM member m WHERE m.household_id = c.household_id AND (m.joined_on IS NULL OR m.joined_on <= :on)
       AND (m.left_on IS NULL OR :on < m.left_on)) AS persons
  FROM monitoring_case c JOIN household h ON h.id = c.household_id
  WHERE c.opened_on <= :on AND h.admin_code LIKE :prefix)
SELECT dim, key, count(DISTINCT household_id), sum(persons) FROM (
  SELECT DISTINCT dim, key, household_id, persons FROM (
    SELECT 'category' AS dim, category AS key, household_id, persons FROM p
    UNION ALL SELECT 'risk_type', unnest(risk_types)::text, household_id, persons FROM p
    UNION ALL SELECT 'stage', stage, household_id, persons FROM p
    UNION ALL SELECT 'outcome', CASE WHEN stage IN ('application','home_verification','village_appraisal','public_notice','township_review') THEN 'identifying'
       WHEN stage = 'elimination_confirmation' THEN 'risk_eliminated' WHEN stage = 'not_included' THEN 'not_included' ELSE 'monitored' END, household_id, persons FROM p
    UNION ALL SELECT 'measure_type', a.type::text, p.household_id, p.persons FROM p JOIN assistance_measure a ON a.case_id = p.id AND a.start_on <= :on
  ) u) d GROUP BY dim, key ORDER BY dim, key
"""


async def test_ledger_counts_recomputed_from_raw_rows_before_and_after_changes(cx, grids):  # type: ignore[no-untyped-def]
    async def check(on: str) -> None:
        raw = [
            {"dimension": r[0], "key": r[1], "households": r[2], "persons": int(r[3])}
            for r in await rows(cx, RAW_LEDGER, on=dt.date.fromisoformat(on), prefix=VILLAGE + "%")
        ]
        got = ok(gql(cx, "t-village", LEDGER, on=on, a=VILLAGE))["monitoringLedger"]
        assert got["cells"] == raw and not got["suppressed"], on
        assert ok(gql(cx, "t-county", LEDGER, on=on, a=COUNTY))["monitoringLedger"]["cells"] == raw  # every case is in Yixin
        assert ok(gql(cx, "t-admin", LEDGER, on=on, a="510000"))["monitoringLedger"]["cells"] == raw  # and in Sichuan

    for on in ("2024-04-30", "2024-05-10", "2024-06-30", "2024-12-31"):
        await check(on)
    # a measure added to a monitored case moves the measure cells from its start date on
    cid = await one(
        cx,
        "SELECT c.id FROM monitoring_case c JOIN household h ON h.id = c.household_id "
        "WHERE c.stage = 'elimination_confirmation' AND h.grid_id = :g ORDER BY c.id LIMIT 1",  # one of t-gw's grid
        g=int(grids["b1"]),
    )
    m_in = {"caseId": str(cid), "type": "EMPLOYMENT", "responsible": "县人社局", "startOn": "2024-06-15", "funds": "3000.00",
            "status": "COMPLETED", "endOn": "2024-10-31"}  # fmt: skip
    ok(
        gql(
            cx,
            "t-gw",
            "mutation($in: AssistanceMeasureInput!) { recordAssistanceMeasure(input: $in) { measures { type } } }",
            **{"in": m_in},
        )
    )
    for on in ("2024-06-14", "2024-06-15", "2024-12-31"):
        await check(on)
    cells = ok(gql(cx, "t-village", LEDGER, on="2024-06-15", a=VILLAGE))["monitoringLedger"]["cells"]
    assert {
        "dimension": "measure_type",
        "key": "employment",
        "households": 1,
        "persons": cells[0]["persons"] * 0
        + (
            await one(
                cx,
                "SELECT count(*) FROM member WHERE household_id = (SELECT household_id FROM monitoring_case WHERE id = :c) AND left_on IS NULL",
                c=cid,
            )
        ),
    } in cells
    # the grid's ledger equals the area's here (all cases are in building 1); the two-group view recomputed
    grid = ok(gql(cx, "t-gw", LEDGER, on="2024-06-30", g=grids["b1"], y=2023))["monitoringLedger"]
    two = await rows(
        cx,
        "SELECT count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM assistance_measure a WHERE a.household_id = h.id AND a.start_on <= :on)) "
        "FROM household h WHERE h.grid_id = :g AND EXISTS (SELECT 1 FROM monitoring_case c WHERE c.household_id = h.id "
        "AND c.category IN ('unstable_out_of_poverty', 'marginal') AND c.opened_on <= :on AND (c.closed_on IS NULL OR :on < c.closed_on))",
        on=dt.date(2024, 6, 30), g=int(grids["b1"]),
    )  # fmt: skip
    assert (grid["twoGroups"]["households"], grid["twoGroups"]["withMeasures"]) == tuple(two[0])
    # partners: only their paired counties' ledger (none paired here) and never a grid's
    assert code(gql(cx, "t-gw", LEDGER, on="2024-06-30", a=COUNTY, g=grids["b1"])) == "BAD_USER_INPUT"


FINDINGS = "query($on: Date, $o: Boolean!) { findings(on: $on, overdue: $o) { id state stateOn deadline version } }"
ADV = "mutation($f: ID!, $v: Int!, $s: FindingState!, $on: Date!) { advanceFinding(findingId: $f, version: $v, state: $s, on: $on) { state version } }"


async def test_a_finding_from_assignment_to_verification_and_overdue_lists(cx, grids):  # type: ignore[no-untyped-def]
    ins = {"countyCode": COUNTY, "kind": "UNANNOUNCED", "startsOn": "2024-09-01", "endsOn": "2024-09-03", "team": ["省督导组"],
           "spotChecks": [{"householdId": str(grids["mine"][0]), "visitedOn": "2024-09-02"}],
           "findings": [{"kind": "MISSED_MONITORING", "description": "一户收入骤降未纳入监测", "unit": "县乡村振兴局",
                         "foundOn": "2024-09-02", "deadline": "2024-10-15"},
                        {"kind": "GUARANTEE_GAP", "description": "饮水设施损坏", "unit": "县水务局",
                         "foundOn": "2024-09-02", "deadline": "2024-09-30"}]}  # fmt: skip
    assert (
        code(gql(cx, "t-county", "mutation($in: CreateInspectionInput!) { createInspection(input: $in) }", **{"in": ins}))
        == "FORBIDDEN"
    )
    ok(gql(cx, "t-admin", "mutation($in: CreateInspectionInput!) { createInspection(input: $in) }", **{"in": ins}))
    fs = ok(gql(cx, "t-county", FINDINGS, on="2024-09-10", o=False))["findings"]
    f1 = next(f for f in fs if f["deadline"] == "2024-10-15")
    # out of order and the county verifying are refused
    assert code(gql(cx, "t-county", ADV, f=f1["id"], v=1, s="RECTIFIED", on="2024-09-10")) == "BAD_USER_INPUT"
    v = ok(gql(cx, "t-county", ADV, f=f1["id"], v=1, s="RECTIFYING", on="2024-09-10"))["advanceFinding"]["version"]
    v = ok(gql(cx, "t-county", ADV, f=f1["id"], v=v, s="RECTIFIED", on="2024-10-20"))["advanceFinding"]["version"]
    assert code(gql(cx, "t-county", ADV, f=f1["id"], v=v, s="VERIFIED", on="2024-10-25")) == "FORBIDDEN"
    assert ok(gql(cx, "t-admin", ADV, f=f1["id"], v=v, s="VERIFIED", on="2024-10-25"))["advanceFinding"]["state"] == "VERIFIED"
    assert code(gql(cx, "t-gw", FINDINGS, on="2024-10-01", o=True)) == "FORBIDDEN"
    for on in ("2024-09-15", "2024-10-01", "2024-10-16", "2024-10-21", "2024-11-01"):
        raw = {
            r[0]
            for r in await rows(
                cx,
                "SELECT id FROM finding WHERE found_on <= :on AND deadline < :on AND (rectified_on IS NULL OR rectified_on > :on)",
                on=dt.date.fromisoformat(on),
            )
        }
        got = ok(gql(cx, "t-county", FINDINGS, on=on, o=True))["findings"]
        assert {int(f["id"]) for f in got} == raw, on
        counts = ok(gql(cx, "t-county", "query($on: Date) { overdueFindingCounts(on: $on) { countyCode kind findings } }", on=on))
        assert sum(c["findings"] for c in counts["overdueFindingCounts"]) == len(raw)
    states = {f["id"]: f["stateOn"] for f in ok(gql(cx, "t-county", FINDINGS, on="2024-10-21", o=False))["findings"]}
    assert states[f1["id"]] == "RECTIFIED"
    actions = [
        r[0]
        for r in await rows(
            cx, "SELECT action FROM audit_log WHERE entity = 'finding' AND entity_id = :f ORDER BY id", f=f1["id"]
        )
    ]
    assert actions == ["recordFinding", "finding.rectifying", "finding.rectified", "finding.verified"]
    # before and after of a step are the same image of the row (the shared row_json): state, its date, version
    (moved,) = await rows(
        cx,
        "SELECT before ->> 'state', after ->> 'state', after ->> 'rectifying_on', (before ->> 'version')::int, "
        "(after ->> 'version')::int, (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(before) k) = "
        "(SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(after) k) "
        "FROM audit_log WHERE entity = 'finding' AND entity_id = :f AND action = 'finding.rectifying'",
        f=f1["id"],
    )
    assert tuple(moved) == ("open", "rectifying", "2024-09-10", 1, 2, True)


async def test_partners_get_only_suppressed_ledgers_of_paired_counties_and_no_casework(cx, grids):  # type: ignore[no-untyped-def]
    k = cx["settings"].privacy.min_cell_households
    on = "2024-12-31"
    raw = {(r[0], r[1]): r[2] for r in await rows(cx, RAW_LEDGER, on=dt.date.fromisoformat(on), prefix=COUNTY + "%")}
    got = ok(gql(cx, "t-partner", LEDGER, on=on, a=COUNTY))["monitoringLedger"]
    shown = {(c["dimension"], c["key"]): c["households"] for c in got["cells"]}
    assert shown and all(v >= k and raw[key] == v for key, v in shown.items())
    assert got["suppressed"] == any(v < k for v in raw.values())
    assert all(key in shown for key, v in raw.items() if v >= k and key[0] == "outcome") or got["suppressed"]
    # not a grid's, not an unpaired county's, no case records, no writes
    assert code(gql(cx, "t-partner", LEDGER, on=on, g=grids["b1"])) == "FORBIDDEN"
    assert code(gql(cx, "t-partner", LEDGER, on=on, a="513431")) == "FORBIDDEN"
    assert code(gql(cx, "t-partner", "{ monitoringCases { totalCount } }")) == "FORBIDDEN"
    assert code(gql(cx, "t-partner", '{ missedMonitoring(on: "2025-01-01") { totalCount } }')) == "FORBIDDEN"
    assert code(gql(cx, "t-planner", OPEN, **{"in": {"householdId": str(grids["mine"][5]), "category": "MARGINAL",
                                                     "riskTypes": ["OTHER"], "source": "HOTLINE", "openedOn": "2024-01-01"}})) == "FORBIDDEN"  # fmt: skip
    # the planner reads every case, names masked
    total = await one(cx, "SELECT count(*) FROM monitoring_case")
    assert ok(gql(cx, "t-planner", "{ monitoringCases { totalCount } }"))["monitoringCases"]["totalCount"] == total


async def test_counties_and_a_measures_facility_are_checked_as_everywhere(cx, grids):  # type: ignore[no-untyped-def]
    """The one county check (grids, inspections, partners): another level is BAD_USER_INPUT, an unknown code NOT_FOUND;
    a measure's facility the one facility check: NOT_FOUND naming facilityId. Nothing is written."""
    before = await one(cx, "SELECT (SELECT count(*) FROM grid) + (SELECT count(*) FROM inspection) + "
                           "(SELECT count(*) FROM assistance_measure)")  # fmt: skip
    ins = {"kind": "UNANNOUNCED", "startsOn": "2024-09-01", "endsOn": "2024-09-03", "team": ["省督导组"], "spotChecks": [],
           "findings": []}  # fmt: skip
    for county, want in ((TOWNSHIP, "BAD_USER_INPUT"), ("513499", "NOT_FOUND")):
        body = gql(cx, "t-county", GRID, **{"in": {"countyCode": county, "code": "GX", "name": "x"}})
        assert (code(body), body["errors"][0]["extensions"]["field"]) == (want, "countyCode"), county
        body = gql(cx, "t-admin", "mutation($in: CreateInspectionInput!) { createInspection(input: $in) }",
                   **{"in": {**ins, "countyCode": county}})  # fmt: skip
        assert (code(body), body["errors"][0]["extensions"]["field"]) == (want, "countyCode"), county
    cid = await one(cx, "SELECT min(id) FROM monitoring_case")
    missing = await one(cx, "SELECT coalesce(max(id), 0) + 1 FROM facility")
    m_in = {"caseId": str(cid), "type": "EMPLOYMENT", "responsible": "县人社局", "startOn": "2024-06-15",
            "status": "COMPLETED", "facilityId": str(missing)}  # fmt: skip
    body = gql(cx, "t-admin", "mutation($in: AssistanceMeasureInput!) { recordAssistanceMeasure(input: $in) { id } }",
               **{"in": m_in})  # fmt: skip
    assert (code(body), body["errors"][0]["extensions"]["field"]) == ("NOT_FOUND", "facilityId")
    assert f"facility {missing} does not exist" in body["errors"][0]["message"]
    assert await one(cx, "SELECT (SELECT count(*) FROM grid) + (SELECT count(*) FROM inspection) + "
                         "(SELECT count(*) FROM assistance_measure)") == before  # fmt: skip


async def test_an_end_before_its_start_is_refused_by_the_one_period_check(cx, grids):  # type: ignore[no-untyped-def]
    """Inspections (endsOn), their findings (deadline) and measures (endOn): the shared check_period's refusal, naming the
    end's field and both dates; nothing written."""
    before = await one(cx, "SELECT (SELECT count(*) FROM inspection) + (SELECT count(*) FROM assistance_measure)")
    ins = {"countyCode": COUNTY, "kind": "UNANNOUNCED", "startsOn": "2024-09-01", "endsOn": "2024-08-31", "team": ["省督导组"],
           "spotChecks": [], "findings": []}  # fmt: skip
    finding = {"kind": "GUARANTEE_GAP", "description": "饮水设施损坏", "unit": "县水务局", "foundOn": "2024-09-02",
               "deadline": "2024-09-01"}  # fmt: skip
    cid = await one(cx, "SELECT min(id) FROM monitoring_case")
    measure = {"caseId": str(cid), "type": "EMPLOYMENT", "responsible": "县人社局", "startOn": "2024-06-15",
               "endOn": "2024-06-14", "status": "COMPLETED"}  # fmt: skip
    for mutation, given, field, message in (
        ("createInspection(input: $in)", ins, "endsOn", "endsOn: 2024-08-31 is before startsOn 2024-09-01"),
        ("createInspection(input: $in)", {**ins, "endsOn": "2024-09-03", "findings": [finding]}, "findings[0].deadline",
         "findings[0].deadline: 2024-09-01 is before foundOn 2024-09-02"),
        ("recordAssistanceMeasure(input: $in) { id }", measure, "endOn", "endOn: 2024-06-14 is before startOn 2024-06-15"),
    ):  # fmt: skip
        kind = "CreateInspectionInput" if "Inspection" in mutation else "AssistanceMeasureInput"
        body = gql(cx, "t-admin", f"mutation($in: {kind}!) {{ {mutation} }}", **{"in": given})
        assert (code(body), body["errors"][0]["extensions"]["field"]) == ("BAD_USER_INPUT", field)
        assert body["errors"][0]["message"].startswith(message)
    assert await one(cx, "SELECT (SELECT count(*) FROM inspection) + (SELECT count(*) FROM assistance_measure)") == before


async def test_a_prefecture_or_province_code_is_not_a_county(cx, grids):  # type: ignore[no-untyped-def]
    """check_county with a recorded area of a level above a county (the Liangshan prefecture 513400, the province 510000):
    BAD_USER_INPUT naming its level, not NOT_FOUND "no admin area" (the area exists). Nothing is written."""
    before = await one(cx, "SELECT (SELECT count(*) FROM grid) + (SELECT count(*) FROM inspection)")
    ins = {"kind": "UNANNOUNCED", "startsOn": "2024-09-01", "endsOn": "2024-09-03", "team": ["省督导组"], "spotChecks": [],
           "findings": []}  # fmt: skip
    for county, level in (("513400", "prefecture"), ("510000", "province")):
        for body in (
            gql(cx, "t-admin", GRID, **{"in": {"countyCode": county, "code": "GX", "name": "x"}}),
            gql(cx, "t-admin", "mutation($in: CreateInspectionInput!) { createInspection(input: $in) }",
                **{"in": {**ins, "countyCode": county}}),
        ):  # fmt: skip
            (error,) = body["errors"]
            assert (error["extensions"]["code"], error["extensions"]["field"]) == ("BAD_USER_INPUT", "countyCode"), body
            assert error["message"] == f"countyCode: {county} is a {level}, not a county"
    assert await one(cx, "SELECT (SELECT count(*) FROM grid) + (SELECT count(*) FROM inspection)") == before
