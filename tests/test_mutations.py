"""Mutations on their own copy of the hand-built fixture: effects, bad inputs (code, field, nothing
written), and optimistic locking under concurrent edits."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

from schema import Context
from tests import handbuilt
from tests.conftest import ADMIN, admin_runner
from tests.digest import digest
from tests.raw_status import status_mismatches

handbuilt_engines: dict[str, Any] = {}


@pytest.fixture(scope="module")
async def mx(settings, schema):  # type: ignore[no-untyped-def]
    eng, ids = await handbuilt.build(settings, "anju_test_mut")
    handbuilt_engines["anju_test_mut"] = eng
    sm = async_sessionmaker(eng, expire_on_commit=False)

    run = admin_runner(schema, sm, settings)

    async def snapshot() -> str:
        """Equal digests = nothing written (tests/digest.py: every table)."""
        return await digest(eng)

    async def version(hh: str) -> int:
        async with eng.connect() as c:
            return int(await c.scalar(text("SELECT version FROM household WHERE id = :i"), {"i": ids[hh]}))

    yield run, ids, snapshot, version
    await eng.dispose()


REC_EMP = (
    "mutation($in: RecordEmploymentInput!) { recordEmployment(input: $in) { employment { id channel stable "
    "startOn endOn monthlyWage workplace facility { name } member { id } } household { id version "
    'isZeroEmployment(asOf: "2024-06-30") stablyEmployedCount(asOf: "2024-06-30") } } }'
)


async def test_record_employment_covers_a_zero_employment_household(mx):  # type: ignore[no-untyped-def]
    run, ids, _, version = mx
    v = await version("h9")
    r = await run(
        REC_EMP,
        **{
            "in": {
                "memberId": str(ids["j"]),
                "version": v,
                "channel": "WORKSHOP",
                "facilityId": str(ids["F1"]),
                "startOn": "2024-05-01",
                "stable": True,
                "monthlyWage": "2100.50",
                "workplace": {"type": "Point", "coordinates": [102.41, 28.31]},
            }
        },
    )
    assert r.errors is None, r.errors
    p = r.data["recordEmployment"]
    assert p["household"] == {"id": str(ids["h9"]), "version": v + 1, "isZeroEmployment": False, "stablyEmployedCount": 1}
    e = p["employment"]
    assert (e["channel"], e["stable"], e["startOn"], e["endOn"], e["monthlyWage"]) == (
        "WORKSHOP",
        True,
        "2024-05-01",
        None,
        "2100.50",
    )
    assert e["workplace"] == {"type": "Point", "coordinates": [102.41, 28.31]}
    assert e["facility"] == {"name": "F1 workshop"} and e["member"] == {"id": str(ids["j"])}


async def test_other_mutations_take_effect(mx):  # type: ignore[no-untyped-def]
    run, ids, _, version = mx
    v = await version("h11")
    r = await run(
        "mutation($h: ID!, $v: Int!) { recordIncomeLinkage(input: {householdId: $h, version: $v, mechanism: DIVIDEND, "
        'year: 2024, amount: "12.34"}) { incomeLinkage { amount mechanism year } household { version '
        "linkedIncome(year: 2024) { total } } } }",
        h=str(ids["h11"]),
        v=v,
    )
    assert r.errors is None, r.errors
    assert r.data["recordIncomeLinkage"] == {
        "incomeLinkage": {"amount": "12.34", "mechanism": "DIVIDEND", "year": 2024},
        "household": {"version": v + 1, "linkedIncome": {"total": "1012.34"}},
    }
    r = await run(
        "mutation($h: ID!, $v: Int!) { recordHouseholdIncome(input: {householdId: $h, version: $v, year: 2024, "
        'netIncome: "31500.00"}) { household { version netIncome(year: 2024) } } }',
        h=str(ids["h11"]),
        v=v + 1,
    )
    assert r.errors is None and r.data["recordHouseholdIncome"]["household"] == {"version": v + 2, "netIncome": "31500.00"}
    r = await run(
        "mutation($h: ID!, $v: Int!) { setMonitoringStatus(input: {householdId: $h, version: $v, category: MARGINAL, "
        "riskEliminated: false}) { household { version monitoringCategory riskEliminated } } }",
        h=str(ids["h11"]),
        v=v + 2,
    )
    assert r.errors is None
    assert r.data["setMonitoringStatus"]["household"] == {
        "version": v + 3,
        "monitoringCategory": "MARGINAL",
        "riskEliminated": False,
    }
    r = await run(
        'mutation($h: ID!, $v: Int!) { addMember(input: {householdId: $h, version: $v, name: "新成员", gender: MALE, '
        'birthYear: 2001, relation: CHILD, laborForce: true, skills: ["缝纫"]}) { member { id name skills } '
        "household { version size laborForceCount } } }",
        h=str(ids["h11"]),
        v=v + 3,
    )
    assert r.errors is None
    added = r.data["addMember"]
    assert added["household"] == {"version": v + 4, "size": 4, "laborForceCount": 2}
    assert (added["member"]["name"], added["member"]["skills"]) == ("新成员", ["缝纫"])
    r = await run(
        "mutation($m: ID!, $v: Int!) { updateMember(input: {memberId: $m, version: $v, laborForce: false}) "
        "{ member { name laborForce } household { version laborForceCount } } }",
        m=added["member"]["id"],
        v=v + 4,
    )
    assert r.errors is None
    assert r.data["updateMember"] == {
        "member": {"name": "新成员", "laborForce": False},
        "household": {"version": v + 5, "laborForceCount": 1},
    }


async def test_end_employment(mx):  # type: ignore[no-untyped-def]
    run, ids, snapshot, version = mx
    r = await run('query($h: ID!) { household(id: $h) { version employments(asOf: "2024-06-30") { id } } }', h=str(ids["h12"]))
    hh = r.data["household"]
    eid = hh["employments"][0]["id"]
    q = (
        "mutation($e: ID!, $v: Int!, $d: Date!) { endEmployment(input: {employmentId: $e, version: $v, endOn: $d}) "
        '{ employment { endOn } household { version isZeroEmployment(asOf: "2024-06-30") } } }'
    )
    r = await run(q, e=eid, v=hh["version"], d="2024-06-29")
    assert r.errors is None
    assert r.data["endEmployment"] == {
        "employment": {"endOn": "2024-06-29"},
        "household": {"version": hh["version"] + 1, "isZeroEmployment": True},
    }
    before = await snapshot()
    again = await run(q, e=eid, v=hh["version"] + 1, d="2024-06-30")  # already ended: not overwritten
    assert again.errors[0].extensions == {"code": "CONFLICT", "field": "endOn"}
    assert await snapshot() == before


def _input(ids: dict[str, int], v: int, **over: Any) -> dict[str, Any]:
    base = {
        "memberId": str(ids["o"]),
        "version": v,
        "channel": "LABOR_EXPORT",
        "employerName": "某企业",
        "startOn": "2024-01-01",
        "stable": True,
    }
    base.update(over)
    return {k: val for k, val in base.items() if val is not None}


@pytest.mark.parametrize(
    ("over", "code", "field"),
    [
        pytest.param({"endOn": "2023-12-31"}, "BAD_USER_INPUT", "endOn", id="end-before-start"),
        pytest.param({"monthlyWage": "-1"}, "BAD_USER_INPUT", "monthlyWage", id="negative-wage"),
        pytest.param({"monthlyWage": "1000.005"}, "BAD_USER_INPUT", "monthlyWage", id="three-decimals"),
        pytest.param({"monthlyWage": "1e20"}, "BAD_USER_INPUT", "monthlyWage", id="huge-wage"),
        pytest.param({"monthlyWage": "NaN"}, "BAD_USER_INPUT", "monthlyWage", id="nan-wage"),
        pytest.param({"channel": "WORKSHOP", "employerName": None}, "BAD_USER_INPUT", "facilityId", id="workshop-no-facility"),
        pytest.param({"employerName": None}, "BAD_USER_INPUT", "employerName", id="labor-export-no-employer"),
        pytest.param({"memberId": "999999"}, "NOT_FOUND", "memberId", id="unknown-member"),
        pytest.param({"memberId": "abc"}, "BAD_USER_INPUT", "memberId", id="malformed-member"),
        pytest.param({"facilityId": "999999"}, "NOT_FOUND", "facilityId", id="unknown-facility"),
        pytest.param(
            {"workplace": {"type": "Point", "coordinates": [28.3, 102.4]}}, "BAD_USER_INPUT", "workplace", id="lat-lon-swapped"
        ),
        pytest.param(
            {"workplace": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}},
            "BAD_USER_INPUT",
            "workplace",
            id="polygon-not-point",
        ),
        pytest.param(
            {
                "workplace": {
                    "type": "Point",
                    "coordinates": [102.4, 28.3],
                    "crs": {"type": "name", "properties": {"name": "EPSG:3857"}},
                }
            },
            "BAD_USER_INPUT",
            "workplace",
            id="foreign-crs",
        ),
        pytest.param(
            {"workplace": {"type": "Point", "coordinates": ["102", 28.3]}}, "BAD_USER_INPUT", "workplace", id="string-coordinate"
        ),
        pytest.param({"startOn": "1900-01-01"}, "BAD_USER_INPUT", "startOn", id="ancient-start"),
        pytest.param({"endOn": "9999-12-31"}, "BAD_USER_INPUT", "endOn", id="date-max-end"),
        pytest.param(
            {"workplace": {"type": "Point", "coordinates": [102.4, 28.3, 1500]}}, "BAD_USER_INPUT", "workplace", id="altitude"
        ),
        pytest.param(
            {
                "workplace": {
                    "type": "Point",
                    "coordinates": [102.4, 28.3],
                    "crs": {"type": "name", "properties": {"name": ["x"]}},
                }
            },
            "BAD_USER_INPUT",
            "workplace",
            id="crs-name-not-text",
        ),
        pytest.param({"employerName": "x" * 500}, "BAD_USER_INPUT", "employerName", id="long-employer"),
        pytest.param({"employerName": "a\u0000b"}, "BAD_USER_INPUT", "employerName", id="nul-byte"),
        pytest.param({"version": 999}, "CONFLICT", "version", id="stale-version"),
    ],
)
async def test_record_employment_bad_input_writes_nothing(mx, over, code, field):  # type: ignore[no-untyped-def]
    run, ids, snapshot, version = mx
    v = await version("h13")
    before = await snapshot()
    r = await run(REC_EMP, **{"in": _input(ids, over.pop("version", v), **over)})
    assert r.errors and (r.data is None or all(v is None for v in r.data.values()))
    assert r.errors[0].extensions == {"code": code, "field": field}, r.errors[0].message
    assert field in r.errors[0].message
    assert await snapshot() == before


@pytest.mark.parametrize(
    ("mutation", "variables", "code", "field"),
    [
        pytest.param(
            'recordIncomeLinkage(input: {householdId: $h, version: $v, mechanism: WAGE, year: 2024, amount: "0.001"})'
            " { household { id } }",
            {},
            "BAD_USER_INPUT",
            "amount",
            id="linkage-3-decimals",
        ),
        pytest.param(
            'recordIncomeLinkage(input: {householdId: $h, version: $v, mechanism: WAGE, year: 1999, amount: "1"})'
            " { household { id } }",
            {},
            "BAD_USER_INPUT",
            "year",
            id="linkage-year",
        ),
        pytest.param(
            'recordIncomeLinkage(input: {householdId: $h, version: $v, mechanism: WAGE, year: 2024, amount: "-5"})'
            " { household { id } }",
            {},
            "BAD_USER_INPUT",
            "amount",
            id="linkage-negative",
        ),
        pytest.param(
            'recordIncomeLinkage(input: {householdId: $h, version: $v, mechanism: WAGE, year: 2024, amount: "5", '
            'facilityId: "424242"}) { household { id } }',
            {},
            "NOT_FOUND",
            "facilityId",
            id="linkage-facility",
        ),
        pytest.param(
            'recordIncomeLinkage(input: {householdId: "424242", version: $v, mechanism: WAGE, year: 2024, '
            'amount: "5"}) { household { id } }',
            {},
            "NOT_FOUND",
            "householdId",
            id="linkage-household",
        ),
        pytest.param(
            'recordHouseholdIncome(input: {householdId: $h, version: $v, year: 2024, netIncome: "-1.00"}) { household { id } }',
            {},
            "BAD_USER_INPUT",
            "netIncome",
            id="income-negative",
        ),
        pytest.param(
            "setMonitoringStatus(input: {householdId: $h, version: $v, category: MARGINAL}) { household { id } }",
            {},
            "BAD_USER_INPUT",
            "riskEliminated",
            id="monitoring-half",
        ),
        pytest.param(
            'addMember(input: {householdId: $h, version: $v, name: "  ", gender: MALE, birthYear: 2000, '
            "relation: CHILD, laborForce: true}) { member { id } }",
            {},
            "BAD_USER_INPUT",
            "name",
            id="member-name",
        ),
        pytest.param(
            'addMember(input: {householdId: $h, version: $v, name: "甲", gender: MALE, birthYear: 1800, '
            "relation: CHILD, laborForce: true}) { member { id } }",
            {},
            "BAD_USER_INPUT",
            "birthYear",
            id="member-year",
        ),
        pytest.param(
            'updateMember(input: {memberId: "424242", version: $v, name: "乙"}) { member { id } }',
            {},
            "NOT_FOUND",
            "memberId",
            id="update-unknown",
        ),
        pytest.param(
            "updateMember(input: {memberId: $m, version: $v}) { member { id } }",
            {"m": True},
            "BAD_USER_INPUT",
            "input",
            id="update-nothing",
        ),
        pytest.param(
            'addMember(input: {householdId: $h, version: 0, name: "甲", gender: MALE, birthYear: 2000, '
            "relation: CHILD, laborForce: true}) { member { id } }",
            {},
            "CONFLICT",
            "version",
            id="member-stale",
        ),
    ],
)
async def test_other_mutations_bad_input_writes_nothing(mx, mutation, variables, code, field):  # type: ignore[no-untyped-def]
    run, ids, snapshot, version = mx
    v = await version("h13")
    before = await snapshot()
    declared = {"h": ("ID!", str(ids["h13"])), "v": ("Int!", v), "m": ("ID!", str(ids["o"]))}
    used = [k for k in declared if f"${k}" in mutation]
    params = ", ".join(f"${k}: {declared[k][0]}" for k in used)
    args: dict[str, Any] = {k: declared[k][1] for k in used}
    r = await run(f"mutation({params}) {{ {mutation} }}" if params else f"mutation {{ {mutation} }}", **args)
    assert r.errors and (r.data is None or all(v is None for v in r.data.values()))
    assert r.errors[0].extensions == {"code": code, "field": field}, r.errors[0].message
    assert await snapshot() == before


async def test_concurrent_stale_edit_one_wins(mx):  # type: ignore[no-untyped-def]
    """Two officers edit the same household from the same version at once: one wins, the other gets
    CONFLICT, and the winner's edit is intact."""
    run, ids, _, version = mx
    v = await version("h10")
    q = (
        "mutation($h: ID!, $v: Int!, $n: String!) { addMember(input: {householdId: $h, version: $v, name: $n, "
        "gender: FEMALE, birthYear: 1990, relation: SPOUSE, laborForce: true}) { member { name } household { version } } }"
    )
    results = await asyncio.gather(*(run(q, h=str(ids["h10"]), v=v, n=name) for name in ("officer-A", "officer-B")))
    ok = [r for r in results if r.errors is None]
    conflicts = [r for r in results if r.errors]
    assert len(ok) == 1 and len(conflicts) == 1
    assert conflicts[0].errors[0].extensions["code"] == "CONFLICT"
    winner = ok[0].data["addMember"]["member"]["name"]
    assert ok[0].data["addMember"]["household"]["version"] == v + 1
    r = await run("query($h: ID!) { household(id: $h) { version members { name } } }", h=str(ids["h10"]))
    names = [mb["name"] for mb in r.data["household"]["members"]]
    assert r.data["household"]["version"] == v + 1
    assert winner in names and len([n for n in names if n.startswith("officer-")]) == 1


