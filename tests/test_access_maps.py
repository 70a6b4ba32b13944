"""Who sees what on the map routes (issue #12): the role × entry point matrix of tests/test_access.py for vector
tiles (catalog, TileJSON, single- and multi-layer tiles) and OGC API Features (landing, conformance, API, collections,
items, single features, queryables, filters). Same roles and rows as GraphQL: authentication once in the middleware,
the viewer's scoped transactions (row-level security) for every statement.

Expected values come from SQL over the raw tables, run as the database owner.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import mapbox_vector_tile
import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from anju.app import create_app

ROLES = ("t-admin", "t-planner", "t-officer", "t-officer-zhaojue", "t-partner", None)
F, U = "FORBIDDEN", "UNAUTHENTICATED"


@pytest.fixture(scope="module")
def app(settings, users):  # type: ignore[no-untyped-def]
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
async def truth(engine):  # type: ignore[no-untyped-def]
    async with engine.connect() as c:
        one = (
            (
                await c.execute(
                    text(
                        "SELECT (SELECT count(*) FROM household "
                        "   WHERE dwelling IS NOT NULL AND NOT ST_IsEmpty(dwelling)) AS households,"
                        " (SELECT min(id) FROM household) AS household_id,"
                        " (SELECT count(*) FROM household WHERE site_id = "
                        "   (SELECT id FROM relocation_site WHERE name = '彝欣社区')) AS yixin_households,"
                        " (SELECT ST_X(location) FROM relocation_site WHERE name = '彝欣社区') AS lon,"
                        " (SELECT ST_Y(location) FROM relocation_site WHERE name = '彝欣社区') AS lat,"
                        " (SELECT count(*) FROM admin_area WHERE geom IS NOT NULL) AS areas"
                    )
                )
            )
            .mappings()
            .one()
        )
        facilities = set((await c.execute(text("SELECT id FROM facility"))).scalars())
        xide = set((await c.execute(text("SELECT id FROM facility WHERE left(admin_code, 6) = '513432'"))).scalars())
        names = set((await c.execute(text("SELECT name FROM member"))).scalars())
        codes = set((await c.execute(text("SELECT code FROM household"))).scalars())
    return {**one, "facilities": facilities, "xide_facilities": xide, "personal": names | codes}


def _tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return [str(value)] if value is not None else []


def _entries(t: dict[str, Any]) -> dict[str, str]:
    x, y = _tile(t["lon"], t["lat"], 12)
    out = {
        "ogc landing": "/ogc",
        "ogc conformance": "/ogc/conformance",
        "ogc api": "/ogc/api",
        "ogc collections": "/ogc/collections",
        "tiles catalog": "/tiles",
        "multi-layer tile": f"/tiles/12/{x}/{y}.mvt",
        "household item": f"/ogc/collections/households/items/{t['household_id']}",
    }
    for layer in ("relocation_sites", "facilities", "households", "admin_areas"):
        out[f"tile {layer}"] = f"/tiles/{layer}/12/{x}/{y}.mvt"
        out[f"tilejson {layer}"] = f"/tiles/{layer}.json"
        out[f"collection {layer}"] = f"/ogc/collections/{layer}"
        out[f"items {layer}"] = f"/ogc/collections/{layer}/items?limit=10000"
        out[f"queryables {layer}"] = f"/ogc/collections/{layer}/queryables"
    return out


def _ids(r: Any, layer: str) -> set[Any]:
    if r.headers["content-type"].startswith("application/vnd.mapbox-vector-tile"):
        return {f["id"] for f in mapbox_vector_tile.decode(r.content).get(layer, {}).get("features", [])}
    return {f["id"] for f in r.json()["features"]}


def _expect(t: dict[str, Any], user: str | None) -> dict[str, Callable[[Any], bool] | int | str]:
    """Per entry: an error code, an HTTP status, or a check of the 200 answer."""
    partner, zhaojue = user == "t-partner", user == "t-officer-zhaojue"
    everyone = ("relocation_sites", "facilities", "households", "admin_areas")
    seen = tuple(layer for layer in everyone if not (partner and layer == "households"))
    hh = F if partner else (lambda r: r.status_code == 204) if zhaojue else (lambda r: len(_ids(r, "households")) > 100)
    all_items = F if partner else (lambda r: r.json()["numberMatched"] == (0 if zhaojue else t["households"]))
    facilities = t["xide_facilities"] if partner else t["facilities"]
    sites_households = None if partner else 0 if zhaojue else t["yixin_households"]  # households it may see
    exp: dict[str, Callable[[Any], bool] | int | str] = {
        "ogc landing": 200,
        "ogc conformance": 200,
        "ogc api": 200,
        "ogc collections": lambda r: [c["id"] for c in r.json()["collections"]] == list(seen),
        "tiles catalog": lambda r: [x["name"] for x in r.json()["layers"]] == list(seen),
        "multi-layer tile": lambda r: (
            set(mapbox_vector_tile.decode(r.content)) == set(seen) - ({"households"} if zhaojue else set())
        ),
        "household item": F if partner else 404 if zhaojue else (lambda r: r.json()["id"] == t["household_id"]),
        "tile relocation_sites": lambda r: len(_ids(r, "relocation_sites")) == 1,
        "tile facilities": lambda r: _ids(r, "facilities") <= facilities and bool(_ids(r, "facilities")),
        "tile households": hh,
        "tile admin_areas": lambda r: len(_ids(r, "admin_areas")) >= 1,
        "items relocation_sites": lambda r: [f["properties"]["households"] for f in r.json()["features"]] == [sites_households],
        "items facilities": lambda r: _ids(r, "facilities") == facilities,
        "items households": all_items,
        "items admin_areas": lambda r: r.json()["numberMatched"] == t["areas"],
        "queryables relocation_sites": lambda r: ("households" in r.json()["properties"]) is not partner,
    }
    for layer in everyone:
        forbidden = partner and layer == "households"
        exp.setdefault(f"tilejson {layer}", F if forbidden else (lambda r, la=layer: r.json()["vector_layers"][0]["id"] == la))
        exp.setdefault(f"collection {layer}", F if forbidden else (lambda r, la=layer: r.json()["id"] == la))
        exp.setdefault(f"queryables {layer}", F if forbidden else (lambda r: "geometry" in r.json()["properties"]))
    if user is None:
        public = {"ogc landing", "ogc conformance", "ogc api"}
        return {k: (v if k in public else U) for k, v in exp.items()}
    return exp


@pytest.mark.parametrize("user", ROLES, ids=lambda u: u or "anonymous")
def test_map_routes_for_every_role(app, users, truth, user):  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {users[user]}"} if user else {}
    entries, expected = _entries(truth), _expect(truth, user)
    assert set(entries) == set(expected)
    for name, path in entries.items():
        r = app.get(path, headers=headers)
        want = expected[name]
        if isinstance(want, str):
            status = {"FORBIDDEN": 403, "UNAUTHENTICATED": 401}[want]
            body = r.json()
            assert r.status_code == status and body["errors"][0]["extensions"]["code"] == want, (user, name, r.text[:300])
            if path.startswith("/ogc"):
                assert body["code"] == want  # OGC's exception member too
            continue
        if isinstance(want, int):
            assert r.status_code == want, (user, name, r.status_code, r.text[:300])
            continue
        assert r.status_code in (200, 204), (user, name, r.status_code, r.text[:300])
        assert want(r), (user, name, r.text[:400] if "mvt" not in path else len(r.content))
        if r.status_code == 200 and "private" not in r.headers.get("cache-control", "private"):
            raise AssertionError((user, name, "answers differ by viewer: must not be publicly cacheable"))
        if user in ("t-partner", "t-planner") and r.status_code == 200:  # never personal data in a layer
            data = mapbox_vector_tile.decode(r.content) if "mvt" in path else r.json()
            assert not set(strings(data)) & truth["personal"], (user, name)


def test_partner_cannot_filter_on_what_it_may_not_see(app, users):  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {users['t-partner']}"}
    for params in ({"filter": "households > 3"}, {"households": "3"}, {"filter": "name LIKE '%' OR households IS NULL"}):
        r = app.get("/ogc/collections/relocation_sites/items", params=params, headers=headers)
        assert r.status_code == 403 and r.json()["code"] == F, params
    # the same filters work for roles that see the property
    admin = {"Authorization": f"Bearer {users['t-admin']}"}
    r = app.get("/ogc/collections/relocation_sites/items", params={"filter": "households > 3"}, headers=admin)
    assert r.status_code == 200 and r.json()["numberMatched"] == 1


async def test_a_filter_never_runs_over_rows_the_viewer_cannot_see(app, users, engine):  # type: ignore[no-untyped-def]
    """An officer of Zhaojue filtering households by a property that would match every household gets none of them: the
    filter runs inside the officer's row-level security, not before it."""
    headers = {"Authorization": f"Bearer {users['t-officer-zhaojue']}"}
    for params in ({"filter": "size >= 0 OR size IS NULL"}, {"zeroEmployment": "false"}, {"areaCode": "513432"}):
        r = app.get("/ogc/collections/households/items", params=params, headers=headers)
        assert r.status_code == 200 and r.json()["numberMatched"] == 0 and r.json()["features"] == [], params
    # and a partner's facility filter sees its paired county's facilities only
    async with engine.connect() as c:
        outside = await c.scalar(text("SELECT min(id) FROM facility WHERE left(admin_code, 6) <> '513432'"))
    partner = {"Authorization": f"Bearer {users['t-partner']}"}
    r = app.get(f"/ogc/collections/facilities/items/{outside}", headers=partner)
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"
    body = app.get("/ogc/collections/facilities/items", params={"filter": "name LIKE '%'"}, headers=partner).json()
    assert outside not in {f["id"] for f in body["features"]}
    assert json.dumps(body).count('"Feature"') == body["numberReturned"]
