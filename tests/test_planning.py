"""Planning (issue #15): facility placement against a brute-force greedy over raw rows, and site scorecards
recomputed from raw rows, on the generated area of tests/planning_fixture.py; access per role."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

from resolvers.access import Role, Viewer
from schema import Context
from tests import planning_fixture as pf

D = pf.D
PLACE = """query($kind: FacilityKind!, $reach: Float!, $area: String!, $cand: PlacementCandidates!, $count: Int!,
  $hex: Float, $points: GeoJSON, $asOf: Date) {
  facilityPlacement(kind: $kind, reachMeters: $reach, areaCode: $area, candidates: $cand, count: $count,
    hexSizeMeters: $hex, points: $points, asOf: $asOf) {
    eligibleHouseholds candidates
    picks { pick candidate point households persons cumulativeHouseholds cumulativePersons site { id } }
  }
}"""


@pytest.fixture(scope="module")
async def area(settings, schema):  # type: ignore[no-untyped-def]
    eng, ids = await pf.build(settings, "anju_test_planning")
    sm = async_sessionmaker(eng, expire_on_commit=False)

    async def run(query: str, viewer: Viewer | None = None, **variables: Any) -> Any:
        v = viewer or Viewer(None, "t-admin", Role.ADMIN)
        return await schema.execute(
            query, variable_values=variables or None, context_value=Context(sessionmaker=sm, settings=settings, viewer=v)
        )

    yield run, eng, ids
    await eng.dispose()


async def _raw_households(eng: Any, on: dt.date, county: str) -> dict[int, dict[str, Any]]:
    """Every household of ``county`` with its labor force and whether it is zero-employment on ``on``, from raw member and
    employment rows (no kept table)."""
    async with eng.connect() as c:
        rows = (
            await c.execute(
                text(
                    "SELECT h.id, h.site_id, "
                    " (SELECT count(*) FROM member m WHERE m.household_id = h.id AND m.labor_force) AS lf, "
                    " EXISTS (SELECT 1 FROM employment e JOIN member m ON m.id = e.member_id WHERE m.household_id = h.id "
                    "   AND e.start_on <= :d AND (e.end_on IS NULL OR e.end_on >= :d)) AS employed, "
                    " EXISTS (SELECT 1 FROM employment e JOIN member m ON m.id = e.member_id WHERE m.household_id = h.id "
                    "   AND e.stable AND e.start_on <= :d AND (e.end_on IS NULL OR e.end_on >= :d)) AS stable "
                    "FROM household h WHERE h.admin_code LIKE :p"
                ),
                {"d": on, "p": county + "%"},
            )
        ).mappings()
        return {r["id"]: dict(r) for r in rows}


async def _within(eng: Any, points: list[tuple[float, float]], reach: float) -> list[set[int]]:
    """For each point, the households whose dwelling lies within ``reach`` metres (ST_Distance on geography)."""
    async with eng.connect() as c:
        rows = await c.execute(
            text(
                "SELECT p.o, h.id FROM unnest(CAST(:x AS float8[]), CAST(:y AS float8[])) WITH ORDINALITY p(x, y, o) "
                "JOIN household h ON ST_Distance(geography(ST_SetSRID(ST_MakePoint(p.x, p.y), 4326)), "
                "geography(h.dwelling)) <= :r"
            ),
            {"x": [p[0] for p in points], "y": [p[1] for p in points], "r": reach},
        )
        out: list[set[int]] = [set() for _ in points]
        for o, hid in rows:
            out[o - 1].add(hid)
    return out


async def _open_workshops(eng: Any, on: dt.date) -> list[tuple[float, float]]:
    async with eng.connect() as c:
        rows = await c.execute(
            text("SELECT ST_X(location), ST_Y(location), opened_on, closed_on FROM facility WHERE kind = 'assistance_workshop'")
        )
        return [(x, y) for x, y, o, cl in rows if (o is None or o <= on) and (cl is None or on < cl)]


async def _brute_force(
    eng: Any, cands: list[tuple[float, float]], reach: float, k: int
) -> tuple[int, list[tuple[int, int, int]]]:
    """Greedy maximal covering by enumeration: (eligible households, [(candidate 1-based, households, persons)])."""
    hh = await _raw_households(eng, D, "513432")
    covered_now = set().union(*await _within(eng, await _open_workshops(eng, D), reach))
    eligible = {h for h, r in hh.items() if r["lf"] > 0 and not r["employed"] and h not in covered_now}
    reach_of = [s & eligible for s in await _within(eng, cands, reach)]
    left, picks = set(eligible), []
    for _ in range(k):
        best = max(
            range(len(cands)),
            key=lambda i: (len(reach_of[i] & left), sum(hh[h]["lf"] for h in reach_of[i] & left), -i),
        )
        new = reach_of[best] & left
        if not new:
            break
        picks.append((best + 1, len(new), sum(hh[h]["lf"] for h in new)))
        left -= new
    return len(eligible), picks


def _lattice() -> list[tuple[float, float]]:
    x0, y0, x1, y1 = pf.BOX["513432"]
    return [(x0 + (x1 - x0) * (i + 0.5) / 6, y0 + (y1 - y0) * (j + 0.5) / 6) for i in range(6) for j in range(6)]


@pytest.mark.parametrize("reach,k", [(2500.0, 4), (4000.0, 3), (1200.0, 8)])
async def test_placement_equals_brute_force_greedy(area, reach, k):  # type: ignore[no-untyped-def]
    run, eng, _ = area
    cands = _lattice()
    r = await run(
        PLACE,
        kind="ASSISTANCE_WORKSHOP",
        reach=reach,
        area="513432",
        cand="POINTS",
        count=k,
        points={"type": "MultiPoint", "coordinates": [list(p) for p in cands]},
        asOf=D.isoformat(),
    )
    assert r.errors is None, r.errors
    got = r.data["facilityPlacement"]
    eligible, expected = await _brute_force(eng, cands, reach, k)
    assert got["eligibleHouseholds"] == eligible
    assert got["candidates"] == len(cands)
    assert [(p["candidate"], p["households"], p["persons"]) for p in got["picks"]] == expected
    assert expected, "the generated area must leave households to cover"
    cum = 0
    for p in got["picks"]:
        cum += p["households"]
        assert p["cumulativeHouseholds"] == cum
        assert p["point"]["coordinates"] == pytest.approx(list(cands[p["candidate"] - 1]), abs=1e-7)


async def test_placement_at_the_edge_of_reach_in_every_direction(area):  # type: ignore[no-untyped-def]
    """Candidates 2 m inside and 2 m outside the reach of zero-employment households, in eight directions: the answer
    still equals the brute force (facility_placement.sql only tests households in a candidate's lon/lat cells)."""
    run, eng, _ = area
    reach = 300.0
    hh = await _raw_households(eng, D, "513432")
    some = sorted(h for h, r in hh.items() if r["lf"] > 0 and not r["employed"])[:3]
    async with eng.connect() as c:
        rows = await c.execute(
            text(
                "SELECT ST_X(q), ST_Y(q) FROM household h CROSS JOIN unnest(CAST(:d AS float8[])) d "
                "CROSS JOIN generate_series(0, 7) a "
                "CROSS JOIN LATERAL (SELECT geometry(ST_Project(geography(h.dwelling), d, radians(45 * a))) AS q) p "
                "WHERE h.id = ANY(:ids) ORDER BY h.id, d, a"
            ),
            {"d": [reach - 2, reach + 2], "ids": some},
        )
        cands = [(x, y) for x, y in rows]
    assert len(cands) == 48
    within = await _within(eng, cands, reach)
    assert all(within[i] for i in range(0, 48, 16)), "a point 2 m inside the reach covers its household"
    r = await run(
        PLACE,
        kind="ASSISTANCE_WORKSHOP",
        reach=reach,
        area="513432",
        cand="POINTS",
        count=6,
        points={"type": "MultiPoint", "coordinates": [list(p) for p in cands]},
        asOf=D.isoformat(),
    )
    assert r.errors is None, r.errors
    _, expected = await _brute_force(eng, cands, reach, 6)
    assert expected
    assert [(p["candidate"], p["households"], p["persons"]) for p in r.data["facilityPlacement"]["picks"]] == expected


async def test_placement_among_sites_and_the_closed_workshop(area):  # type: ignore[no-untyped-def]
    """SITES: the area's three sites, by id; the workshop closed on 2024-01-01 covers nobody on D but did in 2023."""
    run, eng, ids = area
    async with eng.connect() as c:
        sites = (
            await c.execute(
                text("SELECT id, ST_X(location), ST_Y(location) FROM relocation_site WHERE admin_code LIKE '513432%' ORDER BY id")
            )
        ).all()
    r = await run(PLACE, kind="ASSISTANCE_WORKSHOP", reach=3000.0, area="513432", cand="SITES", count=3, asOf=D.isoformat())
    assert r.errors is None, r.errors
    got = r.data["facilityPlacement"]
    _, expected = await _brute_force(eng, [(x, y) for _, x, y in sites], 3000.0, 3)
    assert [(p["candidate"], p["households"], p["persons"]) for p in got["picks"]] == expected
    assert [int(p["site"]["id"]) for p in got["picks"]] == [sites[c - 1][0] for c, _, _ in expected]
    before = await run(PLACE, kind="ASSISTANCE_WORKSHOP", reach=3000.0, area="513432", cand="SITES", count=3, asOf="2023-06-30")
    assert before.errors is None
    hh23 = await _raw_households(eng, dt.date(2023, 6, 30), "513432")
    both = set().union(*await _within(eng, [(102.42, 28.27), (102.48, 28.33)], 3000.0))
    assert before.data["facilityPlacement"]["eligibleHouseholds"] == sum(
        1 for h, x in hh23.items() if x["lf"] > 0 and not x["employed"] and h not in both
    )


async def test_grid_picks_recount(area):  # type: ignore[no-untyped-def]
    """GRID: each pick's households recounted from raw rows given the earlier picks; points inside the county."""
    run, eng, _ = area
    r = await run(PLACE, kind="ASSISTANCE_WORKSHOP", reach=2000.0, area="513432", cand="GRID", count=5, hex=1500.0)
    assert r.errors is None, r.errors
    got = r.data["facilityPlacement"]
    today = dt.date.today()
    hh = await _raw_households(eng, today, "513432")
    covered = set().union(*await _within(eng, await _open_workshops(eng, today), 2000.0))
    eligible = {h for h, x in hh.items() if x["lf"] > 0 and not x["employed"] and h not in covered}
    assert got["eligibleHouseholds"] == len(eligible)
    x0, y0, x1, y1 = pf.BOX["513432"]
    async with eng.connect() as c:
        m2 = await c.scalar(text("SELECT ST_Area(geography(geom)) FROM admin_area WHERE code = '513432'"))
    hexagons = m2 / (3 * 3**0.5 / 2 * 1500.0**2)  # about 36 hexagons of 5.85 km² over 212 km²
    assert abs(got["candidates"] - hexagons) <= 0.2 * hexagons
    points = [tuple(p["point"]["coordinates"]) for p in got["picks"]]
    left = set(eligible)
    for p, reach in zip(got["picks"], await _within(eng, points, 2000.0), strict=True):
        assert x0 <= p["point"]["coordinates"][0] <= x1 and y0 <= p["point"]["coordinates"][1] <= y1
        new = reach & left
        assert (p["households"], p["persons"]) == (len(new), sum(hh[h]["lf"] for h in new))
        left -= new
    assert len(got["picks"]) >= 2


@pytest.mark.parametrize(
    "args,field",
    [
        ({"count": 0}, "count"),
        ({"count": 21}, "count"),
        ({"reach": 0.0}, "reachMeters"),
        ({"reach": 60000.0}, "reachMeters"),
        ({"cand": "GRID"}, "hexSizeMeters"),
        ({"cand": "GRID", "hex": 50.0}, "hexSizeMeters"),
        ({"cand": "GRID", "hex": 100.0}, "hexSizeMeters"),  # about 8,000 hexagons
        ({"cand": "GRID", "hex": 1000.0, "area": "513432100"}, "areaCode"),  # no boundary
        ({"cand": "POINTS"}, "points"),
        ({"area": "5134"}, "areaCode"),
        ({"area": "513499"}, "areaCode"),
    ],
)
async def test_placement_bad_input(area, args, field):  # type: ignore[no-untyped-def]
    run, _, _ = area
    v = {"kind": "ASSISTANCE_WORKSHOP", "reach": 2000.0, "area": "513432", "cand": "SITES", "count": 2, **args}
    r = await run(PLACE, **v)
    assert r.data is None or r.data.get("facilityPlacement") is None
    assert [e.extensions for e in r.errors] == [{"code": "BAD_USER_INPUT", "field": field}]


async def test_placement_access(area):  # type: ignore[no-untyped-def]
    """Planners as admins; an officer counts only its areas' households; partners are refused."""
    run, eng, _ = area
    v = {"kind": "ASSISTANCE_WORKSHOP", "reach": 2500.0, "area": "513432", "cand": "SITES", "count": 2, "asOf": D.isoformat()}
    admin = (await run(PLACE, **v)).data["facilityPlacement"]
    planner = await run(PLACE, Viewer(None, "t-planner", Role.PLANNER), **v)
    assert planner.errors is None and planner.data["facilityPlacement"] == admin
    mine = await run(PLACE, Viewer(None, "t-officer", Role.COUNTY_OFFICER, ("513432",)), **v)
    assert mine.errors is None and mine.data["facilityPlacement"] == admin
    other = await run(PLACE, Viewer(None, "t-officer-w", Role.COUNTY_OFFICER, ("513431",)), **v)
    assert other.errors is None
    assert other.data["facilityPlacement"]["eligibleHouseholds"] == 0 and other.data["facilityPlacement"]["picks"] == []
    partner = await run(PLACE, Viewer(None, "t-partner", Role.PARTNER, (), 1, ("513432",)), **v)
    assert partner.data is None and [e.extensions["code"] for e in partner.errors] == ["FORBIDDEN"]


SCORE = """query($asOf: Date, $year: Int, $dist: Float, $area: String) {
  siteScorecards(asOf: $asOf, year: $year, distanceMeters: $dist, areaCode: $area) {
    site { id } asOf year households householdsWithLaborForce householdsCovered coverageRate previousCoverageRate
    coverageChange perCapitaIncome previousPerCapitaIncome perCapitaIncomeChangeRate householdsLinked openMonitoringCases
    distanceMeters
    services { kind distanceMeters householdsBeyond facility { id } }
  }
}"""


async def _raw_scorecard(eng: Any, site_id: int, year: int, dist: float) -> dict[str, Any]:
    """A site's scorecard from raw rows: members, employments, incomes (with the members as the size), linkages,
    and distances by ST_Distance on geography."""
    hh = {h: r for h, r in (await _raw_households(eng, D, "51")).items() if r["site_id"] == site_id}
    before = {h: r for h, r in (await _raw_households(eng, D.replace(year=D.year - 1), "51")).items() if h in hh}
    out: dict[str, Any] = {
        "households": len(hh),
        "householdsWithLaborForce": sum(1 for r in hh.values() if r["lf"]),
        "householdsCovered": sum(1 for r in hh.values() if r["lf"] and r["stable"]),
    }
    prev_lf = sum(1 for r in before.values() if r["lf"])
    prev_cov = sum(1 for r in before.values() if r["lf"] and r["stable"])
    out["coverageRate"] = out["householdsCovered"] / out["householdsWithLaborForce"] if out["householdsWithLaborForce"] else None
    out["previousCoverageRate"] = prev_cov / prev_lf if prev_lf else None
    async with eng.connect() as c:
        pcs = {}
        for y in (year, year - 1):
            tot, size = (
                await c.execute(
                    text(
                        "SELECT sum(i.net_income), sum((SELECT count(*) FROM member m WHERE m.household_id = i.household_id)) "
                        "FROM household_income i WHERE i.year = :y AND i.household_id = ANY(:ids)"
                    ),
                    {"y": y, "ids": list(hh)},
                )
            ).one()
            pcs[y] = (Decimal(tot) / Decimal(size)) if size else None
        out["perCapitaIncome"] = str(pcs[year].quantize(Decimal("0.01"), ROUND_HALF_UP)) if pcs[year] is not None else None
        out["householdsLinked"] = await c.scalar(
            text("SELECT count(DISTINCT household_id) FROM income_linkage WHERE year = :y AND household_id = ANY(:ids)"),
            {"y": year, "ids": list(hh)},
        )
        services = []
        for kind in ("SCHOOL", "CLINIC", "WATER_SUPPLY"):
            near = (
                await c.execute(
                    text(
                        "SELECT f.id, ST_Distance(geography(f.location), geography(s.location)) AS d "
                        "FROM facility f, relocation_site s WHERE s.id = :s AND f.kind = CAST(lower(:k) AS facility_kind) "
                        "ORDER BY d LIMIT 1"
                    ),
                    {"s": site_id, "k": kind},
                )
            ).one_or_none()
            beyond = await c.scalar(
                text(
                    "SELECT count(*) FROM household h WHERE h.id = ANY(:ids) AND NOT EXISTS (SELECT 1 FROM facility f "
                    "WHERE f.kind = CAST(lower(:k) AS facility_kind) "
                    "AND ST_Distance(geography(f.location), geography(h.dwelling)) <= :dist)"
                ),
                {"ids": list(hh), "k": kind, "dist": dist},
            )
            services.append((kind, near[0] if near else None, near[1] if near else None, beyond))
    out["services"] = services
    out["pcs"] = pcs
    return out


async def test_scorecards_recomputed_from_raw_rows(area):  # type: ignore[no-untyped-def]
    run, eng, ids = area
    r = await run(SCORE, asOf=D.isoformat(), year=2024, dist=3000.0)
    assert r.errors is None, r.errors
    cards = r.data["siteScorecards"]
    assert [int(c["site"]["id"]) for c in cards] == sorted(ids["sites"].values())
    for card in cards:
        raw = await _raw_scorecard(eng, int(card["site"]["id"]), 2024, 3000.0)
        for key in ("households", "householdsWithLaborForce", "householdsCovered", "householdsLinked", "perCapitaIncome"):
            assert card[key] == raw[key], key
        assert card["coverageRate"] == pytest.approx(raw["coverageRate"])
        assert card["previousCoverageRate"] == pytest.approx(raw["previousCoverageRate"])
        assert card["coverageChange"] == pytest.approx(raw["coverageRate"] - raw["previousCoverageRate"])
        this, prev = raw["pcs"][2024], raw["pcs"][2023]
        assert card["perCapitaIncomeChangeRate"] == pytest.approx(float((this - prev) / prev))
        got = [
            (s["kind"], int(s["facility"]["id"]) if s["facility"] else None, s["distanceMeters"], s["householdsBeyond"])
            for s in card["services"]
        ]
        assert [(k, f, b) for k, f, _, b in got] == [(k, f, b) for k, f, _, b in raw["services"]]
        assert [d for *_, d, _ in got] == pytest.approx([d for *_, d, _ in raw["services"]])
    assert any(c["households"] > 5 for c in cards)
    assert any(0 < s["householdsBeyond"] < c["households"] for c in cards for s in c["services"])


async def test_scorecard_counts_the_open_monitoring_cases(engine, settings, admin_headers):  # type: ignore[no-untyped-def]
    """Yixin (demo site 1) on dates around the demo cases: the cases open on the date among the households living at
    the site then, counted from the raw case and residence rows (not through anju_case_open_on)."""
    from starlette.testclient import TestClient

    from anju.app import create_app

    async with engine.connect() as c:
        days = [r[0] for r in await c.execute(text("SELECT DISTINCT opened_on FROM monitoring_case ORDER BY 1"))]
        closed = [
            r[0] for r in await c.execute(text("SELECT DISTINCT closed_on FROM monitoring_case WHERE closed_on IS NOT NULL"))
        ]
    assert days, "the demo data holds monitoring cases"
    dates = sorted({days[0] - dt.timedelta(days=1), *days, *closed, D})
    raw_sql = text(
        "SELECT count(*) FROM monitoring_case c WHERE c.opened_on <= :d AND (c.closed_on IS NULL OR :d < c.closed_on) "
        "AND (SELECT r.site_id FROM household_residence r WHERE r.household_id = c.household_id AND r.valid_from <= :d "
        "ORDER BY r.valid_from DESC LIMIT 1) = 1"
    )
    q = "query($d: Date) { siteScorecards(asOf: $d) { site { id } openMonitoringCases } }"
    seen = set()
    with TestClient(create_app(settings)) as client:
        for d in dates:
            body = client.post("/graphql", json={"query": q, "variables": {"d": d.isoformat()}}, headers=admin_headers).json()
            card = next(c for c in body["data"]["siteScorecards"] if c["site"]["id"] == "1")
            async with engine.connect() as c:
                expected = await c.scalar(raw_sql, {"d": d})
            assert card["openMonitoringCases"] == expected, d
            seen.add(expected)
    assert 0 in seen and max(seen) > 0  # before the first case and with cases open


async def test_scorecards_scope_and_bad_input(area):  # type: ignore[no-untyped-def]
    run, _, ids = area
    only = await run(SCORE, asOf=D.isoformat(), area="513431")
    assert [int(c["site"]["id"]) for c in only.data["siteScorecards"]] == [ids["sites"]["W"]]
    assert only.data["siteScorecards"][0]["year"] == 2023  # the last full year before asOf
    officer = await run(SCORE, Viewer(None, "t-officer-w", Role.COUNTY_OFFICER, ("513431",)), asOf=D.isoformat())
    # officers see every site (public infrastructure) but count only their areas' households
    counts = {int(c["site"]["id"]): c["households"] for c in officer.data["siteScorecards"]}
    assert counts[ids["sites"]["A"]] == 0 and counts[ids["sites"]["W"]] > 0
    partner = await run(SCORE, Viewer(None, "t-partner", Role.PARTNER, (), 1, ("513432",)), asOf=D.isoformat())
    assert [e.extensions["code"] for e in partner.errors] == ["FORBIDDEN"]
    for args, field in (({"dist": 0.0}, "distanceMeters"), ({"year": 1999}, "year"), ({"area": "12"}, "areaCode")):
        bad = await run(SCORE, asOf=D.isoformat(), **args)
        assert [e.extensions for e in bad.errors] == [{"code": "BAD_USER_INPUT", "field": field}]


SET = """mutation($input: SetPlanTargetInput!) { setPlanTarget(input: $input) { id version target source } }"""
TARGETS = """query($asOf: Date, $subject: TargetSubject) { planTargets(subject: $subject) {
  id subject metric year target version projectId area { code } facility { id }
  progress(asOf: $asOf) { asOf actual ratio met suppressed } } }"""
PARTNER = Viewer(None, "t-partner", Role.PARTNER, (), None, ("513432",))


async def _raw_actual(
    eng: Any, t: dict[str, Any], on: dt.date, ids: dict[str, Any], county: str = "51"
) -> tuple[float | None, int]:
    """A target's actual from raw member, employment and linkage rows (no kept table): (value, households behind it).

    ``county``: only households under it (a partner aggregates over its paired counties' households only).
    """
    only = f"household_id IN (SELECT id FROM household WHERE admin_code LIKE '{county}%')"
    async with eng.connect() as c:

        async def one(sql: str, **p: Any) -> Any:
            return (await c.execute(text(sql), p)).one()

        active = "e.start_on <= :d AND (e.end_on IS NULL OR e.end_on >= :d)"
        metric, year = t["metric"], t["year"]
        if t["subject"] == "AREA" and metric == "PERSONS_EMPLOYED":
            v, n = await one(
                "SELECT count(DISTINCT e.member_id), count(DISTINCT h.id) FROM employment e JOIN member m ON m.id = e.member_id "
                f"JOIN household h ON h.id = m.household_id WHERE h.admin_code LIKE '513432%' AND {active} "
                "AND h.poverty_status = 'poverty_alleviated'",
                d=on,
            )
            return float(v), n
        if t["subject"] == "AREA" and metric == "COVERAGE_RATE":
            hh = await _raw_households(eng, on, "513432")
            lf = [r for r in hh.values() if r["lf"]]
            return sum(1 for r in lf if r["stable"]) / len(lf), len(lf)
        if t["subject"] == "AREA":
            n, amount = await one(
                "SELECT count(DISTINCT l.household_id), sum(l.amount) FROM income_linkage l JOIN household h "
                "ON h.id = l.household_id WHERE h.admin_code LIKE '513432%' AND l.year = :y",
                y=year,
            )
            return (float(n) if metric == "HOUSEHOLDS_LINKED" else float(amount / n)), n
        fid = (
            int(t["facility"]["id"])
            if t["facility"]
            else (ids["workshop open"] if t["projectId"] == str(ids["project"]) else None)
        )
        if metric == "JOBS":
            v, n = await one(
                f"SELECT count(DISTINCT e.member_id), count(DISTINCT e.household_id) FROM employment e WHERE e.facility_id = :f "
                f"AND {active} AND e.{only}",
                f=fid,
                d=on,
            )
            return float(v), n
        if fid is None:  # the site project: households at site B with a linkage of the year
            n = (
                await one(
                    "SELECT count(*) FROM household h WHERE h.site_id = :s AND EXISTS (SELECT 1 FROM income_linkage l "
                    "WHERE l.household_id = h.id AND l.year = :y)",
                    s=ids["sites"]["B"],
                    y=year,
                )
            )[0]
            return float(n), n
        n, amount = await one(
            "SELECT count(DISTINCT household_id), sum(amount) FROM income_linkage "
            f"WHERE facility_id = :f AND year = :y AND {only}",
            f=fid,
            y=year,
        )
        return (float(n) if metric in ("HOUSEHOLDS_LINKED", "HOUSEHOLDS_BENEFITED") else float(amount / n)), n


@pytest.fixture(scope="module")
async def targets_set(area):  # type: ignore[no-untyped-def]
    """Targets of every subject and metric of the generated area, set by an admin; the inputs."""
    run, _, ids = area
    wanted = [
        {"subject": "AREA", "areaCode": "513432", "metric": "PERSONS_EMPLOYED", "target": "40"},
        {"subject": "AREA", "areaCode": "513432", "metric": "COVERAGE_RATE", "target": "0.5"},
        {"subject": "AREA", "areaCode": "513432", "metric": "HOUSEHOLDS_LINKED", "target": "60"},
        {"subject": "AREA", "areaCode": "513432", "metric": "AVERAGE_LINKED_INCOME", "target": "4000"},
        {"subject": "FACILITY", "facilityId": str(ids["workshop open"]), "metric": "JOBS", "target": "12"},
        {"subject": "FACILITY", "facilityId": str(ids["workshop open"]), "metric": "HOUSEHOLDS_LINKED", "target": "30"},
        {"subject": "FACILITY", "facilityId": str(ids["workshop open"]), "metric": "YUAN_PER_HOUSEHOLD", "target": "16000"},
        {"subject": "PROJECT", "projectId": str(ids["project"]), "metric": "HOUSEHOLDS_BENEFITED", "target": "20"},
        {"subject": "PROJECT", "projectId": str(ids["project"]), "metric": "JOBS", "target": "5"},
        {"subject": "PROJECT", "projectId": str(ids["site project"]), "metric": "HOUSEHOLDS_BENEFITED", "target": "10"},
    ]
    for w in wanted:
        r = await run(SET, input={**w, "year": 2024, "source": "test"})
        assert r.errors is None, r.errors
    return wanted


async def test_targets_progress_from_raw_rows_before_and_after_a_change(area, targets_set):  # type: ignore[no-untyped-def]
    run, eng, ids = area
    wanted = targets_set
    got = (await run(TARGETS, asOf=D.isoformat())).data["planTargets"]
    assert len(got) == len(wanted)
    for t in got:
        value, _ = await _raw_actual(eng, t, D, ids)
        assert t["progress"]["actual"] == pytest.approx(value), (t["subject"], t["metric"])
        assert t["progress"]["ratio"] == pytest.approx(value / t["target"])
        assert t["progress"]["met"] == (value >= t["target"])
    # a new job at the workshop from D + 10, for a member with none: the jobs on D are as before, on D + 20 one more
    jobs = next(t for t in got if t["metric"] == "JOBS" and t["subject"] == "FACILITY")
    later = D + dt.timedelta(days=20)
    raw_before = [(await _raw_actual(eng, jobs, on, ids))[0] for on in (D, later)]
    async with eng.begin() as c:
        member = await c.scalar(
            text(
                "SELECT m.id FROM member m WHERE m.labor_force AND NOT EXISTS "
                "(SELECT 1 FROM employment e WHERE e.member_id = m.id) ORDER BY m.id LIMIT 1"
            )
        )
        await c.execute(
            text(
                "INSERT INTO employment (member_id, household_id, channel, facility_id, start_on, stable) "
                "VALUES (:m, 0, 'workshop', :f, :s, true)"
            ),
            {"m": member, "f": ids["workshop open"], "s": D + dt.timedelta(days=10)},
        )
    shown = []
    for on in (D, later):
        now = {t["id"]: t for t in (await run(TARGETS, asOf=on.isoformat())).data["planTargets"]}
        shown.append(now[jobs["id"]]["progress"]["actual"])
        assert shown[-1] == (await _raw_actual(eng, jobs, on, ids))[0]
    assert shown == [raw_before[0], raw_before[1] + 1]


async def test_target_writes_access_and_errors(area):  # type: ignore[no-untyped-def]
    run, _, ids = area
    base = {"subject": "AREA", "areaCode": "513432100", "metric": "HOUSEHOLDS_LINKED", "year": 2025, "target": "10"}
    officer = Viewer(None, "t-officer", Role.COUNTY_OFFICER, ("513432",))
    other = Viewer(None, "t-officer-w", Role.COUNTY_OFFICER, ("513431",))
    planner = Viewer(None, "t-planner", Role.PLANNER)
    made = await run(SET, officer, input=base)
    assert made.errors is None, made.errors
    tid, version = made.data["setPlanTarget"]["id"], made.data["setPlanTarget"]["version"]
    replaced = await run(SET, planner, input={**base, "target": "12", "version": version})
    assert replaced.errors is None and replaced.data["setPlanTarget"]["version"] == version + 1
    for viewer, inp, code in (
        (other, {**base, "target": "13", "version": version + 1}, "FORBIDDEN"),
        (other, {**base, "areaCode": "513432", "metric": "PERSONS_EMPLOYED"}, "FORBIDDEN"),
        (
            officer,
            {"subject": "PROJECT", "projectId": str(ids["project"]), "metric": "JOBS", "year": 2025, "target": "1"},
            "FORBIDDEN",
        ),
        (PARTNER, base, "FORBIDDEN"),
        (planner, {**base, "target": "14", "version": version}, "CONFLICT"),
        (planner, base, "CONFLICT"),
    ):
        r = await run(SET, viewer, input=inp)
        assert r.data is None and [e.extensions["code"] for e in r.errors] == [code], (viewer.name, inp, r.errors)
    for inp, field in (
        ({**base, "metric": "JOBS"}, "metric"),
        ({**base, "metric": "COVERAGE_RATE", "target": "1.5"}, "target"),
        ({**base, "target": "-1"}, "target"),
        ({**base, "year": 1999}, "year"),
        ({"subject": "AREA", "metric": "JOBS", "year": 2025, "target": "1", "facilityId": "1"}, "metric"),
        ({"subject": "FACILITY", "metric": "JOBS", "year": 2025, "target": "1"}, "facilityId"),
        (
            {"subject": "FACILITY", "metric": "JOBS", "year": 2025, "target": "1", "facilityId": "1", "areaCode": "513432"},
            "areaCode",
        ),
    ):
        r = await run(SET, planner, input=inp)
        assert [e.extensions for e in r.errors] == [{"code": "BAD_USER_INPUT", "field": field}], inp
    missing = await run(SET, planner, input={**base, "areaCode": "513432999"})
    assert [e.extensions["code"] for e in missing.errors] == ["NOT_FOUND"]
    gone = await run(
        "mutation($i: DeletePlanTargetInput!) { deletePlanTarget(input: $i) }", officer, i={"id": tid, "version": version + 1}
    )
    assert gone.errors is None and gone.data["deletePlanTarget"] == tid
    async with area[1].connect() as c:
        audited = (
            await c.execute(
                text(
                    "SELECT action, user_name, before ->> 'target', after ->> 'target', (after ->> 'version')::int "
                    "FROM audit_log WHERE entity = 'plan_target' AND entity_id = :i ORDER BY id"
                ),
                {"i": tid},
            )
        ).all()
    # the audit's image of a target is the shared row_json: numeric(14, 4) as its exact text, the version it reached
    assert audited == [
        ("set_plan_target", "t-officer", None, "10.0000", version),
        ("set_plan_target", "t-planner", "10.0000", "12.0000", version + 1),
        ("delete_plan_target", "t-officer", "12.0000", None, None),
    ]


async def test_partner_sees_its_project_outcomes_suppressed(area, targets_set, settings):  # type: ignore[no-untyped-def]
    """A partner sees its projects' targets and its paired county's, actuals null below k households, nothing personal."""
    run, eng, ids = area
    partner = Viewer(None, "t-partner", Role.PARTNER, (), ids["partner"], ("513432",))
    k = settings.privacy.min_cell_households
    q = """query($asOf: Date) { planTargets { id subject metric projectId progress(asOf: $asOf) { actual suppressed } }
      cooperationPartners { nodes { projects { id targets { metric progress(asOf: $asOf) { actual suppressed } } } } } }"""
    admin = {t["id"]: t for t in (await run(TARGETS, asOf=D.isoformat())).data["planTargets"]}
    r = await run(q, partner, asOf=D.isoformat())
    assert r.errors is None, r.errors
    seen = r.data["planTargets"]
    assert seen and all(t["subject"] == "PROJECT" or admin[t["id"]]["area"] == {"code": "513432"} for t in seen)
    assert {t["id"] for t in seen} == {
        i
        for i, t in admin.items()
        if t["projectId"] in (str(ids["project"]), str(ids["site project"])) or t["area"] == {"code": "513432"}
    }
    shown_any = False
    for t in seen:
        value, households = await _raw_actual(eng, admin[t["id"]], D, ids, "513432")
        if households < k:
            assert t["progress"] == {"actual": None, "suppressed": True}
        else:
            assert t["progress"] == {"actual": pytest.approx(value), "suppressed": False}
            shown_any = True
    assert shown_any
    projects = r.data["cooperationPartners"]["nodes"][0]["projects"]
    assert {p["id"] for p in projects} == {str(ids["project"]), str(ids["site project"])}
    assert all(t["progress"]["suppressed"] or t["progress"]["actual"] is not None for p in projects for t in p["targets"])
    refused = await run("{ households { totalCount } }", partner)
    assert [e.extensions["code"] for e in refused.errors] == ["FORBIDDEN"]


def _add_months(d: dt.date, months: int) -> dt.date:
    """``d`` + ``months`` calendar months, the day clamped to the month's last (as PostgreSQL's interval arithmetic)."""
    y, mo = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, mo + 1
    last = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(year, month, min(d.day, last))


async def _raw_trainees(eng: Any, on: dt.date, years: int = 3, interval: int = 90) -> dict[int, dict[str, Any]]:
    """Every training record started by ``on`` with placement and follow-up state, from raw rows, in Python."""
    async with eng.connect() as c:
        recs = (
            (await c.execute(text("SELECT * FROM training_record WHERE started_on <= :d ORDER BY id"), {"d": on}))
            .mappings()
            .all()
        )
        jobs = (await c.execute(text("SELECT member_id, start_on, end_on, stable FROM employment"))).all()
        visits = (await c.execute(text("SELECT training_id, visited_on FROM training_follow_up"))).all()
    out = {}
    for r in recs:
        mine = [j for j in jobs if j.member_id == r["member_id"]]
        starts = [j.start_on for j in mine if r["started_on"] <= j.start_on <= on]
        placed = min(starts) if starts else None
        employed = any(j.start_on <= on and (j.end_on is None or j.end_on >= on) for j in mine)
        seen = [v.visited_on for v in visits if v.training_id == r["id"] and v.visited_on <= on]
        last = max(seen) if seen else None
        until = _add_months(placed, 12 * years) if placed else None
        due = (last or placed) + dt.timedelta(days=interval) if placed and until and on < until else None
        out[r["id"]] = {**r, "placed": placed, "employed": employed, "last": last, "until": until, "due": due, "jobs": mine}
    return out


TRAINEES = """query($status: TraineeStatus, $asOf: Date, $first: Int, $after: String, $area: String) {
  trainees(status: $status, asOf: $asOf, first: $first, after: $after, areaCode: $area) {
    totalCount pageInfo { hasNextPage endCursor }
    nodes { id placedOn employedOnDate lastVisitOn followUpUntil nextVisitDue member { id } } } }"""


async def test_trainee_lists_recomputed_from_raw_rows(area):  # type: ignore[no-untyped-def]
    run, eng, _ = area
    raw = await _raw_trainees(eng, D)
    expected = {
        None: list(raw),
        "NOT_EMPLOYED": [i for i, t in raw.items() if t["completed"] and t["ended_on"] <= D and not t["employed"]],
        "FOLLOW_UP_DUE": [i for i, t in raw.items() if t["due"] and D <= t["due"] <= D + dt.timedelta(days=14)],
        "FOLLOW_UP_OVERDUE": [i for i, t in raw.items() if t["due"] and t["due"] < D],
    }
    assert all(expected[s] for s in ("NOT_EMPLOYED", "FOLLOW_UP_OVERDUE"))  # the generated area has some of each
    for status, ids_ in expected.items():
        got, after = [], None
        while True:  # paged by 7, as every list: pageInfo's cursor, totalCount over all pages
            page = await run(TRAINEES, status=status, asOf=D.isoformat(), first=7, after=after)
            assert page.errors is None, page.errors
            got += page.data["trainees"]["nodes"]
            assert page.data["trainees"]["totalCount"] == len(ids_)
            info = page.data["trainees"]["pageInfo"]
            if not info["hasNextPage"]:
                break
            after = info["endCursor"]
        assert [int(t["id"]) for t in got] == ids_, status
        for t in got:
            r = raw[int(t["id"])]
            assert t["placedOn"] == (r["placed"].isoformat() if r["placed"] else None)
            assert t["employedOnDate"] == r["employed"]
            assert t["nextVisitDue"] == (r["due"].isoformat() if r["due"] else None)
            assert t["followUpUntil"] == (r["until"].isoformat() if r["until"] else None)
            assert int(t["member"]["id"]) == r["member_id"]


async def test_training_outcome_shares_recomputed(area):  # type: ignore[no-untyped-def]
    run, eng, _ = area
    for on in (D, dt.date(2023, 3, 1)):
        raw = await _raw_trainees(eng, on)
        r = await run(
            "query($asOf: Date) { trainingOutcomes(asOf: $asOf) { monthsAfter trainees stablyEmployed share } }",
            asOf=on.isoformat(),
        )
        assert r.errors is None, r.errors
        want = []
        for months in (6, 12, 24, 36):
            done = [t for t in raw.values() if t["completed"] and _add_months(t["ended_on"], months) <= on]
            stable = [
                t
                for t in done
                if any(
                    j.stable
                    and j.start_on <= _add_months(t["ended_on"], months)
                    and (j.end_on is None or j.end_on >= _add_months(t["ended_on"], months))
                    for j in t["jobs"]
                )
            ]
            want.append(
                {
                    "monthsAfter": months,
                    "trainees": len(done),
                    "stablyEmployed": len(stable),
                    "share": len(stable) / len(done) if done else None,
                }
            )
        assert r.data["trainingOutcomes"] == want
    assert want[0]["trainees"] > 0


async def test_training_writes_and_access(area):  # type: ignore[no-untyped-def]
    run, eng, ids = area
    async with eng.connect() as c:
        first_member = text(
            "SELECT m.id FROM member m JOIN household h ON h.id = m.household_id WHERE h.admin_code LIKE :p ORDER BY m.id LIMIT 1"
        )
        w_member = await c.scalar(first_member, {"p": "513431%"})
        x_member = await c.scalar(first_member, {"p": "513432%"})
    rec = """mutation($i: RecordTrainingInput!) { recordTraining(input: $i) { id course completed placedOn provider { id } } }"""
    officer_w = Viewer(None, "t-officer-w", Role.COUNTY_OFFICER, ("513431",))
    good = {
        "memberId": str(w_member),
        "course": "电工",
        "providerId": str(ids["workshop open"]),
        "startedOn": "2024-03-01",
        "endedOn": "2024-04-30",
        "completed": True,
        "certificate": "初级电工证",
    }
    made = await run(rec, officer_w, i=good)
    assert made.errors is None, made.errors
    assert made.data["recordTraining"]["completed"] and made.data["recordTraining"]["provider"] == {
        "id": str(ids["workshop open"])
    }
    outside = await run(rec, officer_w, i={**good, "memberId": str(x_member)})
    assert [e.extensions["code"] for e in outside.errors] == ["FORBIDDEN"]
    for viewer in (Viewer(None, "t-planner", Role.PLANNER), PARTNER):
        refused = await run(rec, viewer, i=good)
        assert [e.extensions["code"] for e in refused.errors] == ["FORBIDDEN"]
    for bad, field in (
        ({"course": ""}, "course"),
        ({"endedOn": "2024-02-01"}, "endedOn"),
        ({"endedOn": None}, "endedOn"),
        ({"startedOn": "2099-01-01", "endedOn": None, "completed": False}, "startedOn"),
        ({"providerId": None, "providerName": None}, "providerName"),
    ):
        r = await run(rec, i={**good, **bad})
        assert [e.extensions for e in r.errors] == [{"code": "BAD_USER_INPUT", "field": field}], bad
    visit = """mutation($i: RecordTrainingFollowUpInput!) { recordTrainingFollowUp(input: $i) { id lastVisitOn } }"""
    tid = made.data["recordTraining"]["id"]
    v = await run(visit, officer_w, i={"trainingId": tid, "visitedOn": "2024-06-01"})
    assert v.errors is None and v.data["recordTrainingFollowUp"]["lastVisitOn"] == "2024-06-01"
    early = await run(visit, i={"trainingId": tid, "visitedOn": "2024-01-01"})
    assert [e.extensions for e in early.errors] == [{"code": "BAD_USER_INPUT", "field": "visitedOn"}]
    hidden = await run(
        visit, Viewer(None, "t-officer", Role.COUNTY_OFFICER, ("513432",)), i={"trainingId": tid, "visitedOn": "2024-06-02"}
    )
    assert [e.extensions["code"] for e in hidden.errors] == ["NOT_FOUND"]
    # reads: officers their areas' trainees, partners refused
    mine = await run(TRAINEES, officer_w, first=500)
    async with eng.connect() as c:
        w_count = await c.scalar(
            text(
                "SELECT count(*) FROM training_record r JOIN household h ON h.id = r.household_id "
                "WHERE h.admin_code LIKE '513431%'"
            )
        )
    assert len(mine.data["trainees"]["nodes"]) == mine.data["trainees"]["totalCount"] == w_count
    # a cursor of another list, and a page above the settings' maximum, are refused naming the argument
    for bad in ({"after": "bm90LWEtY3Vyc29y"}, {"first": 501}):
        refused = await run(TRAINEES, officer_w, **{"first": 5, **bad})
        assert [e.extensions["field"] for e in refused.errors] == list(bad), bad
    for q in (TRAINEES, "{ trainingOutcomes { share } }"):
        p = await run(q, PARTNER, first=5) if "$first" in q else await run(q, PARTNER)
        assert [e.extensions["code"] for e in p.errors] == ["FORBIDDEN"]
    async with eng.connect() as c:
        audited = (
            await c.execute(
                text(
                    "SELECT action, user_name FROM audit_log"
                    " WHERE entity IN ('training_record', 'training_follow_up') ORDER BY id"
                )
            )
        ).all()
    assert audited == [("record_training", "t-officer-w"), ("record_training_follow_up", "t-officer-w")]


async def test_concurrent_target_edits_one_wins(area):  # type: ignore[no-untyped-def]
    """Four planners replace one target from the same version at once (claim_version): exactly one is written, the
    others answer CONFLICT; the target holds the winner's value at version + 1 and the audit one row, from the old value."""
    import asyncio

    run, eng, _ = area
    base = {"subject": "AREA", "areaCode": "513432100", "metric": "PERSONS_EMPLOYED", "year": 2026, "target": "5"}
    planner = Viewer(None, "t-planner", Role.PLANNER)
    made = await run(SET, planner, input=base)
    assert made.errors is None, made.errors
    tid, version = made.data["setPlanTarget"]["id"], made.data["setPlanTarget"]["version"]
    answers = await asyncio.gather(
        *(run(SET, planner, input={**base, "target": str(20 + k), "version": version}) for k in range(4))
    )
    won = [a.data["setPlanTarget"] for a in answers if a.errors is None]
    lost = [e.extensions["code"] for a in answers if a.errors for e in a.errors]
    assert len(won) == 1 and lost == ["CONFLICT"] * 3, (won, lost)
    async with eng.connect() as c:
        row = (await c.execute(text("SELECT target::text, version FROM plan_target WHERE id = :i"), {"i": int(tid)})).one()
        audited = (
            await c.execute(
                text(
                    "SELECT before ->> 'target', after ->> 'target', (after ->> 'version')::int FROM audit_log "
                    "WHERE entity = 'plan_target' AND entity_id = :i ORDER BY id"
                ),
                {"i": str(tid)},
            )
        ).all()
    assert Decimal(row[0]) == Decimal(won[0]["target"]) and row[1] == version + 1 == won[0]["version"]
    assert [(b, Decimal(a), v) for b, a, v in audited[1:]] == [("5.0000", Decimal(won[0]["target"]), version + 1)]