async def test_trigger_kept_counts_match_rows(mx, engine):  # type: ignore[no-untyped-def]
    """household.member_count / labor_force_count and employment.household_id (kept by triggers) equal
    what the rows say, on the demo data and after this module's writes (added members, updates)."""
    run, ids, _, _ = mx
    sql_check = (
        "SELECT (SELECT count(*) FROM household h LEFT JOIN (SELECT household_id, count(*) AS n, "
        "  count(*) FILTER (WHERE labor_force) AS lf FROM member GROUP BY household_id) c ON c.household_id = h.id "
        "  WHERE (h.member_count, h.labor_force_count) IS DISTINCT FROM (coalesce(c.n, 0), coalesce(c.lf, 0))) "
        "+ (SELECT count(*) FROM employment e JOIN member m ON m.id = e.member_id "
        "   WHERE e.household_id <> m.household_id)"
    )
    from sqlalchemy import text as sql

    # household_status (trigger-kept step function) against the raw rows, on several dates
    # around this module's writes (spells started 2024-05-01, ended 2024-06-29) and the seed's.
    status_check = (
        "SELECT count(*) FROM household h "
        "JOIN household_status st ON st.household_id = h.id AND st.valid_from <= :d AND :d < st.valid_to "
        "LEFT JOIN (SELECT e.household_id, count(DISTINCT e.member_id) AS n, "
        "  count(DISTINCT e.member_id) FILTER (WHERE e.stable) AS s, "
        "  count(DISTINCT e.member_id) FILTER (WHERE e.channel = 'workshop') AS w FROM employment e "
        "  WHERE e.start_on <= :d AND (e.end_on IS NULL OR e.end_on >= :d) GROUP BY e.household_id) raw "
        "  ON raw.household_id = h.id "
        "WHERE (st.employed, st.stably_employed, st.workshop) IS DISTINCT FROM "
        "      (coalesce(raw.n, 0), coalesce(raw.s, 0), coalesce(raw.w, 0))"
    )
    segments = (
        "SELECT count(*) FROM household h WHERE (SELECT count(*) FROM household_status st "
        "WHERE st.household_id = h.id AND st.valid_from <= :d AND :d < st.valid_to) <> 1"
    )
    import datetime as dt

    dates = [
        dt.date(1990, 1, 1),
        dt.date(2022, 3, 1),
        dt.date(2024, 4, 13),
        dt.date(2024, 4, 30),
        dt.date(2024, 5, 1),
        dt.date(2024, 6, 29),
        dt.date(2024, 6, 30),
        dt.date(2024, 7, 1),
        dt.date(2030, 1, 1),
    ]
    r = await run("query($h: ID!) { household(id: $h) { size members { id } } }", h=str(ids["h6"]))
    assert r.data["household"]["size"] == len(r.data["household"]["members"]) == 2
    mut_engine = handbuilt_engines["anju_test_mut"]
    # Writes made outside the API keep the derived values right too: a member moved to another
    # household in SQL takes its employments along (both households' status is recomputed) ...
    async with mut_engine.begin() as c:
        await c.execute(sql("UPDATE member SET household_id = :to WHERE id = :m"), {"to": ids["h9"], "m": ids["n"]})
    r = await run(
        'query($a: ID!, $b: ID!) { a: household(id: $a) { size stablyEmployedCount(asOf: "2024-06-01") } '
        ' b: household(id: $b) { size stablyEmployedCount(asOf: "2024-06-01") } }',
        a=str(ids["h12"]),
        b=str(ids["h9"]),
    )
    assert r.data["a"] == {"size": 0, "stablyEmployedCount": 0}
    assert r.data["b"]["size"] == 2 and r.data["b"]["stablyEmployedCount"] == 2  # j (recorded above) and n
    for eng in (engine, mut_engine):
        async with eng.connect() as c:
            assert await c.scalar(sql(sql_check)) == 0
            for d in dates:
                assert await c.scalar(sql(segments), {"d": d}) == 0, d
                assert await c.scalar(sql(status_check), {"d": d}) == 0, d
            # the one raw recomputation (members present, residence, employment; tests/raw_status.py)
            assert await status_mismatches(c, dates) == []


