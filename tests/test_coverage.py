"""Coverage, linkage and monitoring on the hand-built fixture (tests/handbuilt.py): every expected
number below is computed by hand from the fixture's table. Plus the report's figures on the demo data."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from schema import Context
from tests import handbuilt
from tests.conftest import FACTS, admin_runner

D = handbuilt.D.isoformat()
handbuilt_engines: dict[str, Any] = {}


@pytest.fixture(scope="module")
async def fx(settings, schema):  # type: ignore[no-untyped-def]
    eng, ids = await handbuilt.build(settings, "anju_test_fx")
    handbuilt_engines["anju_test_fx"] = eng
    sm = async_sessionmaker(eng, expire_on_commit=False)

    run = admin_runner(schema, sm, settings, data_only=True)

    yield run, ids
    await eng.dispose()


COVERAGE = (
    "households householdsWithLaborForce householdsCovered coverageRate zeroEmploymentHouseholds "
    "employedPersons stablyEmployedPersons byChannel { channel count }"
)


async def test_site_coverage(fx):  # type: ignore[no-untyped-def]
    run, ids = fx
    data = await run(
        f'query($id: ID!) {{ relocationSite(id: $id) {{ employmentCoverage(asOf: "{D}") {{ {COVERAGE} }} }} }}', id=str(ids["S1"])
    )
    c = data["relocationSite"]["employmentCoverage"]
    by_channel = {x["channel"]: x["count"] for x in c.pop("byChannel")}
    assert c == {
        "households": 12,  # h1..h12
        "householdsWithLaborForce": 9,  # all but h1, h8, h10
        "householdsCovered": 5,  # h4 (ends on D), h6 (counted once), h7, h11, h12
        "coverageRate": pytest.approx(5 / 9),
        "zeroEmploymentHouseholds": 3,  # h3 (ended D-1), h5 (starts D+1), h9
        "employedPersons": 8,  # a c e g h i m1 n — i once despite two channels
        "stablyEmployedPersons": 6,  # e g h i m1 n
    }
    assert by_channel == {
        "FLEXIBLE": 2,
        "LOCAL_ENTERPRISE": 2,
        "LABOR_EXPORT": 2,
        "WORKSHOP": 1,
        "PUBLIC_WELFARE_POST": 1,
        "SELF_EMPLOYMENT": 1,
    }


async def test_area_coverage_includes_households_without_site(fx):  # type: ignore[no-untyped-def]
    run, _ = fx
    data = await run(
        f'{{ t: adminArea(code: "513432100") {{ employmentCoverage(asOf: "{D}") {{ {COVERAGE} }} }} '
        f'  v: adminArea(code: "513432100005") {{ employmentCoverage(asOf: "{D}") {{ households '
        f"     householdsWithLaborForce householdsCovered coverageRate zeroEmploymentHouseholds }} }} "
        f'  x: adminArea(code: "513400") {{ employmentCoverage(asOf: "2000-01-01") {{ households '
        f"     householdsCovered coverageRate employedPersons byChannel {{ count }} }} }} }}"
    )
    t = data["t"]["employmentCoverage"]
    assert (
        t["households"],
        t["householdsWithLaborForce"],
        t["householdsCovered"],
        t["zeroEmploymentHouseholds"],
        t["employedPersons"],
        t["stablyEmployedPersons"],
    ) == (13, 10, 5, 4, 8, 6)  # + h13 (o, no job)
    assert data["v"]["employmentCoverage"] == {
        "households": 1,
        "householdsWithLaborForce": 1,
        "householdsCovered": 0,
        "coverageRate": 0.0,
        "zeroEmploymentHouseholds": 1,
    }
    # Before any employment began: nobody employed, every household with labor force is zero-employment.
    assert data["x"]["employmentCoverage"] == {
        "households": 13,
        "householdsCovered": 0,
        "coverageRate": 0.0,
        "employedPersons": 0,
        "byChannel": [],
    }


async def test_coverage_rate_null_without_labor_force(fx):  # type: ignore[no-untyped-def]
    run, _ = fx
    data = await run(
        '{ adminArea(code: "510000") { employmentCoverage(asOf: "2024-06-30") { households } } '
        "  facilities(filter: {kinds: [VEGETABLE_BASE]}) { nodes { jobsFilledRate employees } } }"
    )
    assert data["adminArea"]["employmentCoverage"]["households"] == 13
    assert data["facilities"]["nodes"] == [{"jobsFilledRate": None, "employees": 0}]  # F2: no planned jobs


async def test_household_fields(fx):  # type: ignore[no-untyped-def]
    run, ids = fx
    q = (
        f'query($id: ID!) {{ household(id: $id) {{ size laborForceCount stablyEmployedCount(asOf: "{D}") '
        f'isZeroEmployment(asOf: "{D}") employments(asOf: "{D}") {{ channel }} '
        f"linkedIncome(year: 2024) {{ total perCapita byMechanism {{ mechanism amount }} }} }} }}"
    )
    expected = {
        "h1": (2, 0, 0, False, ["FLEXIBLE"], "0.00", "0.00", {}),
        "h3": (1, 1, 0, True, [], "0.00", "0.00", {}),
        "h4": (1, 1, 1, False, ["LABOR_EXPORT"], "0.00", "0.00", {}),
        "h5": (1, 1, 0, True, [], "0.00", "0.00", {}),
        "h6": (
            2,
            2,
            2,
            False,
            ["PUBLIC_WELFARE_POST", "WORKSHOP"],
            "1500.50",
            "750.25",
            {"WAGE": "1200.00", "DIVIDEND": "300.50"},
        ),
        "h7": (1, 1, 1, False, ["FLEXIBLE", "SELF_EMPLOYMENT"], "100.00", "100.00", {"DIVIDEND": "100.00"}),
        "h8": (0, 0, 0, False, [], "50.00", None, {"LAND_RENT": "50.00"}),
        "h10": (2, 0, 0, False, [], "0.05", "0.03", {"ORDER_PURCHASE": "0.05"}),  # 0.025 rounds half-up
        "h11": (3, 1, 1, False, ["LOCAL_ENTERPRISE"], "1000.00", "333.33", {"WAGE": "1000.00"}),
    }
    for key, (size, lf, stable, zero, channels, total, per_capita, mech) in expected.items():
        h = (await run(q, id=str(ids[key])))["household"]
        li = h["linkedIncome"]
        assert (h["size"], h["laborForceCount"], h["stablyEmployedCount"], h["isZeroEmployment"]) == (size, lf, stable, zero), key
        assert sorted(e["channel"] for e in h["employments"]) == channels, key
        assert (li["total"], li["perCapita"]) == (total, per_capita), key
        assert {x["mechanism"]: x["amount"] for x in li["byMechanism"]} == mech, key


async def test_linkage_summary_and_facilities(fx):  # type: ignore[no-untyped-def]
    run, ids = fx
    data = await run(
        "query($id: ID!) { relocationSite(id: $id) { incomeLinkageSummary(year: 2024) { householdsLinked "
        "total byMechanism { mechanism amount households } byFacility(first: 5) { facility { name } amount "
        "households } } y2023: incomeLinkageSummary(year: 2023) { householdsLinked total } } "
        'facilities { nodes { name employees(asOf: "2024-06-30") jobsFilledRate(asOf: "2024-06-30") '
        "l24: linkedHouseholds(year: 2024) l23: linkedHouseholds(year: 2023) } } }",
        id=str(ids["S1"]),
    )
    s = data["relocationSite"]["incomeLinkageSummary"]
    assert s["householdsLinked"] == 5  # h6 h7 h8 h10 h11
    assert s["total"] == "2650.55"  # 1200 + 300.50 + 100 + 50 + 0.05 + 1000
    assert {x["mechanism"]: (x["amount"], x["households"]) for x in s["byMechanism"]} == {
        "WAGE": ("2200.00", 2),
        "DIVIDEND": ("400.50", 2),
        "LAND_RENT": ("50.00", 1),
        "ORDER_PURCHASE": ("0.05", 1),
    }
    assert s["byFacility"] == [
        {"facility": {"name": "F1 workshop"}, "amount": "2200.00", "households": 2},
        {"facility": {"name": "F2 vegetable base"}, "amount": "450.50", "households": 3},
    ]
    assert data["relocationSite"]["y2023"] == {"householdsLinked": 1, "total": "999.00"}
    fac = {f["name"]: f for f in data["facilities"]["nodes"]}
    # F1 on D: g (workshop) and m1 (local enterprise at F1); d ended D-1, f starts D+1.
    assert fac["F1 workshop"] == {"name": "F1 workshop", "employees": 2, "jobsFilledRate": 0.5, "l24": 2, "l23": 0}
    assert (fac["F2 vegetable base"]["l24"], fac["F2 vegetable base"]["l23"]) == (3, 1)


async def test_households_at_risk(fx):  # type: ignore[no-untyped-def]
    run, ids = fx
    q = (
        "query($site: ID, $t: Decimal) { householdsAtRisk(year: 2024, siteId: $site, perCapitaThreshold: $t) { totalCount "
        "nodes { household { code } reasons perCapitaIncome previousPerCapitaIncome changeRate } } }"
    )
    default = (await run(q, site=str(ids["S1"])))["householdsAtRisk"]
    assert default["totalCount"] == 3
    assert default["nodes"] == [
        {
            "household": {"code": "FX-02"},
            "reasons": ["BELOW_THRESHOLD"],
            "perCapitaIncome": "8000.00",
            "previousPerCapitaIncome": None,
            "changeRate": None,
        },
        {
            "household": {"code": "FX-11"},
            "reasons": ["BELOW_THRESHOLD", "INCOME_DECLINED"],
            "perCapitaIncome": "9000.00",
            "previousPerCapitaIncome": "10000.00",
            "changeRate": pytest.approx(-0.1),
        },
        {
            "household": {"code": "FX-12"},
            "reasons": ["INCOME_DECLINED"],
            "perCapitaIncome": "12000.50",
            "previousPerCapitaIncome": "15000.00",
            "changeRate": pytest.approx(-2999.5 / 15000),
        },
    ]  # h9 fell by exactly 0; h10 sits exactly on 10,000; h8 has no members
    lower = (await run(q, site=str(ids["S1"]), t="9000"))["householdsAtRisk"]["nodes"]
    assert [(n["household"]["code"], n["reasons"]) for n in lower] == [
        ("FX-02", ["BELOW_THRESHOLD"]),
        ("FX-11", ["INCOME_DECLINED"]),
        ("FX-12", ["INCOME_DECLINED"]),
    ]
    higher = (await run(q, site=str(ids["S1"]), t="10000.01"))["householdsAtRisk"]["nodes"]
    assert [n["household"]["code"] for n in higher] == ["FX-02", "FX-10", "FX-11", "FX-12"]


async def test_zero_employment_households(fx):  # type: ignore[no-untyped-def]
    run, ids = fx
    data = await run(
        f'query($site: ID) {{ s: zeroEmploymentHouseholds(siteId: $site, asOf: "{D}") '
        f"{{ totalCount nodes {{ code }} }} "
        f' a: zeroEmploymentHouseholds(areaCode: "513432100", asOf: "{D}") {{ totalCount nodes {{ code }} }} '
        f' f: households(filter: {{siteId: $site, zeroEmployment: true, asOf: "{D}"}}) {{ nodes {{ code }} }} '
        f' n: households(filter: {{siteId: $site, zeroEmployment: false, asOf: "{D}"}}) {{ totalCount }} }}',
        site=str(ids["S1"]),
    )
    assert [n["code"] for n in data["s"]["nodes"]] == ["FX-03", "FX-05", "FX-09"]
    assert [n["code"] for n in data["a"]["nodes"]] == ["FX-03", "FX-05", "FX-09", "FX-13"]
    assert data["f"]["nodes"] == data["s"]["nodes"]
    assert data["n"]["totalCount"] == 12 - 3


async def test_report_figures_on_demo_data(gql):  # type: ignore[no-untyped-def]
    r = await gql(
        '{ relocationSites(filter: {name: "彝欣社区"}) { nodes { employmentCoverage(asOf: "2024-04-13") '
        "{ coverageRate employedPersons zeroEmploymentHouseholds } } } "
        " facilities(filter: {kinds: [TEA_PLANTATION]}) { nodes { linkedHouseholds(year: 2024) } } }"
    )
    assert r.errors is None
    c = r.data["relocationSites"]["nodes"][0]["employmentCoverage"]
    assert c["coverageRate"] == 1.0
    assert c["employedPersons"] >= FACTS["relocation_sites"][0]["transferred_employment_last_year_at_least"]
    assert c["zeroEmploymentHouseholds"] == 0
    assert r.data["facilities"]["nodes"] == [{"linkedHouseholds": FACTS["facilities"][1]["tea_farming_households"]}]


async def test_coverage_of_many_sites_is_one_statement_per_field(gql, count_statements):  # type: ignore[no-untyped-def]
    q = (
        '{ households(first: 100) { nodes { stablyEmployedCount(asOf: "2024-04-13") isZeroEmployment(asOf: "2024-04-13") '
        "linkedIncome(year: 2024) { total perCapita } members { name } incomeLinkages(year: 2024) { amount } } } }"
    )
    with count_statements() as counter:
        r = await gql(q)
    assert r.errors is None and len(r.data["households"]["nodes"]) == 100
    # page + household employment status + linked income (sizes, sums) + members + linkages
    assert len(counter.statements) <= 6, counter.statements


async def test_partner_view_suppresses_cells_below_k(fx, settings, schema):  # type: ignore[no-untyped-def]
    """Xide county (513432: all 13 fixture households) seen by a partner paired with it (k = 5), by hand
    from the fixture's table: cells of fewer than 5 households are null or left out; sites are refused."""
    from sqlalchemy import text

    from resolvers.access import Role, Viewer

    _, ids = fx
    eng = handbuilt_engines["anju_test_fx"]
    async with eng.begin() as c:
        pid = await c.scalar(
            text(
                "INSERT INTO cooperation_partner (name, kind) VALUES ('[test] partner', 'enterprise') "
                "ON CONFLICT (name) DO UPDATE SET kind = 'enterprise' RETURNING id"
            )
        )
        await c.execute(text("INSERT INTO partner_county VALUES (:p, '513432') ON CONFLICT DO NOTHING"), {"p": pid})
    viewer = Viewer(None, "p", Role.PARTNER, partner_id=pid, paired_counties=("513432",))
    ctx = Context(sessionmaker=async_sessionmaker(eng, expire_on_commit=False), settings=settings, viewer=viewer)
    r = await schema.execute(
        f'{{ adminArea(code: "513432") {{ employmentCoverage(asOf: "{D}") {{ {COVERAGE} suppressed }} '
        "incomeLinkageSummary(year: 2024) { householdsLinked total byMechanism { mechanism amount households } "
        "byFacility { amount households } suppressed } } }",
        context_value=ctx,
    )
    assert r.errors is None, r.errors
    c = r.data["adminArea"]["employmentCoverage"]
    assert c == {
        "households": 13,
        "householdsWithLaborForce": None,  # 10, but 13 − 10 = 3 households without labor force (h1 h8 h10) < 5
        "householdsCovered": 5,
        "coverageRate": None,
        "zeroEmploymentHouseholds": None,  # h3 h5 h9 h13: 4 households < 5
        "employedPersons": 8,  # from 7 households: h1 h2 h4 h6 h7 h11 h12
        "stablyEmployedPersons": 6,  # from 5 households: h4 h6 h7 h11 h12
        "byChannel": [],  # every channel rests on 1 or 2 households: left out
        "suppressed": True,
    }
    s = r.data["adminArea"]["incomeLinkageSummary"]
    # 5 households linked (h6 h7 h8 h10 h11): shown. Mechanisms hold 2, 2, 1, 1 households and facilities
    # F1 2 (h6 h11), F2 3 (h6 h7 h8): all left out.
    assert s == {"householdsLinked": 5, "total": "2650.55", "byMechanism": [], "byFacility": [], "suppressed": True}
    r = await schema.execute(
        "query($id: ID!) { relocationSite(id: $id) { householdCount employmentCoverage { households } } }",
        variable_values={"id": str(ids["S1"])},
        context_value=ctx,
    )
    assert r.errors[0].extensions["code"] == "FORBIDDEN" and r.data == {"relocationSite": None}


