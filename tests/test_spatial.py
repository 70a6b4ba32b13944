"""Spatial queries on a generated Sichuan-style sample (anju seed's Sichuan-scale generator, scaled
down), checked against independent methods: pyproj geodesics on the WGS84 ellipsoid, shapely
point-in-polygon, brute force over every row, the slippy-map tile formula, an independent MVT
decoder (mapbox-vector-tile) and an independent GeoJSON validator (geojson-pydantic)."""

from __future__ import annotations

import math
from typing import Any

import mapbox_vector_tile
import pytest
from geojson_pydantic import FeatureCollection
from pyproj import Geod
from shapely.geometry import Point, box, shape
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker
from starlette.testclient import TestClient

from anju import db
from anju.app import create_app
from anju.auth import issue_token
from anju.seed import load_sichuan
from resolvers.access import Role, add_user
from schema import Context
from tests.conftest import ADMIN, admin_runner

GEOD = Geod(ellps="WGS84")
NAME = "anju_test_spatial"


@pytest.fixture(scope="module")
async def sp(settings, schema):  # type: ignore[no-untyped-def]
    await db.ensure_database(settings, NAME, drop_first=True)
    await db.migrate(settings, NAME)
    eng = db.create_engine(settings, NAME)
    summary = await load_sichuan(eng, sites=120, households=12_000, facilities=1_500)
    assert summary.loaded and summary.households > 10_000
    async with eng.begin() as c:  # two facilities on either side of the antimeridian
        await c.execute(
            text(
                "INSERT INTO facility (name, kind, admin_code, location) VALUES "
                "('east of 180', 'school', '513432', ST_SetSRID(ST_MakePoint(179.5, 0.5), 4326)), "
                "('west of 180', 'clinic', '513432', ST_SetSRID(ST_MakePoint(-179.5, -0.5), 4326)), "
                "('coded to Zhaojue, inside Xide', 'school', '513431', "
                " ST_SetSRID(ST_MakePoint(102.41, 28.31), 4326)), "
                "('just east of 102.5', 'school', '513432', ST_SetSRID(ST_MakePoint(102.5000008, 27.6), 4326))"
            )
        )
    async with eng.connect() as c:
        fac = [
            dict(r)
            for r in (
                await c.execute(text("SELECT id, kind::text AS kind, ST_X(location) AS x, ST_Y(location) AS y FROM facility"))
            ).mappings()
        ]
        hh = [
            dict(r)
            for r in (
                await c.execute(
                    text("SELECT id, site_id, ST_X(dwelling) AS x, ST_Y(dwelling) AS y FROM household WHERE dwelling IS NOT NULL")
                )
            ).mappings()
        ]
    sm = async_sessionmaker(eng, expire_on_commit=False)
    await add_user(sm, "t-admin", Role.ADMIN)

    run = admin_runner(schema, sm, settings)

    yield (
        run,
        fac,
        hh,
        settings.model_copy(
            update={"local_db": settings.local_db.model_copy(update={"database": NAME})} if settings.uses_local_db else {}
        ),
    )
    await eng.dispose()


async def _walk(run: Any, query: str, field: str, **variables: Any) -> list[int]:
    """Every id of a connection, page by page (query takes $after and selects nodes { id } and pageInfo)."""
    ids: list[int] = []
    after = None
    while True:
        r = await run(query, after=after, **variables)
        assert r.errors is None, r.errors
        conn = r.data[field]
        ids += [int(n["id"]) for n in conn["nodes"]]
        if not conn["pageInfo"]["hasNextPage"]:
            assert conn["totalCount"] == len(ids) == len(set(ids))
            return ids
        after = conn["pageInfo"]["endCursor"]


def _pt(x: float, y: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [x, y]}


def _dist(x1: float, y1: float, x2: float, y2: float) -> float:
    return GEOD.inv(x1, y1, x2, y2)[2]


SAMPLE_POINTS = [(102.41, 28.31), (101.9, 27.6), (103.2, 28.1), (102.25, 26.7), (100.9, 27.9)]