async def test_concurrent_sql_writers_on_one_household_serialise(mx):  # type: ignore[no-untyped-def]
    """Two transactions adding employments to the same household: the second waits for the first (the
    status refresh locks the household row) instead of failing on a duplicate segment. The wait is
    shown by PostgreSQL itself: the second backend waits on a lock held by the first."""
    run, ids, _, _ = mx
    eng = handbuilt_engines["anju_test_mut"]
    from sqlalchemy import text as sql

    insert = sql(
        "INSERT INTO employment (member_id, household_id, channel, start_on, stable) VALUES (:m, 0, 'flexible', :d, false)"
    )
    second_pid: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    async with eng.connect() as first, eng.connect() as watcher:
        await first.begin()
        first_pid = await first.scalar(sql("SELECT pg_backend_pid()"))
        await first.execute(insert, {"m": ids["g"], "d": handbuilt.D})

        async def second() -> None:
            async with eng.begin() as c:
                second_pid.set_result(await c.scalar(sql("SELECT pg_backend_pid()")))
                await c.execute(insert, {"m": ids["h"], "d": handbuilt.D})

        task = asyncio.create_task(second())
        pid = await asyncio.wait_for(second_pid, 10)
        blocked = sql(
            "SELECT a.wait_event_type = 'Lock' AND :first = ANY(pg_blocking_pids(a.pid)) "
            "FROM pg_stat_activity a WHERE a.pid = :second"
        )
        for _ in range(500):  # until PostgreSQL shows the second writer waiting on the first's lock
            if await watcher.scalar(blocked, {"first": first_pid, "second": pid}):
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the second writer never waited on the first one's lock")
        assert not task.done()  # still waiting: nothing of it is written yet
        await first.commit()
    await asyncio.wait_for(task, 10)
    r = await run('query($h: ID!) { household(id: $h) { employments(asOf: "2024-06-30") { channel } } }', h=str(ids["h6"]))
    assert sorted(e["channel"] for e in r.data["household"]["employments"]) == [
        "FLEXIBLE",
        "FLEXIBLE",
        "PUBLIC_WELFARE_POST",
        "WORKSHOP",
    ]