def test_secondary_suppression_of_breakdowns() -> None:
    """total − Σ shown must not give back a left-out cell: B (2 households) is left out, so the smallest shown
    cell (C, 7) goes too; A stays. Without a small cell nothing changes."""
    from decimal import Decimal

    import models as m
    from resolvers import coverage as cov
    from resolvers.suppression import shown_cells

    LM = m.LinkageMechanism
    a, b, c = (
        cov.MechanismAmount(LM.WAGE, Decimal("1000.00"), 10),
        cov.MechanismAmount(LM.DIVIDEND, Decimal("50.00"), 2),
        cov.MechanismAmount(LM.LAND_RENT, Decimal("700.00"), 7),
    )
    assert shown_cells([a, b, c], lambda x: x.households, 5) == ([a], True)
    assert shown_cells([a, c], lambda x: x.households, 5) == ([a, c], False)
    assert shown_cells([a, b, c], lambda x: x.households, None) == ([a, b, c], False)
    # two small cells holding 5 together: no secondary suppression needed
    d = cov.MechanismAmount(LM.OTHER, Decimal("1.00"), 3)
    assert shown_cells([a, b, c, d], lambda x: x.households, 5) == ([a, c], True)


async def test_partner_breakdowns_count_distinct_households_left_out(fx, settings, schema):  # type: ignore[no-untyped-def]
    """The second breaker round's attacks, by hand on fixture households (years no other test uses):
    2027: h1..h5 ORDER_PURCHASE at F2 (1,000 each) + h6 OTHER without facility (777): total − Σ shown would
          give h6's 777, so nothing is shown in either breakdown.
    2028: h1..h5 ORDER_PURCHASE at F2 + h6, h7 each LAND_RENT, ASSET_INCOME and OTHER: the three small
          mechanisms hold 6 cell-households but 2 distinct households — ORDER_PURCHASE must go too.
    2029: h1..h5 ORDER_PURCHASE at F2 + h6..h10 WAGE at F1 (500 each) + h11 OTHER (10): leaving out OTHER
          and one of the two 5-household cells hides 6 households: the other cell is shown."""
    from sqlalchemy import text

    from resolvers.access import Role, Viewer

    _, ids = fx
    eng = handbuilt_engines["anju_test_fx"]
    rows = [(h, 2027, "order_purchase", "F2", 1000) for h in ("h1", "h2", "h3", "h4", "h5")] + [("h6", 2027, "other", None, 777)]
    rows += [(h, 2028, "order_purchase", "F2", 1000) for h in ("h1", "h2", "h3", "h4", "h5")]
    rows += [(h, 2028, mech, None, 100) for h in ("h6", "h7") for mech in ("land_rent", "asset_income", "other")]
    rows += [(h, 2029, "order_purchase", "F2", 1000) for h in ("h1", "h2", "h3", "h4", "h5")]
    rows += [(h, 2029, "wage", "F1", 500) for h in ("h6", "h7", "h8", "h9", "h10")] + [("h11", 2029, "other", None, 10)]
    async with eng.begin() as c:
        for h, year, mech, fac, amount in rows:
            await c.execute(
                text(
                    "INSERT INTO income_linkage (household_id, facility_id, mechanism, year, amount) "
                    "VALUES (:h, :f, CAST(:m AS linkage_mechanism), :y, :a)"
                ),
                {"h": ids[h], "f": ids[fac] if fac else None, "m": mech, "y": year, "a": amount},
            )
        pid = await c.scalar(
            text(
                "INSERT INTO cooperation_partner (name, kind) VALUES ('[test] partner', 'enterprise') "
                "ON CONFLICT (name) DO UPDATE SET kind = 'enterprise' RETURNING id"
            )
        )
        await c.execute(text("INSERT INTO partner_county VALUES (:p, '513432') ON CONFLICT DO NOTHING"), {"p": pid})
    ctx = Context(
        sessionmaker=async_sessionmaker(eng, expire_on_commit=False),
        settings=settings,
        viewer=Viewer(None, "p", Role.PARTNER, partner_id=pid, paired_counties=("513432",)),
    )
    q = (
        "{ "
        + " ".join(
            f'y{y}: adminArea(code: "513432") {{ incomeLinkageSummary(year: {y}) {{ householdsLinked total '
            "byMechanism { mechanism households amount } byFacility { households amount } suppressed } }"
            for y in (2027, 2028, 2029)
        )
        + " }"
    )
    r = await schema.execute(q, context_value=ctx)
    assert r.errors is None, r.errors
    y27, y28, y29 = (r.data[f"y{y}"]["incomeLinkageSummary"] for y in (2027, 2028, 2029))
    assert y27 == {"householdsLinked": 6, "total": "5777.00", "byMechanism": [], "byFacility": [], "suppressed": True}
    assert y28 == {"householdsLinked": 7, "total": "5600.00", "byMechanism": [], "byFacility": [], "suppressed": True}
    assert y29["householdsLinked"] == 11 and y29["total"] == "7510.00" and y29["suppressed"] is True
    assert len(y29["byMechanism"]) == 1 and y29["byMechanism"][0]["households"] == 5
    assert y29["byMechanism"][0] in (
        {"mechanism": "ORDER_PURCHASE", "households": 5, "amount": "5000.00"},
        {"mechanism": "WAGE", "households": 5, "amount": "2500.00"},
    )
    assert len(y29["byFacility"]) == 1 and y29["byFacility"][0] in (
        {"households": 5, "amount": "5000.00"},
        {"households": 5, "amount": "2500.00"},
    )


