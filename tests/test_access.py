"""Who sees what (issue #5), over HTTP with real tokens against the demo data.

Users (tests/conftest.py ``users``): t-admin, t-planner, t-officer (Xide 513432, where every demo
household lives), t-officer-zhaojue (513431, none of them), t-partner (the demo partner, paired
with Xide). Expected values come from SQL over the raw tables, run as the database owner.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import jwt
import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from anju.app import create_app
from anju.auth import issue_token, keys
from tests.digest import digest

ROLES = ("t-admin", "t-planner", "t-officer", "t-officer-zhaojue", "t-partner")
F = "FORBIDDEN"


@pytest.fixture(scope="module")
def app(settings, users):  # type: ignore[no-untyped-def]
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
async def truth(engine):  # type: ignore[no-untyped-def]
    """Independent expectations, by SQL over the raw tables (owner rights, no row-level security)."""
    async with engine.connect() as c:
        one = (
            (
                await c.execute(
                    text(
                        "SELECT (SELECT count(*) FROM household) AS households, "
                        " (SELECT count(*) FROM facility) AS facilities, "
                        " (SELECT count(*) FROM facility WHERE admin_code LIKE '513432%') AS xide_facilities, "
                        " (SELECT count(*) FROM relocation_site) AS sites, "
                        " (SELECT count(*) FROM admin_area WHERE geom IS NOT NULL) AS areas_with_geometry, "
                        " (SELECT min(id) FROM household) AS household_id, "
                        " (SELECT id FROM relocation_site WHERE name = '彝欣社区') AS yixin, "
                        " (SELECT min(id) FROM facility WHERE admin_code NOT LIKE '513432%') AS outside_facility, "
                        " (SELECT min(id) FROM facility WHERE admin_code LIKE '513432%') AS xide_facility, "
                        " (SELECT id FROM cooperation_partner ORDER BY id LIMIT 1) AS partner_id, "
                        # API.md's definitions over the raw member/employment/income rows (not the kept tables)
                        " (SELECT count(*) FROM household h WHERE EXISTS (SELECT 1 FROM member m WHERE m.household_id = h.id "
                        "   AND m.labor_force) AND NOT EXISTS (SELECT 1 FROM employment e JOIN member m ON m.id = e.member_id "
                        "   WHERE m.household_id = h.id AND e.start_on <= DATE '2024-04-13' "
                        "   AND (e.end_on IS NULL OR e.end_on >= DATE '2024-04-13'))) AS zero_employment, "
                        " (SELECT count(*) FROM household h JOIN household_income i ON i.household_id = h.id AND i.year = 2024 "
                        "   LEFT JOIN household_income p ON p.household_id = h.id AND p.year = 2023 "
                        "   CROSS JOIN LATERAL (SELECT count(*) AS n FROM member m WHERE m.household_id = h.id) s "
                        "   WHERE s.n > 0 AND (i.net_income / s.n < 10000 OR i.net_income / s.n < p.net_income / s.n)) AS at_risk"
                    )
                )
            )
            .mappings()
            .one()
        )
        xide_facility_ids = set((await c.execute(text("SELECT id FROM facility WHERE admin_code LIKE '513432%'"))).scalars())
        all_facility_ids = set((await c.execute(text("SELECT id FROM facility"))).scalars())
        codes = set((await c.execute(text("SELECT code FROM household"))).scalars())
        names = set((await c.execute(text("SELECT name FROM member"))).scalars())
        first_members = list(
            (
                await c.execute(text("SELECT name FROM member WHERE household_id = (SELECT min(id) FROM household) ORDER BY id"))
            ).scalars()
        )
    return {
        **one,
        "xide_facility_ids": xide_facility_ids,
        "all_facility_ids": all_facility_ids,
        "codes": codes,
        "names": names,
        "first_members": first_members,
    }


def post(app: TestClient, user: str | None, users: dict[str, str], query: str, **variables: Any) -> Any:
    headers = {"Authorization": f"Bearer {users[user]}"} if user else {}
    r = app.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    return r


def code_of(body: dict[str, Any]) -> str | None:
    errors = body.get("errors") or []
    return errors[0]["extensions"]["code"] if errors else None


def strings(value: Any) -> list[str]:
    """Every string (and number as text) anywhere in a JSON value."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return [str(value)] if value is not None else []


# --------------------------------------------------------------------------- authentication


def test_no_or_bad_tokens_answer_401(app, settings, users):  # type: ignore[no-untyped-def]
    q = {"query": '{ adminArea(code: "513432") { name } }'}
    k = keys(settings)
    now = dt.datetime.now(dt.UTC)
    good = {"sub": "t-admin", "iat": now, "exp": now + dt.timedelta(hours=1), "iss": "anju", "aud": "anju"}
    bad = {
        "missing": None,
        "not bearer": f"Basic {users['t-admin']}",
        "malformed": "Bearer not.a.token",
        "wrong signature": "Bearer " + jwt.encode(good, "another secret of 32 bytes or more....", algorithm="HS256"),
        "expired": "Bearer " + issue_token(settings, "t-admin", now=now - dt.timedelta(hours=30), ttl_hours=1),
        "wrong audience": "Bearer " + jwt.encode({**good, "aud": "else"}, k.verify_key, algorithm="HS256"),
        "no expiry": "Bearer " + jwt.encode({k_: v for k_, v in good.items() if k_ != "exp"}, k.verify_key, algorithm="HS256"),
        "alg none": "Bearer " + jwt.encode(good, None, algorithm="none"),
        "unknown user": "Bearer " + issue_token(settings, "nobody-here"),
    }
    for why, header in bad.items():
        r = app.post("/graphql", json=q, headers={"Authorization": header} if header else {})
        assert r.status_code == 401, why
        assert r.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", why
        assert r.headers["www-authenticate"].startswith("Bearer"), why
        assert "data" not in r.json(), why
    r = app.get("/tiles/relocation_sites/0/0/0.mvt")
    assert r.status_code == 401 and r.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    # open: health, and the GraphiQL page (it runs nothing)
    assert app.get("/healthz").status_code == 200
    assert app.get("/graphql", headers={"accept": "text/html"}).status_code == 200