async def test_truncate_resets_derived_values(mx, settings, schema):  # type: ignore[no-untyped-def]
    """On a database of its own: emptying tables here leaves the module's database (shared by the
    tests after this one) as it was."""
    _, _, snapshot, _ = mx
    before = await snapshot()
    eng, ids = await handbuilt.build(settings, "anju_test_mut_truncate")
    sm = async_sessionmaker(eng, expire_on_commit=False)
    from sqlalchemy import text as sql

    try:
        async with eng.begin() as c:
            await c.execute(sql("TRUNCATE employment"))
        r = await schema.execute(
            'query($s: ID!) { relocationSite(id: $s) { employmentCoverage(asOf: "2024-06-30") '
            "{ employedPersons householdsCovered } } }",
            variable_values={"s": str(ids["S1"])},
            context_value=Context(sessionmaker=sm, settings=settings, viewer=ADMIN),
        )
        assert r.data["relocationSite"]["employmentCoverage"] == {"employedPersons": 0, "householdsCovered": 0}
        async with eng.begin() as c:
            await c.execute(sql("TRUNCATE member CASCADE"))
            assert await c.scalar(sql("SELECT count(*) FROM household WHERE member_count <> 0 OR labor_force_count <> 0")) == 0
    finally:
        await eng.dispose()
    assert await snapshot() == before