@pytest.mark.parametrize(("x", "y"), SAMPLE_POINTS)
async def test_nearest_facilities_are_the_true_nearest(sp, x, y):  # type: ignore[no-untyped-def]
    run, fac, _, _ = sp
    r = await run(
        "query($p: GeoJSON!) { nearestFacilities(point: $p, k: 5, kinds: [SCHOOL, CLINIC, TEA_PLANTATION]) "
        "{ distanceMeters facility { id kind } } }",
        p=_pt(x, y),
    )
    assert r.errors is None
    got = r.data["nearestFacilities"]
    brute = sorted((_dist(x, y, f["x"], f["y"]), f["id"]) for f in fac if f["kind"] in ("school", "clinic", "tea_plantation"))
    assert [int(g["facility"]["id"]) for g in got] == [i for _, i in brute[:5]]
    for g, (d, _) in zip(got, brute, strict=False):
        assert g["distanceMeters"] == pytest.approx(d, rel=1e-3)  # the issue's 0.1 %
        assert g["distanceMeters"] == pytest.approx(d, abs=0.01)  # in fact to the centimetre


@pytest.mark.parametrize(("x", "y", "radius"), [(*p, r) for p in SAMPLE_POINTS[:3] for r in (800.0, 5000.0, 40000.0)])
async def test_radius_filter_matches_brute_force(sp, x, y, radius):  # type: ignore[no-untyped-def]
    run, fac, hh, _ = sp
    q = (
        "query($p: GeoJSON!, $r: Float!, $after: String) { households(first: 500, after: $after, "
        "filter: {near: {point: $p, radiusMeters: $r}}) { totalCount nodes { id } pageInfo { hasNextPage endCursor } } }"
    )
    ids: list[int] = []
    after = None
    while True:
        r = await run(q, p=_pt(x, y), r=radius, after=after)
        assert r.errors is None
        conn = r.data["households"]
        ids += [int(n["id"]) for n in conn["nodes"]]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    expected = {h["id"] for h in hh if _dist(x, y, h["x"], h["y"]) <= radius}
    borderline = {h["id"] for h in hh if abs(_dist(x, y, h["x"], h["y"]) - radius) < 0.01}
    assert set(ids) ^ expected <= borderline
    assert conn["totalCount"] == len(ids) and len(ids) == len(set(ids))
    fids = await _walk(
        run,
        "query($p: GeoJSON!, $r: Float!, $after: String) { facilities(first: 500, after: $after, "
        "filter: {near: {point: $p, radiusMeters: $r}}) { totalCount nodes { id } "
        "pageInfo { hasNextPage endCursor } } }",
        "facilities",
        p=_pt(x, y),
        r=radius,
    )
    assert set(fids) == {f["id"] for f in fac if _dist(x, y, f["x"], f["y"]) <= radius}


POLYGONS = [
    box(102.0, 27.5, 102.6, 28.2),
    Point(102.8, 28.0).buffer(0.3),  # a 64-gon
    shape({"type": "Polygon", "coordinates": [[[101.0, 27.0], [103.5, 27.2], [102.0, 28.9], [101.0, 27.0]]]}),
]


@pytest.mark.parametrize("poly", POLYGONS, ids=["box", "circle", "triangle"])
async def test_polygon_filter_matches_shapely(sp, poly):  # type: ignore[no-untyped-def]
    run, fac, hh, _ = sp
    gj = {"type": "Polygon", "coordinates": [[list(c) for c in poly.exterior.coords]]}
    ids = await _walk(
        run,
        "query($g: GeoJSON!, $after: String) { facilities(first: 500, after: $after, "
        "filter: {intersects: $g}) { totalCount nodes { id } pageInfo { hasNextPage endCursor } } }",
        "facilities",
        g=gj,
    )
    assert set(ids) == {f["id"] for f in fac if poly.intersects(Point(f["x"], f["y"]))}
    r = await run("query($g: GeoJSON!) { households(first: 1, filter: {intersects: $g}) { totalCount } }", g=gj)
    assert r.data["households"]["totalCount"] == sum(1 for h in hh if poly.intersects(Point(h["x"], h["y"])))