def test_nested_coverage_differences_are_cells_too() -> None:
    """Breaker case: 40 households, 38 with labor force, 36 covered, 2 zero-employment (k = 5). Shown as is,
    40 − 38 = 2 households without labor force and 38 − 36 = 2 uncovered ones could be read off."""
    import models as m
    from resolvers import coverage as cov
    from resolvers.suppression import coverage

    c = cov.EmploymentCoverage(
        households=40,
        households_with_labor_force=38,
        households_covered=36,
        zero_employment_households=2,
        employed_persons=60,
        stably_employed_persons=50,
        by_channel=[cov.ChannelCount(m.EmploymentChannel.WORKSHOP, 60, 36)],
        households_employed=36,
        households_stably_employed=36,
    )
    x = coverage(c, 5)
    assert (
        x.households,
        x.households_with_labor_force,
        x.households_covered,
        x.zero_employment_households,
        x.coverage_rate,
        x.suppressed,
    ) == (40, None, None, None, None, True)
    # with gaps of 5 or more everything is shown
    c2 = cov.EmploymentCoverage(
        households=50,
        households_with_labor_force=40,
        households_covered=30,
        zero_employment_households=5,
        employed_persons=60,
        stably_employed_persons=50,
        by_channel=[],
        households_employed=35,
        households_stably_employed=30,
    )
    x2 = coverage(c2, 5)
    assert (x2.households_with_labor_force, x2.households_covered, x2.zero_employment_households, x2.suppressed) == (
        40,
        30,
        5,
        False,
    )
    assert x2.coverage_rate == 30 / 40