async def test_one_failing_mutation_does_not_hide_the_others(mx):  # type: ignore[no-untyped-def]
    run, ids, _, version = mx
    v = await version("h2")
    r = await run(
        "mutation($h: ID!, $v: Int!, $stale: Int!) { "
        'ok: recordHouseholdIncome(input: {householdId: $h, version: $v, year: 2023, netIncome: "7000.00"}) '
        "{ household { version } } "
        'bad: recordHouseholdIncome(input: {householdId: $h, version: $stale, year: 2022, netIncome: "1.00"}) '
        "{ household { version } } }",
        h=str(ids["h2"]),
        v=v,
        stale=v,
    )
    assert r.data == {"ok": {"household": {"version": v + 1}}, "bad": None}
    assert [e.extensions["code"] for e in r.errors] == ["CONFLICT"]


async def test_every_mutation_writes_one_audit_row_in_its_transaction(mx):  # type: ignore[no-untyped-def]
    """The seven record keepers' mutations on h13 (member o): one audit row each, naming who, what and the
    record before/after; a failing mutation (stale version) leaves no row and nothing else."""
    run, ids, snapshot, version = mx
    eng = handbuilt_engines["anju_test_mut"]
    h = str(ids["h13"])
    steps = [
        (
            "addMember",
            'mutation($h: ID!, $v: Int!) { addMember(input: {householdId: $h, version: $v, name: "王小明", '
            "gender: MALE, birthYear: 2001, relation: CHILD, laborForce: true}) { member { id } } }",
        ),
        (
            "recordEmployment",
            "mutation($m: ID!, $v: Int!) { recordEmployment(input: {memberId: $m, version: $v, "
            'channel: FLEXIBLE, startOn: "2024-01-01", stable: false}) { employment { id } } }',
        ),
        (
            "recordIncomeLinkage",
            "mutation($h: ID!, $v: Int!) { recordIncomeLinkage(input: {householdId: $h, version: $v, "
            'mechanism: OTHER, year: 2024, amount: "5.00"}) { incomeLinkage { id } } }',
        ),
        (
            "recordHouseholdIncome",
            "mutation($h: ID!, $v: Int!) { recordHouseholdIncome(input: {householdId: $h, "
            'version: $v, year: 2024, netIncome: "9000.00"}) { household { id } } }',
        ),
        (
            "setMonitoringStatus",
            "mutation($h: ID!, $v: Int!) { setMonitoringStatus(input: {householdId: $h, version: $v, "
            "category: MARGINAL, riskEliminated: false}) { household { id } } }",
        ),
        (
            "updateMember",
            "mutation($m: ID!, $v: Int!) { updateMember(input: {memberId: $m, version: $v, "
            'name: "欧阳娜娜"}) { member { id } } }',
        ),
        (
            "endEmployment",
            "mutation($e: ID!, $v: Int!) { endEmployment(input: {employmentId: $e, version: $v, "
            'endOn: "2024-02-01"}) { employment { id } } }',
        ),
    ]
    async with eng.connect() as c:
        start = int(await c.scalar(text("SELECT coalesce(max(id), 0) FROM audit_log")))
    member = emp = None
    for action, q in steps:
        r = await run(q, h=h, m=member, e=emp, v=await version("h13"))
        assert r.errors is None, (action, r.errors)
        member = member or r.data.get("addMember", {}).get("member", {}).get("id")
        emp = emp or (r.data.get("recordEmployment") or {}).get("employment", {}).get("id")
    async with eng.connect() as c:
        rows = [
            dict(x)
            for x in (
                await c.execute(
                    text(
                        "SELECT user_name, role, action, entity, entity_id, before, after FROM audit_log "
                        "WHERE id > :s ORDER BY id"
                    ),
                    {"s": start},
                )
            ).mappings()
        ]
    assert [x["action"] for x in rows] == [a for a, _ in steps]
    assert {(x["user_name"], x["role"]) for x in rows} == {("test-admin", "admin")}
    by = {x["action"]: x for x in rows}
    assert by["recordHouseholdIncome"]["entity_id"] == f"{h}/2024"
    assert by["recordHouseholdIncome"]["before"] is None and by["recordHouseholdIncome"]["after"]["net_income"] == "9000.00"
    mon = by["setMonitoringStatus"]
    assert (mon["before"]["monitoring_category"], mon["after"]["monitoring_category"]) == (None, "marginal")
    assert mon["after"]["version"] == mon["before"]["version"] + 1
    # names appear masked only: 欧阳娜娜 → 欧***, 王小明 → 王**
    assert (by["updateMember"]["before"]["name"], by["updateMember"]["after"]["name"]) == ("王**", "欧***")
    assert by["addMember"]["after"]["name"] == "王**" and "id_number_hash" not in by["addMember"]["after"]
    end = by["endEmployment"]
    assert (end["entity_id"], end["before"]["end_on"], end["after"]["end_on"]) == (emp, None, "2024-02-01")
    # a stale version: CONFLICT, and neither the change nor an audit row is written
    before = await snapshot()
    r = await run(steps[3][1], h=h, v=await version("h13") - 1)
    assert r.errors[0].extensions["code"] == "CONFLICT"
    assert await snapshot() == before