async def test_disabled_user_is_refused_at_once(app, users, engine):  # type: ignore[no-untyped-def]
    q = "{ me { name role } }"
    assert post(app, "t-planner", users, q).json()["data"]["me"] == {"name": "t-planner", "role": "PLANNER"}
    async with engine.begin() as c:
        await c.execute(text("UPDATE app_user SET disabled = true WHERE name = 't-planner'"))
    try:
        r = post(app, "t-planner", users, q)
        assert r.status_code == 401 and code_of(r.json()) == "UNAUTHENTICATED"
    finally:
        async with engine.begin() as c:
            await c.execute(text("UPDATE app_user SET disabled = false WHERE name = 't-planner'"))


# --------------------------------------------------------------------------- the matrix


def _entries(t: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every root query field (plus nested household fields and each map layer): query, variables."""
    hid, yixin = str(t["household_id"]), str(t["yixin"])
    point = {"type": "Point", "coordinates": [102.41, 28.31]}
    fc = "query($l: MapLayer!) { featureCollection(layer: $l, limit: 5000) }"
    return {
        "adminArea": ('{ adminArea(code: "513432") { name } }', {}),
        "adminAreas": ("{ adminAreas(level: COUNTY) { totalCount } }", {}),
        "relocationSite": ("query($id: ID!) { relocationSite(id: $id) { name householdCount } }", {"id": yixin}),
        "relocationSites": ("{ relocationSites { totalCount } }", {}),
        "site.households": (
            "query($id: ID!) { relocationSite(id: $id) { households(first: 3) { totalCount nodes { code } } } }",
            {"id": yixin},
        ),
        "facility.outside": ("query($id: ID!) { facility(id: $id) { name } }", {"id": str(t["outside_facility"])}),
        "facilities": ("{ facilities(first: 100) { totalCount nodes { id } } }", {}),
        "household": (
            "query($id: ID!) { household(id: $id) { code members { name phone idNumberLast4 } "
            'employments(asOf: "2024-04-13") { channel } incomeLinkages { amount } '
            "linkedIncome(year: 2024) { total } netIncome(year: 2024) } }",
            {"id": hid},
        ),
        "households": ("{ households(first: 3) { totalCount nodes { code } } }", {}),
        "zeroEmploymentHouseholds": ('{ zeroEmploymentHouseholds(asOf: "2024-04-13") { totalCount } }', {}),
        "householdsAtRisk": ("{ householdsAtRisk(year: 2024) { totalCount } }", {}),
        "householdsBeyond": ("{ householdsBeyond(distanceMeters: 1000, ofKinds: [SCHOOL]) { totalCount } }", {}),
        "nearestFacilities": ("query($p: GeoJSON!) { nearestFacilities(point: $p, k: 20) { facility { id } } }", {"p": point}),
        "layer.RELOCATION_SITES": (fc, {"l": "RELOCATION_SITES"}),
        "layer.FACILITIES": (fc, {"l": "FACILITIES"}),
        "layer.HOUSEHOLDS": (fc, {"l": "HOUSEHOLDS"}),
        "layer.ADMIN_AREAS": (fc, {"l": "ADMIN_AREAS"}),
        "coverage.county": (
            '{ adminArea(code: "513432") { employmentCoverage(asOf: "2024-04-13") { households '
            "suppressed } incomeLinkageSummary(year: 2024) { householdsLinked } } }",
            {},
        ),
        "coverage.prefecture": ('{ adminArea(code: "513400") { employmentCoverage(asOf: "2024-04-13") { households } } }', {}),
        "coverage.site": (
            'query($id: ID!) { relocationSite(id: $id) { employmentCoverage(asOf: "2024-04-13") { households } } }',
            {"id": yixin},
        ),
        "me": ("{ me { name role areaCodes partner { name } } }", {}),
        "cooperationPartners": ("{ cooperationPartners { totalCount } }", {}),
        "cooperationPartner": (
            "query($id: ID!) { cooperationPartner(id: $id) { name pairedCounties { code } fundsByYear { year funds } } }",
            {"id": str(t["partner_id"])},
        ),
        "auditLog": ("{ auditLog(first: 1) { totalCount } }", {}),
    }


def _expected(t: dict[str, Any], user: str) -> dict[str, Any]:
    """What each entry point answers for ``user``: FORBIDDEN, or a function of the data that must hold."""
    all_hh = t["households"]
    admin_like = user in ("t-admin", "t-planner", "t-officer")  # the officer's Xide holds every demo household
    hh = all_hh if admin_like else 0
    partner = user == "t-partner"
    masked = [n[0] + "*" * (len(n) - 1) for n in t["first_members"]]  # computed here, not by the SQL masks
    return {
        "adminArea": lambda d: d["adminArea"]["name"] == "喜德县",
        "adminAreas": lambda d: d["adminAreas"]["totalCount"] == 17,
        "relocationSite": lambda d: (
            d["relocationSite"] == {"name": "彝欣社区", "householdCount": None if partner else (1447 if admin_like else 0)}
        ),
        "relocationSites": lambda d: d["relocationSites"]["totalCount"] == t["sites"],
        "site.households": F
        if partner
        else (lambda d: d["relocationSite"]["households"]["totalCount"] == (1447 if admin_like else 0)),
        "facility.outside": (lambda d: d["facility"] is None) if partner else (lambda d: d["facility"] is not None),
        "facilities": (lambda d: {int(x["id"]) for x in d["facilities"]["nodes"]} == t["xide_facility_ids"])
        if partner
        else (lambda d: d["facilities"]["totalCount"] == t["facilities"]),
        "household": F
        if partner
        else (
            (lambda d: d["household"] is None)
            if not admin_like
            else (
                lambda d: (
                    [x["name"] for x in d["household"]["members"]] == (masked if user == "t-planner" else t["first_members"])
                    and all(x["idNumberLast4"] is None for x in d["household"]["members"])
                )
            )
        ),
        "households": F if partner else (lambda d: d["households"]["totalCount"] == hh),
        "zeroEmploymentHouseholds": F
        if partner
        else (lambda d: d["zeroEmploymentHouseholds"]["totalCount"] == (t["zero_employment"] if admin_like else 0)),
        "householdsAtRisk": F
        if partner
        else (lambda d: d["householdsAtRisk"]["totalCount"] == (t["at_risk"] if admin_like else 0)),
        "householdsBeyond": F if partner else (lambda d: d["householdsBeyond"]["totalCount"] == hh),
        "nearestFacilities": (lambda d: {int(x["facility"]["id"]) for x in d["nearestFacilities"]} == t["xide_facility_ids"])
        if partner
        else (lambda d: len(d["nearestFacilities"]) == t["facilities"]),
        "layer.RELOCATION_SITES": lambda d: (
            [f["properties"]["households"] for f in d["featureCollection"]["features"]]
            == [None if partner else (1447 if admin_like else 0)]
        ),
        "layer.FACILITIES": lambda d: (
            {f["id"] for f in d["featureCollection"]["features"]}
            == (t["xide_facility_ids"] if partner else t["all_facility_ids"])
        ),
        "layer.HOUSEHOLDS": F if partner else (lambda d: len(d["featureCollection"]["features"]) == hh),
        "layer.ADMIN_AREAS": lambda d: len(d["featureCollection"]["features"]) == t["areas_with_geometry"],
        "coverage.county": lambda d: (
            d["adminArea"]["employmentCoverage"] == {"households": hh or (all_hh if partner else 0), "suppressed": False}
            and (d["adminArea"]["incomeLinkageSummary"]["householdsLinked"] > 0) == (admin_like or partner)
        ),
        "coverage.prefecture": F if partner else (lambda d: d["adminArea"]["employmentCoverage"]["households"] == hh),
        "coverage.site": F
        if partner
        else (lambda d: d["relocationSite"]["employmentCoverage"]["households"] == (1447 if admin_like else 0)),
        "me": lambda d: d["me"]["name"] == user and (d["me"]["partner"] is not None) == partner,
        "cooperationPartners": (lambda d: d["cooperationPartners"]["totalCount"] == 1) if user in ("t-admin", "t-partner") else F,
        "cooperationPartner": (lambda d: d["cooperationPartner"]["pairedCounties"] == [{"code": "513432"}])
        if user in ("t-admin", "t-partner")
        else F,
        # the audit rows counted in SQL just before the request (other tests of the session add some)
        "auditLog": (lambda d: d["auditLog"]["totalCount"] == t["audit_rows"]) if user == "t-admin" else F,
    }


def _audit_row_count(settings: Any) -> int:
    """audit_log rows, counted over a connection of its own (this test is synchronous)."""
    from sqlalchemy.ext.asyncio import create_async_engine

    async def count() -> int:
        eng = create_async_engine(settings.sqlalchemy_url())
        try:
            async with eng.connect() as c:
                return int(await c.scalar(text("SELECT count(*) FROM audit_log")))
        finally:
            await eng.dispose()

    return asyncio.run(count())


@pytest.mark.parametrize("user", ROLES)
def test_every_entry_point_for_every_role(app, users, truth, user, settings):  # type: ignore[no-untyped-def]
    entries, expected = _entries(truth), _expected({**truth, "audit_rows": _audit_row_count(settings)}, user)
    assert entries.keys() == expected.keys()
    for name, (query, variables) in entries.items():
        body = post(app, user, users, query, **variables).json()
        want = expected[name]
        if want == F:
            assert code_of(body) == F, (user, name, body)
            assert body["errors"][0]["message"] and "Traceback" not in json.dumps(body)
        else:
            assert code_of(body) is None, (user, name, body)
            assert want(body["data"]), (user, name, json.dumps(body, ensure_ascii=False)[:600])
        if user == "t-partner":  # no household code or member name anywhere in what a partner gets
            leaked = set(strings(body)) & (truth["codes"] | truth["names"])
            assert not leaked, (name, sorted(leaked)[:3])


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    import math

    n = 2**z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


@pytest.mark.parametrize("user", ROLES)
async def test_tiles_for_every_role(app, users, engine, truth, user):  # type: ignore[no-untyped-def]
    import mapbox_vector_tile

    async with engine.connect() as c:
        lon, lat = (
            await c.execute(text("SELECT ST_X(location), ST_Y(location) FROM relocation_site WHERE name = '彝欣社区'"))
        ).one()
    x, y = _tile_of(lon, lat, 12)  # a z12 tile around Yixin (unclustered): households, facilities of Xide
    headers = {"Authorization": f"Bearer {users[user]}"}
    got = {}
    for layer in ("relocation_sites", "facilities", "households", "admin_areas"):
        r = app.get(f"/tiles/{layer}/12/{x}/{y}.mvt", headers=headers)
        if r.status_code == 403:
            got[layer] = F
            assert r.json()["errors"][0]["extensions"]["code"] == F
            continue
        assert r.status_code in (200, 204), (layer, r.status_code)
        assert "private" in r.headers["cache-control"] and "Authorization" in r.headers["vary"].split(", ")
        decoded = mapbox_vector_tile.decode(r.content) if r.status_code == 200 else {}
        got[layer] = {f["id"] for f in decoded.get(layer, {}).get("features", [])}
        if user == "t-partner":
            assert not set(strings(decoded)) & (truth["codes"] | truth["names"])
    if user == "t-partner":
        assert got["households"] == F
        assert got["facilities"] <= truth["xide_facility_ids"] and got["facilities"]
    elif user == "t-officer-zhaojue":
        assert got["households"] == set()
    else:
        assert len(got["households"]) > 100
    assert len(got["relocation_sites"]) == 1


def test_partner_sees_suppressed_aggregates_of_paired_counties_only(app, users):  # type: ignore[no-untyped-def]
    q = (
        '{ me { partner { name pairedCounties { code employmentCoverage(asOf: "2024-04-13") { households '
        "householdsWithLaborForce householdsCovered zeroEmploymentHouseholds byChannel { channel count } suppressed } "
        "incomeLinkageSummary(year: 2024) { householdsLinked total byMechanism { mechanism amount households } "
        "suppressed } } projects(year: 2023) { name funds householdsBenefited selfRaisedShare } "
        "fundsByYear { year funds projects householdsBenefited } } } }"
    )
    partner = post(app, "t-partner", users, q).json()
    admin = post(
        app,
        "t-admin",
        users,
        '{ adminArea(code: "513432") { employmentCoverage(asOf: "2024-04-13") { '
        "households householdsWithLaborForce householdsCovered zeroEmploymentHouseholds byChannel { channel "
        "count } } incomeLinkageSummary(year: 2024) { householdsLinked total byMechanism { mechanism amount "
        "households } } } }",
    ).json()["data"]["adminArea"]
    p = partner["data"]["me"]["partner"]
    assert p["name"].startswith("[fictional]")
    (county,) = p["pairedCounties"]
    cov = county["employmentCoverage"]
    # Xide holds 1,573 households: every cell of 5+ households is shown exactly as the admin sees it.
    for key in ("households", "householdsWithLaborForce", "householdsCovered"):
        assert cov[key] == admin["employmentCoverage"][key]
    zero = admin["employmentCoverage"]["zeroEmploymentHouseholds"]
    assert cov["zeroEmploymentHouseholds"] == (zero if zero >= 5 else None)
    summary = county["incomeLinkageSummary"]
    assert summary["householdsLinked"] == admin["incomeLinkageSummary"]["householdsLinked"]
    full = {x["mechanism"]: x for x in admin["incomeLinkageSummary"]["byMechanism"]}
    shown = {x["mechanism"]: x for x in summary["byMechanism"]}
    assert all(full[m_] == x and x["households"] >= 5 for m_, x in shown.items())  # shown cells: exact, >= k
    left_out = [x["households"] for m_, x in full.items() if m_ not in shown]
    assert all(full[m_]["households"] >= 5 for m_ in shown) and (not left_out or sum(left_out) >= 5)
    assert summary["suppressed"] == bool(left_out)
    # the report's courtyard renovation: 202 households, 70 % self-raised, 30 % co-funded (1,090,800 yuan estimate)
    assert p["projects"] == [
        {"name": p["projects"][0]["name"], "funds": "1090800.00", "householdsBenefited": 202, "selfRaisedShare": "0.700"}
    ]
    assert p["fundsByYear"] == [{"year": 2023, "funds": "1090800.00", "projects": 1, "householdsBenefited": 202}]
    # a township of Xide: could be differenced against the county → refused
    r = post(app, "t-partner", users, '{ adminArea(code: "513432100") { employmentCoverage { households } } }').json()
    assert code_of(r) == F


# --------------------------------------------------------------------------- writes


def _household(app: TestClient, users: dict[str, str], hid: int) -> dict[str, Any]:
    r = post(
        app, "t-admin", users, "query($id: ID!) { household(id: $id) { version netIncome(year: 2012) } }", id=str(hid)
    ).json()
    return r["data"]["household"]  # type: ignore[no-any-return]


RECORD_INCOME = (
    "mutation($id: ID!, $v: Int!) { recordHouseholdIncome(input: {householdId: $id, version: $v, "
    'year: 2012, netIncome: "12345.00"}) { household { version netIncome(year: 2012) } } }'
)


async def _audit_rows(engine: Any, entity_id: str) -> list[Any]:
    async with engine.connect() as c:
        return list(
            (
                await c.execute(
                    text(
                        "SELECT user_name, role, action, before, after FROM audit_log "
                        "WHERE entity = 'household_income' AND entity_id = :e ORDER BY id"
                    ),
                    {"e": entity_id},
                )
            ).mappings()
        )


async def test_officer_write_outside_its_area_is_forbidden_and_writes_nothing(app, users, truth, engine):  # type: ignore[no-untyped-def]
    hid = truth["household_id"]
    before = _household(app, users, hid)
    for user in ("t-officer-zhaojue", "t-planner", "t-partner"):
        body = post(app, user, users, RECORD_INCOME, id=str(hid), v=before["version"]).json()
        assert code_of(body) == F, (user, body)
        assert body["data"] == {"recordHouseholdIncome": None}
    assert _household(app, users, hid) == before  # same version, no income of 2012
    assert await _audit_rows(engine, f"{hid}/2012") == []
    # a household id that does not exist at all is NOT_FOUND, not FORBIDDEN
    body = post(app, "t-officer-zhaojue", users, RECORD_INCOME, id="999999999", v=1).json()
    assert code_of(body) == "NOT_FOUND"
    # the officer of Xide may write it; the audit row names the officer and holds before/after
    body = post(app, "t-officer", users, RECORD_INCOME, id=str(hid), v=before["version"]).json()
    assert body["data"]["recordHouseholdIncome"]["household"] == {"version": before["version"] + 1, "netIncome": "12345.00"}
    rows = await _audit_rows(engine, f"{hid}/2012")
    assert [(r["user_name"], r["role"], r["action"]) for r in rows] == [("t-officer", "county_officer", "recordHouseholdIncome")]
    assert rows[0]["before"] is None and rows[0]["after"]["net_income"] == "12345.00"  # yuan, as text
    async with engine.begin() as c:  # leave the demo data as other tests expect it
        await c.execute(text("DELETE FROM household_income WHERE year = 2012"))


# --------------------------------------------------------------------------- personal data


async def test_id_numbers_are_kept_as_keyed_hash_and_names_masked(app, users, truth, engine, settings, caplog):  # type: ignore[no-untyped-def]
    import hashlib
    import hmac

    hid = truth["household_id"]
    version = _household(app, users, hid)["version"]
    id_number = "11010519491231002X"  # GB 11643's published example (check digit X)
    add = (
        'mutation($id: ID!, $v: Int!, $n: String!) { addMember(input: {householdId: $id, version: $v, name: "测试甲乙", '
        'gender: FEMALE, birthYear: 1990, relation: OTHER, laborForce: false, idNumber: $n, phone: "13812345678"}) '
        "{ member { id name phone idNumberLast4 } } }"
    )
    with caplog.at_level("DEBUG"):
        bad = post(app, "t-officer", users, add, id=str(hid), v=version, n="110105194912310021").json()
        assert code_of(bad) == "BAD_USER_INPUT" and "110105194912310021" not in json.dumps(bad)
        body = post(app, "t-officer", users, add, id=str(hid), v=version, n=id_number).json()
    member = body["data"]["addMember"]["member"]
    assert (member["name"], member["phone"], member["idNumberLast4"]) == ("测试甲乙", "13812345678", "002X")
    key = keys(settings).id_number_key
    async with engine.connect() as c:
        stored = (
            await c.execute(text("SELECT id_number_hash, id_number_last4 FROM member WHERE id = :i"), {"i": int(member["id"])})
        ).one()
        dump = json.dumps(
            [
                dict(r)
                for r in (
                    await c.execute(
                        text("SELECT * FROM audit_log WHERE entity = 'member' AND entity_id = :i"), {"i": member["id"]}
                    )
                ).mappings()
            ],
            default=str,
            ensure_ascii=False,
        )
    assert stored == (hmac.new(key, id_number.encode(), hashlib.sha256).hexdigest(), "002X")
    assert id_number not in dump and "13812345678" not in dump and "测试甲乙" not in dump
    assert "测***" in dump and "138****5678" in dump  # the audit log keeps the masks
    # the planner sees masks; nobody reads the ID number back
    q = "query($id: ID!) { household(id: $id) { members { id name phone idNumberLast4 } } }"
    seen = {
        u: next(x for x in post(app, u, users, q, id=str(hid)).json()["data"]["household"]["members"] if x["id"] == member["id"])
        for u in ("t-admin", "t-planner")
    }
    assert seen["t-planner"] == {"id": member["id"], "name": "测***", "phone": "138****5678", "idNumberLast4": None}
    assert seen["t-admin"]["name"] == "测试甲乙"
    # one person, one ID number: the same number for another member is a CONFLICT, nothing written
    version = _household(app, users, hid)["version"]
    again = post(app, "t-admin", users, add.replace("测试甲乙", "测试丙丁"), id=str(hid), v=version, n=id_number).json()
    assert code_of(again) == "CONFLICT" and again["errors"][0]["extensions"]["field"] == "idNumber"
    assert _household(app, users, hid)["version"] == version
    # a landline keeps its trunk 0
    upd = (
        'mutation($m: ID!, $v: Int!) { updateMember(input: {memberId: $m, version: $v, phone: "010-6512 3456"}) '
        "{ member { phone } } }"
    )
    body = post(app, "t-admin", users, upd, m=member["id"], v=version).json()
    assert body["data"]["updateMember"]["member"]["phone"] == "01065123456"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert id_number not in logged and "测试甲乙" not in logged and "13812345678" not in logged
    async with engine.begin() as c:  # leave the demo data as other tests expect it
        await c.execute(text("DELETE FROM member WHERE id = :i"), {"i": int(member["id"])})


# --------------------------------------------------------------------------- limits


async def test_deep_and_wide_queries_are_refused_before_any_sql(app, users, gql, count_statements):  # type: ignore[no-untyped-def]
    deep = '{ household(id: "1") { ' + "site { households(first: 1) { nodes { " * 10 + "id" + " } } }" * 10 + " } }"
    aliases = "{ " + " ".join(f'a{i}: adminArea(code: "513432") {{ name }}' for i in range(50)) + " }"
    roots = "{ " + " ".join(f"a{i}: me {{ name }}" for i in range(11)) + " }"
    costly = (
        "{ households(first: 500) { nodes { members { employments { facility { site { households(first: 500) "
        "{ nodes { id } } } } } } } } }"
    )
    for query, limit in ((deep, "maxDepth"), (aliases, "maxAliases"), (roots, "maxRootFields"), (costly, "maxCost")):
        body = post(app, "t-admin", users, query).json()
        assert code_of(body) == "QUERY_TOO_COMPLEX", (limit, body)
        assert body["errors"][0]["extensions"]["limit"] == limit and limit in body["errors"][0]["message"]
        with count_statements() as counter:  # refused before any resolver: no SQL at all
            r = await gql(query)
        assert r.errors[0].extensions["limit"] == limit and counter.statements == [] and counter.scope == []
    # and the next request is served as usual
    assert post(app, "t-admin", users, '{ adminArea(code: "513432") { name } }').json() == {
        "data": {"adminArea": {"name": "喜德县"}}
    }


def test_audit_log_is_for_admins_and_checks_its_arguments(app, users):  # type: ignore[no-untyped-def]
    for args in ('entity: "x\\u0000y"', 'entityId: "1\\u0000"'):
        body = post(app, "t-admin", users, f"{{ auditLog({args}) {{ totalCount }} }}").json()
        assert code_of(body) == "BAD_USER_INPUT", body


def test_token_lifetimes_are_bounded(settings) -> None:  # type: ignore[no-untyped-def]
    from anju.auth import AuthError, ConfigError, verify_token

    k = keys(settings)
    now = dt.datetime.now(dt.UTC)
    long_lived = jwt.encode(
        {"sub": "t-admin", "iat": now, "exp": now + dt.timedelta(days=3650), "iss": "anju", "aud": "anju"},
        k.verify_key,
        algorithm="HS256",
    )
    with pytest.raises(AuthError, match="lifetime"):
        verify_token(k, settings, f"Bearer {long_lived}")
    with pytest.raises(ConfigError, match="lifetime"):
        issue_token(settings, "t-admin", ttl_hours=24 * 3650)


def test_introspection_can_be_turned_off(settings, users):  # type: ignore[no-untyped-def]
    off = settings.model_copy(update={"introspection": False})
    with TestClient(create_app(off), headers={"Authorization": f"Bearer {users['t-admin']}"}) as c:
        body = c.post("/graphql", json={"query": "{ __schema { types { name } } }"}).json()
        assert code_of(body) == F and "introspection" in body["errors"][0]["message"]
        assert c.post("/graphql", json={"query": "{ me { role } }"}).json() == {"data": {"me": {"role": "ADMIN"}}}
        # nor do error messages suggest field names
        body = c.post("/graphql", json={"query": "{ househol { id } }"}).json()
        message = body["errors"][0]["message"]
        assert code_of(body) == "BAD_USER_INPUT" and "househol" in message and "Did you mean" not in message
        assert "'household'" not in message and "'households'" not in message


# --------------------------------------------------------------------------- the database enforces it


async def test_row_level_security_is_what_confines_scoped_viewers(sm, truth):  # type: ignore[no-untyped-def]
    """Raw SQL through a viewer's sessions, no resolver involved: what PostgreSQL lets each scope read."""
    from resolvers.access import AGGREGATES, RECORDS, Role, Viewer, scoped_sessionmaker

    tables = (
        "household",
        "member",
        "employment",
        "income_linkage",
        "household_income",
        "household_status",
        "relocation_site",
        "facility",
        "cooperation_partner",
    )
    pid = truth["partner_id"]
    partner = Viewer(None, "p", Role.PARTNER, partner_id=pid, paired_counties=("513432",))
    cases = {
        ("officer Xide", RECORDS): Viewer(None, "o", Role.COUNTY_OFFICER, area_codes=("513432",)),
        ("officer Zhaojue", RECORDS): Viewer(None, "z", Role.COUNTY_OFFICER, area_codes=("513431",)),
        ("partner", RECORDS): partner,
        ("partner", AGGREGATES): partner,
    }
    async with sm() as s:  # owner: every row
        full = {t: await s.scalar(text(f"SELECT count(*) FROM {t}")) for t in tables}
    for (label, mode), viewer in cases.items():
        async with scoped_sessionmaker(sm, viewer, mode)() as s:
            assert await s.scalar(text("SELECT current_user")) == ("anju_partner" if label == "partner" else "anju_officer")
            got = {t: await s.scalar(text(f"SELECT count(*) FROM {t}")) for t in tables}
            # a filter over hidden rows would be an oracle: it finds nothing either
            near = await s.scalar(
                text(
                    "SELECT count(*) FROM household WHERE ST_DWithin(geography(dwelling), "
                    "geography(ST_SetSRID(ST_MakePoint(102.41, 28.31), 4326)), 200000)"
                )
            )
        sees_households = label == "officer Xide" or mode == AGGREGATES  # every demo household is in Xide
        for t in tables[:6]:
            assert got[t] == (full[t] if sees_households else 0), (label, mode, t)
        assert near == (full["household"] if sees_households else 0), (label, mode)
        assert got["relocation_site"] == full["relocation_site"]
        assert got["facility"] == (truth["xide_facilities"] if label == "partner" else full["facility"])
        assert got["cooperation_partner"] == (1 if label == "partner" else 0)


def test_cost_counts_list_sizes_by_hand(schema) -> None:  # type: ignore[no-untyped-def]
    """The cost rule on documents whose cost is worked out by hand (schema/limits.py)."""
    from graphql import parse

    from schema.limits import operation_cost

    def cost(q: str, **variables: Any) -> tuple[int, int]:
        return operation_cost(schema._schema, parse(q), None, variables, 50, 500)

    # households 1 + 500 × (nodes 1 + id 1 + members 1 + 5 × name 1) = 1 + 500 × 8
    assert cost("{ households(first: 500) { nodes { id members { name } } } }") == (4001, 1)
    # first from a variable; a connection without first counts 50; two root fields
    assert cost("query($n: Int) { a: households(first: $n) { totalCount } b: households { totalCount } }", n=7) == (
        (1 + 7 * 1) + (1 + 50 * 1),
        2,
    )
    # a variable's default is what runs, and so is an argument's schema default (nearbyFacilities: 50);
    # a whole float for an Int variable counts as that int
    assert cost("query($n: Int = 500) { households(first: $n) { totalCount } }") == (1 + 500, 1)
    assert cost("query($n: Int) { households(first: $n) { totalCount } }", n=500.0) == (1 + 500, 1)
    assert cost('{ relocationSite(id: "1") { nearbyFacilities(radiusMeters: 10) { distanceMeters } } }') == (1 + (1 + 50 * 1), 1)
    # fragments count where they are spread; featureCollection adds its limit (default 5,000)
    assert cost(
        "fragment F on Household { id code } { households(first: 2) { nodes { ...F } } featureCollection(layer: FACILITIES) }"
    ) == (1 + 2 * (1 + 2) + 1 + 5000, 2)


async def test_every_mutation_for_every_role(app, users, truth, engine):  # type: ignore[no-untyped-def]
    """Each mutation as each role that may not make it: FORBIDDEN, and the database unchanged (a digest of
    every table a mutation may write, audit log included). The Zhaojue officer aims at Xide's records."""
    async with engine.connect() as c:
        ids = (
            (
                await c.execute(
                    text(
                        "SELECT h.id AS household, h.version, m.id AS member, "
                        " (SELECT min(l.id) FROM income_linkage l WHERE l.household_id = h.id) AS linkage, "
                        " (SELECT min(id) FROM relocation_site) AS site, (SELECT min(id) FROM facility) AS facility, "
                        " (SELECT min(e.id) FROM employment e WHERE e.end_on IS NULL) AS employment FROM household h "
                        "JOIN member m ON m.household_id = h.id WHERE h.id = (SELECT min(id) FROM household) "
                        "ORDER BY m.id LIMIT 1"
                    )
                )
            )
            .mappings()
            .one()
        )
    h, m_, e, v = str(ids["household"]), str(ids["member"]), str(ids["employment"]), ids["version"]
    site, fac, link = str(ids["site"]), str(ids["facility"]), str(ids["linkage"])
    point = '{type: "Point", coordinates: [102.41, 28.31]}'
    household_mutations = {
        "recordEmployment": f'recordEmployment(input: {{memberId: "{m_}", version: {v}, channel: FLEXIBLE, '
        'startOn: "2024-01-01", stable: false}) { employment { id } }',
        "endEmployment": f'endEmployment(input: {{employmentId: "{e}", version: {v}, endOn: "2099-01-01"}}) '
        "{ employment { id } }",
        "recordIncomeLinkage": f'recordIncomeLinkage(input: {{householdId: "{h}", version: {v}, mechanism: OTHER, '
        'year: 2024, amount: "1.00"}) { incomeLinkage { id } }',
        "recordHouseholdIncome": f'recordHouseholdIncome(input: {{householdId: "{h}", version: {v}, year: 2025, '
        'netIncome: "1.00"}) { household { id } }',
        "setMonitoringStatus": f'setMonitoringStatus(input: {{householdId: "{h}", version: {v}}}) {{ household {{ id }} }}',
        "addMember": f'addMember(input: {{householdId: "{h}", version: {v}, name: "某某", gender: MALE, birthYear: 2000, '
        "relation: OTHER, laborForce: false}) { member { id } }",
        "updateMember": f'updateMember(input: {{memberId: "{m_}", version: {v}, name: "某某"}}) {{ member {{ id }} }}',
        "registerHousehold": 'registerHousehold(input: {code: "t-matrix-1", adminCode: "513432100004", '
        'povertyStatus: NON_POOR, members: [{name: "某某", gender: MALE, birthYear: 1990, relation: HEAD, laborForce: true}]}) '
        "{ household { id } }",
        "updateHousehold": f'updateHousehold(input: {{id: "{h}", version: {v}, povertyStatus: NON_POOR}}) '
        "{ household { id } }",
        "moveHousehold": f'moveHousehold(input: {{id: "{h}", version: {v}, movedOn: "2025-01-01", adminCode: "513432100004"}}) '
        "{ household { id } }",
        "memberLeaves": f'memberLeaves(input: {{memberId: "{m_}", version: {v}, leftOn: "2025-01-01", reason: MOVING_OUT}}) '
        "{ household { id } }",
        "correctEmployment": f'correctEmployment(input: {{id: "{e}", version: {v}, stable: false}}) {{ household {{ id }} }}',
        "deleteEmployment": f'deleteEmployment(input: {{id: "{e}", version: {v}}}) {{ household {{ id }} }}',
        "correctIncomeLinkage": f'correctIncomeLinkage(input: {{id: "{link}", version: {v}, amount: "2.00"}}) '
        "{ household { id } }",
        "deleteIncomeLinkage": f'deleteIncomeLinkage(input: {{id: "{link}", version: {v}}}) {{ household {{ id }} }}',
    }
    place_mutations = {
        "createRelocationSite": f'createRelocationSite(input: {{name: "x", kind: TOWN, adminCode: "513432", location: {point}}}) '
        "{ relocationSite { id } }",
        "updateRelocationSite": f'updateRelocationSite(input: {{id: "{site}", version: 1, name: "x"}}) '
        "{ relocationSite { id } }",
        "closeRelocationSite": f'closeRelocationSite(input: {{id: "{site}", version: 1, closedOn: "2025-01-01"}}) '
        "{ relocationSite { id } }",
        "createFacility": f'createFacility(input: {{name: "x", kind: SCHOOL, adminCode: "513432", location: {point}}}) '
        "{ facility { id } }",
        "updateFacility": f'updateFacility(input: {{id: "{fac}", version: 1, name: "x"}}) {{ facility {{ id }} }}',
        "closeFacility": f'closeFacility(input: {{id: "{fac}", version: 1, closedOn: "2025-01-01"}}) {{ facility {{ id }} }}',
    }
    admin_mutations = {
        "recordCooperationPartner": 'recordCooperationPartner(input: {name: "x", kind: ENTERPRISE}) '
        "{ cooperationPartner { id } }",
        "pairPartnerCounty": f'pairPartnerCounty(input: {{partnerId: "{truth["partner_id"]}", countyCode: "513431"}}) '
        "{ cooperationPartner { id } }",
        "unpairPartnerCounty": f'unpairPartnerCounty(input: {{partnerId: "{truth["partner_id"]}", countyCode: "513432"}}) '
        "{ cooperationPartner { id } }",
        "recordCooperationProject": f'recordCooperationProject(input: {{partnerId: "{truth["partner_id"]}", name: "x", '
        'countyCode: "513432", year: 2024, funds: "1.00"}) { cooperationProject { id } }',
    }

    before = await digest(engine)
    forbidden = {
        "t-planner": {**household_mutations, **admin_mutations, **place_mutations},
        "t-partner": {**household_mutations, **admin_mutations, **place_mutations},
        "t-officer": admin_mutations,
        "t-officer-zhaojue": {**household_mutations, **admin_mutations, **place_mutations},
    }
    for user, mutations in forbidden.items():
        for name, body in mutations.items():
            r = post(app, user, users, f"mutation {{ {body} }}").json()
            assert code_of(r) == F, (user, name, r)
            assert r["data"] == {name: None}, (user, name)
    assert await digest(engine) == before


async def test_row_json_and_database_names_refuse_identifiers_outside_their_allow_lists(sm):  # type: ignore[no-untyped-def]
    """Guards that stay under ``python -O``: a real exception, not an assert."""
    from anju.db import check_database_name
    from resolvers.access import row_json

    async with sm() as s:
        with pytest.raises(ValueError, match="not an audited table"):
            await row_json(s, "app_user", {"id": 1})
        with pytest.raises(ValueError, match="not columns of household"):
            await row_json(s, "household", {"id = 1 OR true --": 1})
        first = await s.scalar(text("SELECT min(id) FROM household"))
        row = await row_json(s, "household", {"id": first})
    assert row is not None and row["id"] == first and "dwelling" not in row
    assert check_database_name("anju_test_mut") == "anju_test_mut"
    for bad in ('x" WITH (FORCE); DROP DATABASE anju; --', "", "a" * 64, "база"):
        with pytest.raises(ValueError, match="database name"):
            check_database_name(bad)


async def test_row_json_is_the_row_without_hashes_and_geometries_masked_with_exact_decimals(sm):  # type: ignore[no-untyped-def]
    """``row_json_sql`` (built from the kept columns) against ``to_jsonb`` of the whole row written here: minus the ID
    hashes and geometries, a member's name and phone masked as masks.sql masks them, every numeric column as its text."""
    import json

    import sqlalchemy as sa

    import models as m
    from resolvers.access import AUDITED, LEFT_OUT, row_json_sql

    def canonical(row: dict[str, object]) -> str:
        return json.dumps(row, sort_keys=True, ensure_ascii=False)

    compared = []
    async with sm() as s:
        for table in sorted(AUDITED):
            numeric = (
                await s.scalars(
                    text("SELECT column_name FROM information_schema.columns WHERE table_name = :t AND data_type = 'numeric'"),
                    {"t": table},
                )
            ).all()
            reference = f"to_jsonb(t) - ARRAY{LEFT_OUT!r}::text[]"
            if table == "member":
                reference += " || jsonb_build_object('name', anju_mask_name(t.name), 'phone', anju_mask_phone(t.phone))"
            for col in numeric:
                reference += f" || jsonb_build_object('{col}', t.{col}::text)"
            expected = sorted(map(canonical, (await s.scalars(text(f"SELECT {reference} FROM {table} t"))).all()))  # noqa: S608
            t = m.Base.metadata.tables[table].alias("t")
            got = sorted(map(canonical, (await s.scalars(sa.select(row_json_sql(t, table)))).all()))
            assert got == expected, table
            if expected:
                compared.append(table)
    assert {"household", "member", "employment", "household_income", "relocation_site", "facility"} <= set(compared)