async def test_bbox_and_antimeridian(sp):  # type: ignore[no-untyped-def]
    run, fac, _, _ = sp
    r = await run(
        "{ a: facilities(filter: {bbox: [179, -1, -179, 1]}) { nodes { name } } "
        "  b: facilities(first: 500, filter: {bbox: [102.0, 27.5, 102.6, 28.2], kinds: [SCHOOL]}) { totalCount } }"
    )
    assert r.errors is None
    assert {n["name"] for n in r.data["a"]["nodes"]} == {"east of 180", "west of 180"}
    bb = box(102.0, 27.5, 102.6, 28.2)
    assert r.data["b"]["totalCount"] == sum(1 for f in fac if f["kind"] == "school" and bb.intersects(Point(f["x"], f["y"])))


async def test_households_beyond_matches_brute_force(sp):  # type: ignore[no-untyped-def]
    run, fac, hh, _ = sp
    site = max({h["site_id"] for h in hh}, key=lambda s: sum(1 for h in hh if h["site_id"] == s))
    kinds = ("assistance_workshop", "industrial_park")
    jobs = [f for f in fac if f["kind"] in kinds]
    nearest_job = sorted(min(_dist(h["x"], h["y"], f["x"], f["y"]) for f in jobs) for h in hh if h["site_id"] == site)
    d = round(nearest_job[len(nearest_job) // 2], 1)  # the median: about half the site lies beyond
    expected = {h["id"] for h in hh if h["site_id"] == site and all(_dist(h["x"], h["y"], f["x"], f["y"]) > d for f in jobs)}
    ids = await _walk(
        run,
        "query($s: ID, $d: Float!, $after: String) { householdsBeyond(distanceMeters: $d, "
        "ofKinds: [ASSISTANCE_WORKSHOP, INDUSTRIAL_PARK], siteId: $s, first: 100, after: $after) "
        "{ totalCount nodes { id } pageInfo { hasNextPage endCursor } } }",
        "householdsBeyond",
        s=str(site),
        d=d,
    )
    assert set(ids) == expected
    assert 0 < len(expected) < sum(1 for h in hh if h["site_id"] == site)  # both outcomes occur


async def test_site_proximity(sp):  # type: ignore[no-untyped-def]
    run, fac, _, _ = sp
    r = await run(
        "{ relocationSites(first: 3) { nodes { location nearbyFacilities(radiusMeters: 10000) "
        "{ distanceMeters facility { id } } nearestByKind(kinds: [SCHOOL, CLINIC]) { distanceMeters "
        "facility { id kind } } } } }"
    )
    assert r.errors is None
    for site in r.data["relocationSites"]["nodes"]:
        x, y = site["location"]["coordinates"]
        near = sorted((_dist(x, y, f["x"], f["y"]), f["id"]) for f in fac if _dist(x, y, f["x"], f["y"]) <= 10000)
        got = site["nearbyFacilities"]
        assert [int(g["facility"]["id"]) for g in got] == [i for _, i in near]
        assert [g["distanceMeters"] for g in got] == pytest.approx([dd for dd, _ in near], abs=0.05)
        for g in site["nearestByKind"]:
            kind = g["facility"]["kind"].lower()
            best = min((_dist(x, y, f["x"], f["y"]), f["id"]) for f in fac if f["kind"] == kind)
            assert (int(g["facility"]["id"]), g["distanceMeters"]) == (best[1], pytest.approx(best[0], abs=0.05))
        assert [g["facility"]["kind"] for g in site["nearestByKind"]] == ["SCHOOL", "CLINIC"]


def _decimals_ok(coords: Any) -> bool:
    if isinstance(coords, float):
        return round(coords, 6) == coords
    if isinstance(coords, list):
        return all(_decimals_ok(c) for c in coords)
    return True


@pytest.mark.parametrize("layer", ["RELOCATION_SITES", "FACILITIES", "HOUSEHOLDS", "ADMIN_AREAS"])
async def test_feature_collection_is_rfc7946(sp, layer):  # type: ignore[no-untyped-def]
    run, _, _, _ = sp
    r = await run(
        "query($l: MapLayer!) { featureCollection(layer: $l, bbox: [100, 26, 104, 30], zoom: 13, limit: 2000) }", l=layer
    )
    assert r.errors is None
    fc = r.data["featureCollection"]
    FeatureCollection.model_validate(fc)  # independent validator (raises on any schema violation)
    assert fc["type"] == "FeatureCollection" and 0 < len(fc["features"]) <= 2000
    for feat in fc["features"]:
        assert _decimals_ok(feat["geometry"]["coordinates"])
        if feat["geometry"]["type"] in ("Polygon", "MultiPolygon"):
            g = shape(feat["geometry"])
            for poly in getattr(g, "geoms", [g]):
                assert poly.exterior.is_ccw
    if layer == "HOUSEHOLDS":  # no personal data: id, site id, size, zero-employment flag only
        assert set(fc["features"][0]["properties"]) == {"siteId", "size", "zeroEmployment"}


async def test_point_layers_cluster_at_low_zoom(sp):  # type: ignore[no-untyped-def]
    run, _, hh, _ = sp
    r = await run("{ featureCollection(layer: HOUSEHOLDS, bbox: [100, 26, 104, 30], zoom: 7) }")
    fc = r.data["featureCollection"]
    FeatureCollection.model_validate(fc)
    assert all(f["properties"]["cluster"] for f in fc["features"])
    bb = box(100, 26, 104, 30)
    assert sum(f["properties"]["point_count"] for f in fc["features"]) == sum(
        1 for h in hh if bb.intersects(Point(h["x"], h["y"]))
    )
    assert len(fc["features"]) < 2000  # a province-wide view ships clusters, not every point


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """Slippy-map tile indices (OSM formula), independent of PostGIS."""
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


def test_vector_tiles(sp):  # type: ignore[no-untyped-def]
    _, fac, hh, s = sp
    z = 12
    x, y = _tile_of(hh[0]["x"], hh[0]["y"], z)
    expected = {h["id"] for h in hh if _tile_of(h["x"], h["y"], z) == (x, y)}
    with TestClient(create_app(s), headers={"Authorization": f"Bearer {issue_token(s, 't-admin')}"}) as c:
        r = c.get(f"/tiles/households/{z}/{x}/{y}.mvt")
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
        assert "max-age" in r.headers["cache-control"]
        tile = mapbox_vector_tile.decode(r.content)
        feats = tile["households"]["features"]
        inside = {f["id"] for f in feats if all(0 <= v <= 4096 for v in f["geometry"]["coordinates"])}
        assert inside == expected  # the 256-px buffer adds neighbours outside 0..4096 only
        assert set(feats[0]["properties"]) == {"siteId", "size", "zeroEmployment"}  # featureCollection's names
        assert c.get("/tiles/households/12/0/0.mvt").status_code == 204  # the Arctic: empty
        for bad in ("/tiles/households/3/8/1.mvt", "/tiles/households/23/0/0.mvt", "/tiles/members/3/1/1.mvt"):
            resp = c.get(bad)
            assert resp.status_code == 400 and resp.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        fx, fy = _tile_of(fac[0]["x"], fac[0]["y"], 12)
        ft = mapbox_vector_tile.decode(c.get(f"/tiles/facilities/12/{fx}/{fy}.mvt").content)
        assert fac[0]["id"] in {f["id"] for f in ft["facilities"]["features"]}


async def test_area_code_matches_code_or_polygon(sp):  # type: ignore[no-untyped-def]
    import json as _json

    from tests.conftest import DATA

    run, fac, hh, _ = sp
    counties = {
        f["properties"]["code"]: shape(f["geometry"])
        for f in _json.loads((DATA / "liangshan" / "counties.geojson").read_text(encoding="utf-8"))["features"]
    }
    r = await run(
        '{ households(first: 1, filter: {areaCode: "513432"}) { totalCount } '
        '  facilities(first: 1, filter: {areaCode: "513432"}) { totalCount } }'
    )
    assert r.errors is None
    xide = counties["513432"]
    from sqlalchemy import text as sql

    from anju import db as _db

    _, _, _, s = sp
    eng = _db.create_engine(s)
    async with eng.connect() as c:
        coded = {row[0]: row[1] for row in (await c.execute(sql("SELECT id, county_code FROM household"))).all()}
        fcoded = {row[0]: row[1] for row in (await c.execute(sql("SELECT id, left(admin_code, 6) FROM facility"))).all()}
    await eng.dispose()
    expected_h = {h["id"] for h in hh if coded[h["id"]] == "513432" or xide.intersects(Point(h["x"], h["y"]))}
    expected_h |= {i for i, cc in coded.items() if cc == "513432"}  # households without a dwelling, by code
    expected_f = {f["id"] for f in fac if fcoded[f["id"]] == "513432" or xide.intersects(Point(f["x"], f["y"]))}
    assert r.data["households"]["totalCount"] == len(expected_h)
    assert r.data["facilities"]["totalCount"] == len(expected_f)
    # some points coded to another county lie inside Xide's polygon, so the polygon half matters
    assert len(expected_f) > sum(1 for f in fac if fcoded[f["id"]] == "513432")


async def test_bbox_is_exact_at_its_edge(sp):  # type: ignore[no-untyped-def]
    run, _, _, _ = sp
    r = await run("{ facilities(first: 500, filter: {bbox: [102.0, 27.5, 102.5, 28.2], kinds: [SCHOOL]}) { nodes { name } } }")
    assert "just east of 102.5" not in {n["name"] for n in r.data["facilities"]["nodes"]}  # 0.08 m outside


async def test_gcj02_bbox_stays_a_box(sp):  # type: ignore[no-untyped-def]
    run, _, hh, _ = sp
    r = await run(
        "{ a: households(filter: {bbox: [102.5, 26, 102.5, 30], coordSys: GCJ02}) { totalCount } "
        "  b: households(filter: {bbox: [102.0, 27.5, 102.6, 28.2], coordSys: BD09}) { totalCount } "
        '  c: nearestFacilities(point: {type: "Point", coordinates: [-180, 0]}, coordSys: BD09, k: 1) '
        "{ facility { name } } }"
    )
    assert r.errors is None
    assert r.data["a"]["totalCount"] < 50  # a zero-width strip, not the whole world
    assert 0 < r.data["b"]["totalCount"] < len(hh)
    assert r.data["c"][0]["facility"]["name"] in ("east of 180", "west of 180")  # outside China BD09 is WGS84


async def test_nearby_facilities_are_capped(sp):  # type: ignore[no-untyped-def]
    run, _, _, _ = sp
    r = await run(
        "{ relocationSites(first: 2) { nodes { a: nearbyFacilities(radiusMeters: 1000000) { distanceMeters } "
        " b: nearbyFacilities(radiusMeters: 1000000, first: 3) { distanceMeters } } } }"
    )
    assert r.errors is None
    for n in r.data["relocationSites"]["nodes"]:
        assert len(n["a"]) == 50 and len(n["b"]) == 3
        assert [x["distanceMeters"] for x in n["b"]] == [x["distanceMeters"] for x in n["a"][:3]]


@pytest.mark.parametrize("zoom", [0, 2, 5])
async def test_simplified_admin_polygons_stay_valid(sp, zoom):  # type: ignore[no-untyped-def]
    run, _, _, _ = sp
    r = await run("query($z: Int) { featureCollection(layer: ADMIN_AREAS, zoom: $z) }", z=zoom)
    for f in r.data["featureCollection"]["features"]:
        assert shape(f["geometry"]).is_valid, f["id"]


async def test_statement_timeout_is_query_too_complex(sp, settings, schema):  # type: ignore[no-untyped-def]
    _, _, _, s = sp
    slow = s.model_copy(update={"statement_timeout_ms": 100})
    eng = db.create_engine(slow)
    try:
        r = await schema.execute(
            "{ householdsBeyond(distanceMeters: 50000, ofKinds: [SCHOOL, CLINIC, WATER_SUPPLY, "
            "COOPERATIVE, TEA_PLANTATION, INDUSTRIAL_PARK, VEGETABLE_BASE], first: 1) { totalCount } "
            ' i: households(filter: {intersects: {type: "LineString", coordinates: '
            + str([[100 + (i % 2) * 4, 26 + i * 0.0003] for i in range(9000)]).replace(" ", "")
            + "}}) { totalCount } }",
            context_value=Context(sessionmaker=async_sessionmaker(eng), settings=slow, viewer=ADMIN),
        )
    finally:
        await eng.dispose()
    assert r.errors and {e.extensions["code"] for e in r.errors} == {"QUERY_TOO_COMPLEX"}