LINK = (
    "mutation($h: ID!, $v: Int!, $a: Decimal!) { recordIncomeLinkage(input: {householdId: $h, version: $v, "
    "mechanism: DIVIDEND, year: 2023, amount: $a}) { incomeLinkage { amount } } }"
)


@pytest.mark.parametrize(
    "amount",
    [
        # what json.loads makes of the JSON number 0.10000000000000001: the float 0.1
        pytest.param(0.10000000000000001, id="json-number-beyond-float"),
        pytest.param(12.5, id="json-number-with-fraction"),
    ],
)
async def test_a_decimal_sent_as_a_json_number_is_refused_not_rounded(mx, amount):  # type: ignore[no-untyped-def]
    run, ids, snapshot, version = mx
    before = await snapshot()
    r = await run(LINK, h=str(ids["h11"]), v=await version("h11"), a=amount)
    assert r.data is None and [e.extensions["code"] for e in r.errors] == ["BAD_USER_INPUT"]
    assert "'$a'" in r.errors[0].message and "as a string" in r.errors[0].message
    assert await snapshot() == before


async def test_a_decimal_literal_is_read_from_its_text(mx):  # type: ignore[no-untyped-def]
    """Typed in the document the number's text is exact: 12.5 is 12.50; 0.10000000000000001 has more
    decimals than the fen and is refused naming the field (a float would have made it 0.10)."""
    run, ids, snapshot, version = mx
    q = (
        "mutation($h: ID!, $v: Int!) { recordIncomeLinkage(input: {householdId: $h, version: $v, "
        "mechanism: DIVIDEND, year: 2023, amount: %s}) { incomeLinkage { amount } } }"
    )
    before = await snapshot()
    r = await run(q % "0.10000000000000001", h=str(ids["h11"]), v=await version("h11"))
    assert r.data == {"recordIncomeLinkage": None}
    assert [e.extensions for e in r.errors] == [{"code": "BAD_USER_INPUT", "field": "amount"}]
    assert await snapshot() == before
    r = await run(q % "12.5", h=str(ids["h11"]), v=await version("h11"))
    assert r.errors is None and r.data == {"recordIncomeLinkage": {"incomeLinkage": {"amount": "12.50"}}}


