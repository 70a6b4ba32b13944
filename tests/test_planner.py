"""Reads planned into SQL (schema/planner.py) answer exactly what the resolvers answer, under every role.

Each query runs twice over HTTP with real tokens: through an app whose planner is on (PostgreSQL builds the JSON) and
through one whose planner is off (the resolvers), and the two bodies must be the same JSON (keys sorted, whole floats as
integers). ``schema.planner.STATS`` shows which path answered. The whole suite also runs with verification on
(tests/conftest.py): every planned field of every test is compared with the resolvers.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker
from starlette.testclient import TestClient

from anju.app import create_app
from anju.db import ReadPool, Stale
from resolvers.access import ScopeCheck, scope_check, viewer_by_name
from schema import planner
from tests.test_access import ROLES, post

QUERIES = {
    "households with members": "{ households(first: 100) { nodes { id code members { id name gender birthYear } } } }",
    "one site with its facilities": '{ relocationSite(id: "1") { name location facilities { id name kind location } } }',
    "page with linked income": "{ households(first: 100) { nodes { id code stablyEmployedCount "
    "linkedIncome(year: 2023) { total perCapita byMechanism { mechanism amount households } } } } }",
    "map layers": """{ facilities: featureCollection(layer: FACILITIES, bbox: [100, 26, 104, 30], limit: 2000)
        sites: featureCollection(layer: RELOCATION_SITES, coordSys: GCJ02)
        homes: featureCollection(layer: HOUSEHOLDS, zoom: 9, limit: 50, filter: {zeroEmployment: true, asOf: "2024-04-13"})
        areas: featureCollection(layer: ADMIN_AREAS, zoom: 8, limit: 5, filter: {areaCode: "513432"}) }""",
    "aliases of nodes, members in the query's order": """{
        facilities(first: 2) { __typename pageInfo { endCursor } totalCount a: nodes { x: id } b: nodes { x: name } }
        households(first: 1) { a: nodes { employments(asOf: "2015-01-01") { id } }
                               b: nodes { employments(asOf: "2024-06-01") { id } } } }""",
    "employment coverage": """{
        p: adminArea(code: "510000") { employmentCoverage(asOf: "2024-04-13") { households householdsWithLaborForce
          householdsCovered coverageRate zeroEmploymentHouseholds employedPersons stablyEmployedPersons
          byChannel { channel count __typename } suppressed __typename } }
        c: adminArea(code: "513432") { code employmentCoverage(asOf: "2024-04-13") { households coverageRate } }
        t: adminArea(code: "513432100") { employmentCoverage { households } }
        adminAreas(level: COUNTY, first: 5) { nodes { code
          employmentCoverage(asOf: "2024-04-13") { households householdsCovered byChannel { count channel } } } }
        relocationSite(id: "1") { employmentCoverage(asOf: "2024-04-13") { households coverageRate byChannel { channel count } } }
    }""",
    "everything nested": """{
        households(first: 5, filter: {zeroEmployment: false, asOf: "2024-04-13"}) {
          totalCount pageInfo { hasNextPage endCursor __typename } __typename
          nodes { __typename id code relocatedOn povertyStatus monitoringCategory riskEliminated version dwelling
            size laborForceCount sizeThen: size(asOf: "2020-01-01") isZeroEmployment(asOf: "2024-04-13")
            members(includeLeft: true) { id name phone idNumberLast4 skills joinedOn joinReason leftOn leaveReason
              employments { id channel startOn endOn monthlyWage stable employerName outboundRegion workplace
                facility { id name } member { id } } }
            employments(asOf: "2024-04-13") { id member { name } }
            incomeLinkages(year: 2023) { id mechanism year amount facility { name } household { code } }
            netIncome(year: 2023) site { id name kind plannedHouseholds openedOn closedOn version boundary }
            adminArea { code name level assistanceTier parent { code } } originArea { code } } }
        relocationSites(first: 2) { totalCount nodes { id name householdCount population
          households(first: 3) { totalCount pageInfo { endCursor hasNextPage } nodes { id } }
          adminArea { name } } }
        facilities(first: 3, filter: {kinds: [ASSISTANCE_WORKSHOP, INDUSTRIAL_PARK]}) {
          nodes { id name kind areaMu plannedJobs operator openedOn footprint site { name } adminArea { code } } }
        adminArea(code: "513400") { code name geometry children(first: 3) { totalCount nodes { code name } } }
        adminAreas(level: COUNTY, first: 3) { nodes { code name } pageInfo { endCursor } }
        zeroEmploymentHouseholds(asOf: "2024-04-13", first: 3) { totalCount nodes { id code } }
        nobody: household(id: "99999999") { id }
        notAnId: household(id: "x") { id }
    }""",
}


@pytest.fixture(scope="module")
def apps(settings, users):  # type: ignore[no-untyped-def]
    off = settings.model_copy(update={"planner": settings.planner.model_copy(update={"enabled": False, "verify": False})})
    on = settings.model_copy(update={"planner": settings.planner.model_copy(update={"verify": False})})
    with TestClient(create_app(on)) as planned, TestClient(create_app(off)) as resolved:
        yield planned, resolved


def same_json(a: Any, b: Any) -> bool:
    """Equal JSON, keys in the same order (GraphQL answers in the selection's order); whole floats equal integers.

    Errors' ``extensions.requestId`` is left out: two requests have two ids.
    """
    a, b = _without_request_ids(a), _without_request_ids(b)
    return planner._canonical(a) == planner._canonical(b) and _ordered(a) == _ordered(b)


def _without_request_ids(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _without_request_ids(x) for k, x in v.items() if k != "requestId"}
    if isinstance(v, list):
        return [_without_request_ids(x) for x in v]
    return v


def _ordered(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, dict):
        return [(k, _ordered(x)) for k, x in v.items()]
    if isinstance(v, list):
        return [_ordered(x) for x in v]
    return v


@pytest.mark.parametrize("name", list(QUERIES))
@pytest.mark.parametrize("role", ROLES)
def test_planned_json_equals_the_resolvers_under_every_role(apps, users, name, role):  # type: ignore[no-untyped-def]
    planned, resolved = apps
    query = QUERIES[name]
    before, fast = planner.STATS["planned"], planner.STATS["fast"]
    first = post(planned, role, users, query)
    again = post(planned, role, users, query)  # the repeat: the fast path (no strawberry) when fully planned
    used, fast = planner.STATS["planned"] - before, planner.STATS["fast"] - fast
    expected = post(resolved, role, users, query)
    assert first.status_code == again.status_code == expected.status_code
    if role == "t-partner":
        # All three through the resolvers. Where a refused field nulls a non-null parent, graphql-core reports the
        # sibling errors that happened to finish first: the same data and codes, not always the same errors.
        for body in (again.json(), expected.json()):
            assert body.get("data") == first.json().get("data")
            assert {e["extensions"]["code"] for e in body.get("errors", [])} == {
                e["extensions"]["code"] for e in first.json().get("errors", [])
            }
    else:
        assert same_json(first.json(), expected.json()), (first.text[:500], expected.text[:500])
        assert again.content == first.content  # byte for byte: both built by PostgreSQL
    if role == "t-partner":
        assert used == fast == 0  # partners' reads go through the resolvers (small-cell suppression)
    else:
        assert "errors" not in first.json()
        roots = len(first.json()["data"])
        assert used == 2 * roots  # every root field planned, both times
        assert fast == 1  # the repeat answered by the fast path


def test_officer_sees_only_own_households_when_planned(apps, users, engine):  # type: ignore[no-untyped-def]
    planned, _ = apps
    q = "{ households(first: 500) { totalCount nodes { id } } }"
    xide = post(planned, "t-officer", users, q).json()["data"]["households"]
    zhaojue = post(planned, "t-officer-zhaojue", users, q).json()["data"]["households"]
    assert zhaojue == {"totalCount": 0, "nodes": []}
    assert xide["totalCount"] > 0 and len(xide["nodes"]) == min(500, xide["totalCount"])


def test_masked_for_planners_when_planned(apps, users):  # type: ignore[no-untyped-def]
    planned, _ = apps
    q = "{ households(first: 1) { nodes { members { name phone idNumberLast4 } } } }"
    for _ in range(2):  # planned, then fast path
        members = post(planned, "t-planner", users, q).json()["data"]["households"]["nodes"][0]["members"]
        assert all(m["name"].endswith("*") and m["idNumberLast4"] is None for m in members)


async def test_fast_path_refuses_a_user_disabled_in_between(apps, users, engine):  # type: ignore[no-untyped-def]
    planned, _ = apps
    q = '{ relocationSite(id: "1") { name } }'
    assert post(planned, "t-planner", users, q).status_code == 200
    assert post(planned, "t-planner", users, q).status_code == 200
    async with engine.begin() as c:
        await c.execute(text("UPDATE app_user SET disabled = true WHERE name = 't-planner'"))
    try:
        r = post(planned, "t-planner", users, q)
        assert r.status_code == 401 and r.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    finally:
        async with engine.begin() as c:
            await c.execute(text("UPDATE app_user SET disabled = false WHERE name = 't-planner'"))
    assert post(planned, "t-planner", users, q).status_code == 200


async def test_fast_path_follows_an_officer_moved_to_another_county(apps, users, engine):  # type: ignore[no-untyped-def]
    planned, _ = apps
    q = "{ households(first: 1) { totalCount } }"
    n = post(planned, "t-officer", users, q).json()["data"]["households"]["totalCount"]
    assert n > 0
    assert post(planned, "t-officer", users, q).json()["data"]["households"]["totalCount"] == n
    async with engine.begin() as c:
        await c.execute(text("UPDATE app_user SET area_codes = '{513431}' WHERE name = 't-officer'"))
    try:
        assert post(planned, "t-officer", users, q).json()["data"]["households"]["totalCount"] == 0
    finally:
        async with engine.begin() as c:
            await c.execute(text("UPDATE app_user SET area_codes = '{513432}' WHERE name = 't-officer'"))
    assert post(planned, "t-officer", users, q).json()["data"]["households"]["totalCount"] == n


def test_unplannable_fields_are_answered_beside_planned_ones(apps, users):  # type: ignore[no-untyped-def]
    planned, resolved = apps
    # nearestFacilities has no plan; households has one: one response holds both, as the resolvers give them
    q = (
        "{ households(first: 2) { nodes { id } } "
        'nearestFacilities(point: {type: "Point", coordinates: [102.41, 28.31]}, k: 2) { distanceMeters facility { id } } }'
    )
    before = dict(planner.STATS)
    got = post(planned, "t-admin", users, q).json()
    assert planner.STATS["planned"] - before["planned"] == 1 and planner.STATS["fallback"] - before["fallback"] == 1
    assert same_json(got, post(resolved, "t-admin", users, q).json())
    assert len(got["data"]["nearestFacilities"]) == 2


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("{ households(first: 501) { nodes { id } } }", "BAD_USER_INPUT"),
        ('{ households(after: "bm90LWEtY3Vyc29y") { nodes { id } } }', "BAD_USER_INPUT"),
        ("{ households(first: 1) { nodes { linkedIncome(year: 1800) { total } } } }", "BAD_USER_INPUT"),
        ('{ households(first: 1, filter: {zeroEmployment: true, asOf: "1800-01-01"}) { nodes { id } } }', "BAD_USER_INPUT"),
    ],
)
def test_arguments_the_resolvers_refuse_are_refused_the_same_way(apps, users, query, code):  # type: ignore[no-untyped-def]
    planned, resolved = apps
    got = post(planned, "t-admin", users, query)
    expected = post(resolved, "t-admin", users, query)
    assert got.json()["errors"][0]["extensions"]["code"] == code
    assert same_json(got.json(), expected.json())


def test_variables_are_part_of_the_plan(apps, users):  # type: ignore[no-untyped-def]
    planned, resolved = apps
    q = (
        "query Page($first: Int, $after: String) "
        "{ households(first: $first, after: $after) { nodes { id } pageInfo { endCursor } } }"
    )
    cursor = None
    seen: list[str] = []
    for _ in range(3):
        body = planned.post(
            "/graphql",
            json={"query": q, "variables": {"first": 7, "after": cursor}},
            headers={"Authorization": f"Bearer {users['t-admin']}"},
        ).json()
        page = body["data"]["households"]
        seen += [n["id"] for n in page["nodes"]]
        cursor = page["pageInfo"]["endCursor"]
    ids = [int(i) for i in seen]
    assert len(ids) == 21 and ids == sorted(set(ids))  # three different pages, in order, no repeats
    expected = resolved.post(
        "/graphql", json={"query": q, "variables": {"first": 21}}, headers={"Authorization": f"Bearer {users['t-admin']}"}
    ).json()
    assert [n["id"] for n in expected["data"]["households"]["nodes"]] == seen


def test_planned_response_is_passed_through_as_text(apps, users):  # type: ignore[no-untyped-def]
    planned, _ = apps
    q = '{ relocationSite(id: "1") { name location } }'
    post(planned, "t-admin", users, q)
    r = post(planned, "t-admin", users, q)
    assert r.headers["content-type"].startswith("application/json")
    body = json.loads(r.content)
    assert body["data"]["relocationSite"]["name"] == "彝欣社区"
    assert body["data"]["relocationSite"]["location"]["type"] == "Point"


def test_include_with_a_null_variable_is_refused_as_by_the_resolvers(apps, users):  # type: ignore[no-untyped-def]
    planned, resolved = apps
    body = {"query": 'query($v: Boolean = true) { household(id: "1") { id code @include(if: $v) } }', "variables": {"v": None}}
    headers = {"Authorization": f"Bearer {users['t-admin']}"}
    got = [planned.post("/graphql", json=body, headers=headers).json() for _ in range(2)]
    expected = resolved.post("/graphql", json=body, headers=headers).json()
    assert expected["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert same_json(got[0], expected) and same_json(got[1], expected)


async def test_a_value_graphql_cannot_serialize_is_answered_by_the_resolvers(apps, users, engine):  # type: ignore[no-untyped-def]
    """A non-finite areaMu (written behind the API's back): the planned statement fails, the resolvers answer (null and an
    error), and the plan is dropped so the repeat goes straight to them."""
    planned, resolved = apps
    async with engine.connect() as c:
        fid, before = (await c.execute(text("SELECT id, area_mu FROM facility ORDER BY id LIMIT 1"))).one()
    q = f'{{ facility(id: "{fid}") {{ id areaMu }} }}'
    async with engine.begin() as c:
        await c.execute(text("UPDATE facility SET area_mu = 'Infinity' WHERE id = :id"), {"id": fid})
    try:
        expected = post(resolved, "t-admin", users, q).json()
        assert expected["data"]["facility"]["areaMu"] is None and expected["errors"]
        first = post(planned, "t-admin", users, q).json()
        stats = dict(planner.STATS)
        again = post(planned, "t-admin", users, q).json()
        assert same_json(first, expected) and same_json(again, expected)
        assert planner.STATS["planned"] == stats["planned"] and planner.STATS["fallback"] == stats["fallback"] + 1
    finally:
        async with engine.begin() as c:
            await c.execute(text("UPDATE facility SET area_mu = :v WHERE id = :id"), {"v": before, "id": fid})


def test_a_selection_too_big_to_plan_goes_to_the_resolvers(apps, users):  # type: ignore[no-untyped-def]
    planned, resolved = apps
    fields = " ".join(f"f{i}: code" for i in range(planner.MAX_PLANNED_FIELDS // 10))
    q = "{ " + " ".join(f'h{j}: household(id: "1") {{ {fields} }}' for j in range(12)) + " }"
    before = dict(planner.STATS)
    got = post(planned, "t-admin", users, q)
    assert planner.STATS["planned"] == before["planned"]
    assert same_json(got.json(), post(resolved, "t-admin", users, q).json())


async def test_one_read_connection_shared_by_every_role_keeps_each_scope(settings, users, engine):  # type: ignore[no-untyped-def]
    """With one ReadPool connection, fast reads of different roles follow each other on the same session: each must
    answer what its own first (full-path) read answered, and the counts must be the raw tables' counts."""
    one = settings.model_copy(update={"planner": settings.planner.model_copy(update={"verify": False, "read_connections": 1})})
    q = "{ households(first: 2) { totalCount nodes { members { name } } } }"
    with TestClient(create_app(one)) as client:
        first = {role: post(client, role, users, q).content for role in ROLES if role != "t-partner"}
        before = planner.STATS["fast"]
        for _ in range(2):
            for role in ("t-officer", "t-admin", "t-officer-zhaojue", "t-planner", "t-officer", "t-admin"):
                assert post(client, role, users, q).content == first[role], role
        assert planner.STATS["fast"] - before == 12  # all twelve on the fast path
    totals = {r: json.loads(first[r])["data"]["households"]["totalCount"] for r in first}
    async with engine.connect() as c:
        every = await c.scalar(text("SELECT count(*) FROM household"))
        xide = await c.scalar(text("SELECT count(*) FROM household WHERE county_code = '513432'"))
    assert totals == {"t-admin": every, "t-planner": every, "t-officer": xide, "t-officer-zhaojue": 0}
    names = [m["name"] for h in json.loads(first["t-planner"])["data"]["households"]["nodes"] for m in h["members"]]
    assert names and all(n.endswith("*") for n in names)  # masked for the planner even after an admin's read


async def test_read_pool_applies_then_clears_a_scope_and_refuses_a_stale_viewer(settings, users, engine):  # type: ignore[no-untyped-def]
    """anju.db.ReadPool on one connection: an officer's check switches role and settings for the statement after it,
    the next (admin) check clears them with RESET ALL, the session stays read-only, and a viewer whose areas differ
    from its user row reads nothing. A repeated read of the same viewer goes in one message (the gated statement),
    and still reads nothing once the user is disabled."""
    sm = async_sessionmaker(engine, expire_on_commit=False)
    officer = await viewer_by_name(sm, "t-officer")
    admin = await viewer_by_name(sm, "t-admin")
    assert officer is not None and admin is not None
    probe = (
        "SELECT current_user::text, current_setting('anju.counties', true), current_setting('anju.pii', true),"
        " current_setting('transaction_read_only'), (SELECT count(*) FROM household)"
    )
    pool = ReadPool(settings, 1)
    try:
        async with engine.connect() as c:
            login = await c.scalar(text("SELECT current_user::text"))
            xide = await c.scalar(text("SELECT count(*) FROM household WHERE county_code = '513432'"))
            every = await c.scalar(text("SELECT count(*) FROM household"))
        as_officer = ("anju_officer", "{513432}", "on", "on", xide)
        pid = (await pool.read(scope_check(admin), (), "SELECT pg_backend_pid()", ()))[0]  # the pool's one connection
        last = f"SELECT query FROM pg_stat_activity WHERE pid = {int(pid)}"
        assert tuple(await pool.read(scope_check(officer), (), probe, ())) == as_officer
        async with engine.connect() as c:
            assert await c.scalar(text(last)) == probe  # checked, then read: the statement as sent
        assert tuple(await pool.read(scope_check(officer), (), probe, ())) == as_officer
        async with engine.connect() as c:  # the scope was held: the statement alone, gated by the check
            assert await c.scalar(text(last)) == ScopeCheck.gated(probe, 0)
        row = await pool.read(scope_check(admin), (), probe, ())
        assert (row[0], row[1] or None, row[2], row[3], row[4]) == (login, None, "on", "on", every)
        hinted = (("enable_nestloop", "off"), ("work_mem", "64MB"))
        settings_now = "SELECT current_setting('enable_nestloop'), current_setting('work_mem')"
        assert tuple(await pool.read(scope_check(admin), hinted, settings_now, ())) == ("off", "64MB")  # a plan's settings
        assert tuple(await pool.read(scope_check(admin), (), settings_now, ())) != ("off", "64MB")  # gone at the next read
        moved = dataclasses.replace(officer, area_codes=("513431",))
        with pytest.raises(Stale):
            await pool.read(scope_check(moved), (), probe, ())
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await pool.read(scope_check(admin), (), "DELETE FROM audit_log RETURNING 1", ())
        # The officer's scope held on the connection, then the user disabled: the one-message read reads nothing.
        assert tuple(await pool.read(scope_check(officer), (), probe, ())) == as_officer
        async with engine.begin() as c:
            await c.execute(text("UPDATE app_user SET disabled = true WHERE name = 't-officer'"))
        try:
            with pytest.raises(Stale):
                await pool.read(scope_check(officer), (), probe, ())
        finally:
            async with engine.begin() as c:
                await c.execute(text("UPDATE app_user SET disabled = false WHERE name = 't-officer'"))
        assert tuple(await pool.read(scope_check(officer), (), probe, ())) == as_officer
    finally:
        await pool.close()


def test_user_input_the_planner_refuses_is_answered_by_the_resolvers_without_an_error_log(apps, users, caplog):  # type: ignore[no-untyped-def]
    """A value the resolvers answer for (``adminArea(code: "51")``: no such area, null) but the planner's SQL builders
    refuse as input is not a planner bug: the field goes to the resolvers, nothing is logged at ERROR, the answer is
    the resolvers' one."""
    planned, resolved = apps
    query = (
        '{ adminArea(code: "51") { name employmentCoverage(asOf: "2024-04-13") { households coverageRate } }'
        ' a: adminArea(code: "513432") { name } }'
    )
    with caplog.at_level(logging.DEBUG):
        answer = post(planned, "t-admin", users, query)
    expected = post(resolved, "t-admin", users, query)
    assert answer.status_code == expected.status_code and same_json(answer.json(), expected.json())
    assert answer.json()["data"]["a"] == {"name": "喜德县"}
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