async def test_a_payload_answers_its_own_version_wherever_the_household_appears(mx, settings):  # type: ignore[no-untyped-def]
    """Another writer raises the household's version the moment an edit commits (on the edit's own NOTIFY anju_live),
    before the payload is read: the payload's ``household.version`` and the same household reached through
    ``member.household`` both answer the version the edit produced (v + 1), never the other writer's, whose change the
    client has not been shown as a version; editing next with either gets CONFLICT."""
    import asyncpg

    run, ids, _, version = mx
    hid = ids["h10"]
    q = (
        "mutation($h: ID!, $v: Int!, $b: Int!) { updateMember(input: {memberId: $h, version: $v, birthYear: $b}) "
        "{ household { version code } member { household { version } } } }"
    )
    async with handbuilt_engines["anju_test_mut"].connect() as c:
        member = int(await c.scalar(text("SELECT min(id) FROM member WHERE household_id = :h"), {"h": hid}))
    url = settings.asyncpg_dsn("anju_test_mut")
    listener, writer = await asyncpg.connect(url), await asyncpg.connect(url)
    armed = asyncio.Event()
    bumps: list[asyncio.Task[Any]] = []

    def on_commit(*_: Any) -> None:  # the other writer, at the edit's commit
        if armed.is_set():
            armed.clear()
            bumps.append(
                asyncio.ensure_future(
                    writer.execute(
                        "UPDATE household SET version = version + 1, code = CASE WHEN code LIKE '%x' THEN left(code, -1) "
                        "ELSE code || 'x' END WHERE id = $1",
                        hid,
                    )
                )
            )

    await listener.add_listener("anju_live", on_commit)
    raced = 0
    try:
        for i in range(20):
            v = await version("h10")
            async with handbuilt_engines["anju_test_mut"].connect() as c:
                before = await c.scalar(text("SELECT code FROM household WHERE id = :h"), {"h": hid})
            armed.set()
            r = await run(q, h=str(member), v=v, b=1970 + i)
            await asyncio.gather(*bumps)
            assert r.errors is None, r.errors
            p = r.data["updateMember"]
            raced += p["household"]["code"] != before  # the payload was read after the other write
            assert p["household"]["version"] == v + 1
            assert p["member"]["household"]["version"] == v + 1
            assert await version("h10") == v + 2
            stale = await run(q, h=str(member), v=p["member"]["household"]["version"], b=1960)
            assert stale.errors[0].extensions["code"] == "CONFLICT"
    finally:
        await listener.close()
        await writer.close()
    assert raced >= 1  # the interleaving this test is about did happen
