"""The layer registry (issue #12): featureCollection, vector tiles and OGC API Features items are views of one
definition per layer — the same features and properties for the same filters — and each layer's features are the
ones raw SQL over the tables selects (independent of the registry). Also: truncation, coordSys in SQL against the
Python formula, tile conventions (ids, clusters, TileJSON, catalog, multi-layer, ETag, gzip), OGC paging with rows
inserted and deleted between pages, CRS, CQL2."""

from __future__ import annotations

import gzip
import json
import math
from typing import Any
from urllib.parse import urlencode

import mapbox_vector_tile
import pytest
from geojson_pydantic import FeatureCollection
from openapi_spec_validator import validate
from shapely.geometry import shape
from sqlalchemy import text
from starlette.testclient import TestClient

from anju.app import create_app
from resolvers.coords import CoordSys, from_wgs84

AS_OF = "2024-04-13"


@pytest.fixture(scope="module")
def app(settings, users):  # type: ignore[no-untyped-def]
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {users['t-admin']}"}) as c:
        yield c


@pytest.fixture(scope="module")
async def ids(engine):  # type: ignore[no-untyped-def]
    async with engine.connect() as c:
        yixin = await c.scalar(text("SELECT id FROM relocation_site WHERE name = '彝欣社区'"))
    return {"yixin": yixin}


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """Slippy-map tile indices (OSM formula), independent of PostGIS."""
    n = 2**z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def pixel_of(lon: float, lat: float, z: int, x: int, y: int, extent: int = 4096) -> tuple[float, float]:
    """Position of lon/lat inside tile z/x/y in tile units (y up, as mapbox-vector-tile decodes)."""
    n = 2**z
    fx = (lon + 180) / 360 * n
    fy = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return (fx - x) * extent, (1 - (fy - y)) * extent


def graphql(app: TestClient, query: str, **variables: Any) -> Any:
    r = app.post("/graphql", json={"query": query, "variables": variables})
    body = r.json()
    assert r.status_code == 200 and "errors" not in body, body
    return body["data"]


def feature_collection(app: TestClient, layer: str, filter_: dict[str, Any], **args: Any) -> dict[str, Any]:
    q = (
        "query($l: MapLayer!, $f: LayerFilter, $z: Int, $n: Int, $c: CoordSys) "
        "{ featureCollection(layer: $l, filter: $f, zoom: $z, limit: $n, coordSys: $c) }"
    )
    return graphql(
        app, q, l=layer.upper(), f=filter_, z=args.get("zoom"), n=args.get("limit", 10000), c=args.get("coordSys", "WGS84")
    )["featureCollection"]


def ogc_all(app: TestClient, layer: str, params: dict[str, str], limit: int = 7) -> tuple[list[dict[str, Any]], list[int]]:
    """Every feature of ``layer`` following ``next`` links from the first page; and each page's numberMatched."""
    url: str | None = f"/ogc/collections/{layer}/items?" + urlencode({**params, "limit": limit})
    features, matched = [], []
    while url:
        r = app.get(url)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/geo+json"
        page = r.json()
        assert page["numberReturned"] == len(page["features"]) <= limit
        features += page["features"]
        matched.append(page["numberMatched"])
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    return features, matched


def tiles_covering(bounds: tuple[float, float, float, float], z: int) -> list[tuple[int, int]]:
    x0, y1 = tile_of(bounds[0], bounds[1], z)
    x1, y0 = tile_of(bounds[2], bounds[3], z)
    return [(x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


# layer, its filter (GraphQL LayerFilter = tile/OGC query parameters), tile zoom (unclustered), raw SQL of the expected ids
CASES = [
    pytest.param(
        "relocation_sites",
        {"areaCode": "513432"},
        12,
        "SELECT id FROM relocation_site WHERE admin_code LIKE '513432%' OR located_code LIKE '513432%'",
        id="relocation_sites",
    ),
    pytest.param(
        "facilities",
        {"areaCode": "513432", "kinds": ["VEGETABLE_BASE", "TRAINING_BASE", "TEA_PLANTATION"], "asOf": AS_OF},
        12,
        "SELECT id FROM facility WHERE (admin_code LIKE '513432%' OR located_code LIKE '513432%') "
        "AND kind IN ('vegetable_base', 'training_base', 'tea_plantation') "
        "AND (opened_on IS NULL OR opened_on <= DATE '2024-04-13') AND (closed_on IS NULL OR closed_on > DATE '2024-04-13')",
        id="facilities",
    ),
    pytest.param(
        "households",
        {"siteId": "YIXIN", "zeroEmployment": False, "asOf": AS_OF},
        14,
        # API.md's zero-employment over the raw member and employment rows (members present on the date)
        "SELECT h.id FROM household h WHERE h.site_id = :yixin AND h.dwelling IS NOT NULL "
        "AND NOT ST_IsEmpty(h.dwelling) AND NOT (EXISTS (SELECT 1 FROM member m WHERE m.household_id = h.id "
        "  AND m.labor_force AND (m.joined_on IS NULL OR m.joined_on <= DATE '2024-04-13') "
        "  AND (m.left_on IS NULL OR m.left_on > DATE '2024-04-13')) "
        " AND NOT EXISTS (SELECT 1 FROM employment e JOIN member m ON m.id = e.member_id WHERE m.household_id = h.id "
        "  AND (m.joined_on IS NULL OR m.joined_on <= DATE '2024-04-13') "
        "  AND (m.left_on IS NULL OR m.left_on > DATE '2024-04-13') "
        "  AND e.start_on <= DATE '2024-04-13' AND (e.end_on IS NULL OR e.end_on >= DATE '2024-04-13')))",
        id="households",
    ),
    pytest.param(
        "admin_areas",
        {"areaCode": "513432"},
        8,
        "SELECT code FROM admin_area WHERE code LIKE '513432%' AND geom IS NOT NULL",
        id="admin_areas",
    ),
]


def _query_params(filter_: dict[str, Any]) -> dict[str, str]:
    out = {}
    for k, v in filter_.items():
        out[k] = ",".join(v) if isinstance(v, list) else (str(v).lower() if isinstance(v, bool) else str(v))
    return out


@pytest.mark.parametrize(("layer", "filter_", "z", "raw"), CASES)
async def test_feature_collection_tiles_and_ogc_items_agree(app, engine, ids, layer, filter_, z, raw):  # type: ignore[no-untyped-def]
    filter_ = {k: (str(ids["yixin"]) if v == "YIXIN" else v) for k, v in filter_.items()}
    async with engine.connect() as c:
        expected = {str(i) for i in (await c.execute(text(raw), {"yixin": ids["yixin"]} if ":yixin" in raw else {})).scalars()}
    assert expected, "the case must select something"

    fc = feature_collection(app, layer, filter_)
    FeatureCollection.model_validate(fc)  # an independent RFC 7946 validator
    assert fc["truncated"] is False and fc["numberReturned"] == len(fc["features"])
    by_id = {str(f["id"]): f for f in fc["features"]}
    assert set(by_id) == expected and len(by_id) == len(fc["features"])

    # OGC items: same features, same properties, same geometries (both from PostGIS at 6 decimals)
    items, matched = ogc_all(app, layer, _query_params(filter_))
    assert {str(f["id"]) for f in items} == set(by_id) and len(items) == len(by_id)  # each exactly once
    assert set(matched) == {len(expected)}
    for f in items:
        assert f["properties"] == by_id[str(f["id"])]["properties"], f["id"]
        assert f["geometry"] == by_id[str(f["id"])]["geometry"], f["id"]

    # tiles: every tile covering the features at zoom z; ids and attributes (nulls are left out of MVT)
    bounds = shape({"type": "GeometryCollection", "geometries": [f["geometry"] for f in fc["features"]]}).bounds
    seen: dict[str, dict[str, Any]] = {}
    params = urlencode(_query_params(filter_))
    for x, y in tiles_covering(bounds, z):
        r = app.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt?{params}")
        assert r.status_code in (200, 204), r.text
        if r.status_code == 204:
            continue
        for feat in mapbox_vector_tile.decode(r.content).get(layer, {}).get("features", []):
            seen[str(feat["id"])] = feat["properties"]
            if feat["geometry"]["type"] == "Point":  # where featureCollection puts it, within a tile unit
                lon, lat = by_id[str(feat["id"])]["geometry"]["coordinates"]
                px, py = pixel_of(lon, lat, z, x, y)
                gx, gy = feat["geometry"]["coordinates"]
                assert abs(gx - px) <= 1.01 and abs(gy - py) <= 1.01
    assert set(seen) == expected
    for key, props in seen.items():
        assert props == {k: v for k, v in by_id[key]["properties"].items() if v is not None}, key


async def test_feature_collection_says_when_it_cut(app, engine):  # type: ignore[no-untyped-def]
    async with engine.connect() as c:
        total = await c.scalar(text("SELECT count(*) FROM household WHERE dwelling IS NOT NULL AND NOT ST_IsEmpty(dwelling)"))
    cut = feature_collection(app, "households", {}, limit=5)
    assert (cut["numberReturned"], cut["truncated"], len(cut["features"])) == (5, True, 5)
    assert [f["id"] for f in cut["features"]] == sorted(f["id"] for f in cut["features"])
    whole = feature_collection(app, "households", {}, limit=10000)
    assert (whole["numberReturned"], whole["truncated"]) == (total, False)
    exact = feature_collection(app, "households", {}, limit=total)
    assert exact["truncated"] is False and exact["numberReturned"] == total


async def test_filters_a_layer_does_not_accept_are_refused(app):  # type: ignore[no-untyped-def]
    for layer, f, name in [
        ("RELOCATION_SITES", {"kinds": ["SCHOOL"]}, "filter.kinds"),
        ("ADMIN_AREAS", {"siteId": "1"}, "filter.siteId"),
        ("FACILITIES", {"zeroEmployment": True}, "filter.zeroEmployment"),
        ("ADMIN_AREAS", {"asOf": AS_OF}, "filter.asOf"),
        ("HOUSEHOLDS", {"areaCode": "51343"}, "filter.areaCode"),
    ]:
        r = app.post(
            "/graphql",
            json={
                "query": "query($f: LayerFilter) { featureCollection(layer: " + layer + ", filter: $f) }",
                "variables": {"f": f},
            },
        ).json()
        err = r["errors"][0]
        assert err["extensions"]["code"] == "BAD_USER_INPUT" and err["message"].startswith(name), r
    r = app.get("/tiles/admin_areas/3/1/1.mvt?siteId=1")
    assert r.status_code == 400 and r.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "siteId" in r.json()["errors"][0]["message"]


# --------------------------------------------------------------------------- coordSys in SQL


async def test_sql_coordinate_systems_match_the_python_formula(engine):  # type: ignore[no-untyped-def]
    pts = [(102.41 + i * 0.37, 28.31 + i * 0.21) for i in range(-30, 30)] + [(2.35, 48.85), (-74.0, 40.7), (135.1, 30.0)]
    async with engine.connect() as c:
        for system in (CoordSys.GCJ02, CoordSys.BD09):
            rows = (
                await c.execute(
                    text(
                        "SELECT ST_X(g), ST_Y(g) "
                        "FROM unnest(CAST(:xs AS float8[]), CAST(:ys AS float8[])) WITH ORDINALITY AS p(x, y, i) "
                        "CROSS JOIN LATERAL anju_from_wgs84(ST_SetSRID(ST_MakePoint(p.x, p.y), 4326), :s) g ORDER BY p.i"
                    ),
                    {"xs": [p[0] for p in pts], "ys": [p[1] for p in pts], "s": system.value},
                )
            ).all()
            for (x, y), (gx, gy) in zip(pts, rows, strict=True):
                ex, ey = from_wgs84(x, y, system)
                assert gx == pytest.approx(ex, abs=1e-9) and gy == pytest.approx(ey, abs=1e-9), (system, x, y)
        # a polygon with a hole keeps its structure (rings, order) and each vertex moves as a point does
        poly = "POLYGON((102 28, 103 28, 103 29, 102 29, 102 28), (102.2 28.2, 102.2 28.4, 102.4 28.4, 102.2 28.2))"
        out = json.loads(
            await c.scalar(text(f"SELECT ST_AsGeoJSON(anju_from_wgs84(ST_GeomFromText('{poly}', 4326), 'gcj02'), 9)"))
        )
        assert out["type"] == "Polygon" and [len(r) for r in out["coordinates"]] == [5, 4]
        assert out["coordinates"][1][1] == pytest.approx(list(from_wgs84(102.2, 28.4, CoordSys.GCJ02)), abs=1e-9)
        assert await c.scalar(text("SELECT anju_from_wgs84(NULL::geometry, 'gcj02') IS NULL"))
        assert await c.scalar(text("SELECT ST_IsEmpty(anju_from_wgs84('SRID=4326;POINT EMPTY'::geometry, 'bd09'))"))


@pytest.mark.parametrize("system", ["GCJ02", "BD09"])
async def test_feature_collection_and_tiles_in_chinese_basemap_coordinates(app, system):  # type: ignore[no-untyped-def]
    wgs = feature_collection(app, "facilities", {"areaCode": "513432"})
    shifted = feature_collection(app, "facilities", {"areaCode": "513432"}, coordSys=system)
    assert [f["id"] for f in shifted["features"]] == [f["id"] for f in wgs["features"]]
    for a, b in zip(wgs["features"], shifted["features"], strict=True):
        ex = from_wgs84(*a["geometry"]["coordinates"], CoordSys[system])
        assert b["geometry"]["coordinates"] == pytest.approx(list(ex), abs=2e-6)
        assert b["properties"] == a["properties"]
    areas = feature_collection(app, "admin_areas", {"areaCode": "513432"}, coordSys=system)
    ring = areas["features"][0]["geometry"]["coordinates"][0][0]
    plain = feature_collection(app, "admin_areas", {"areaCode": "513432"})["features"][0]["geometry"]["coordinates"][0][0]
    assert ring[0] == pytest.approx(list(from_wgs84(*plain[0], CoordSys[system])), abs=2e-6)
    # the tile draws the shifted point where a GCJ-02/BD-09 basemap has it
    lon, lat = wgs["features"][0]["geometry"]["coordinates"]
    sx, sy = from_wgs84(lon, lat, CoordSys[system])
    z = 16
    x, y = tile_of(sx, sy, z)
    r = app.get(f"/tiles/facilities/{z}/{x}/{y}.mvt?coordSys={system}")
    assert r.status_code == 200
    feats = {f["id"]: f for f in mapbox_vector_tile.decode(r.content)["facilities"]["features"]}
    gx, gy = feats[wgs["features"][0]["id"]]["geometry"]["coordinates"]
    px, py = pixel_of(sx, sy, z, x, y)
    assert abs(gx - px) <= 1.01 and abs(gy - py) <= 1.01
    assert app.get(f"/tiles/facilities/{z}/{x}/{y}.mvt?coordSys=MARS").status_code == 400


# --------------------------------------------------------------------------- tile conventions


async def test_clusters_follow_maplibre_and_agree_with_feature_collection(app, engine):  # type: ignore[no-untyped-def]
    async with engine.connect() as c:
        lon, lat = (
            await c.execute(text("SELECT ST_X(location), ST_Y(location) FROM relocation_site WHERE name = '彝欣社区'"))
        ).one()
        located = await c.scalar(text("SELECT count(*) FROM household WHERE dwelling IS NOT NULL AND NOT ST_IsEmpty(dwelling)"))
    z = 9
    x, y = tile_of(lon, lat, z)
    r = app.get(f"/tiles/households/{z}/{x}/{y}.mvt")
    tile = mapbox_vector_tile.decode(r.content)["households"]["features"]
    inside = [f for f in tile if all(0 <= v <= 4096 for v in f["geometry"]["coordinates"])]
    assert inside and all(f["properties"]["cluster"] is True for f in inside)
    assert {f["id"] for f in inside} == {f["properties"]["cluster_id"] for f in inside}
    # the same cells as featureCollection's at that zoom (world-anchored grid): same clusters, same counts
    n = 2**z
    west, east = x / n * 360 - 180, (x + 1) / n * 360 - 180
    north = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / n))))
    south = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y + 1) / n))))
    fc = graphql(
        app,
        "query($b: [Float!]) { featureCollection(layer: HOUSEHOLDS, zoom: 9, bbox: $b) }",
        b=[west + 1e-9, south + 1e-9, east - 1e-9, north - 1e-9],
    )["featureCollection"]
    got = {f["properties"]["cluster_id"]: f["properties"]["point_count"] for f in inside}
    assert got == {f["properties"]["cluster_id"]: f["properties"]["point_count"] for f in fc["features"]}
    assert sum(got.values()) == located  # every demo household lies in this tile
    for f in fc["features"]:
        c = f["properties"]["point_count"]
        assert f["properties"]["point_count_abbreviated"] == (f"{round(c / 100) / 10}k" if c >= 1000 else str(c))
        assert f["id"] == f"cluster-{f['properties']['cluster_id']}"


def test_tile_caching_headers_etag_and_gzip(app, users):  # type: ignore[no-untyped-def]
    path = "/tiles/households/14/12852/6847.mvt"
    r1, r2 = app.get(path), app.get(path)
    assert r1.status_code == 200 and r1.content == r2.content  # a stable order: the same bytes every time
    etag = r1.headers["etag"]
    assert etag == r2.headers["etag"] and etag.startswith('W/"')
    assert "private" in r1.headers["cache-control"] and "Authorization" in r1.headers["vary"]
    r304 = app.get(path, headers={"If-None-Match": etag})
    assert r304.status_code == 304 and not r304.content and r304.headers["etag"] == etag
    raw = app.get(path, headers={"Accept-Encoding": "gzip"})
    assert raw.headers.get("content-encoding") == "gzip"
    assert raw.content == r1.content  # the client (httpx) decompresses: the same tile
    plain = app.get(path, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and gzip.compress(plain.content) != plain.content
    # another viewer gets another ETag (its own rows): officer of Zhaojue sees none of these households
    other = app.get(path, headers={"Authorization": f"Bearer {users['t-officer-zhaojue']}"})
    assert other.status_code == 204


def test_tilejson_catalog_and_multi_layer_tile(app, users):  # type: ignore[no-untyped-def]
    tj = app.get("/tiles/households.json?zeroEmployment=true&coordSys=GCJ02").json()
    assert tj["tilejson"] == "3.0.0" and tj["vector_layers"][0]["id"] == "households"
    assert tj["tiles"] == ["http://testserver/tiles/households/{z}/{x}/{y}.mvt?zeroEmployment=true&coordSys=GCJ02"]
    assert tj["vector_layers"][0]["fields"] == {
        "siteId": "Number",
        "size": "Number",
        "zeroEmployment": "Boolean",
        "cluster": "Boolean",
        "cluster_id": "Number",
        "point_count": "Number",
        "point_count_abbreviated": "String",
    }
    assert -180 <= tj["bounds"][0] < tj["bounds"][2] <= 180
    cat = app.get("/tiles").json()
    assert [x["name"] for x in cat["layers"]] == ["relocation_sites", "facilities", "households", "admin_areas"]
    partner = {"Authorization": f"Bearer {users['t-partner']}"}
    assert [x["name"] for x in app.get("/tiles", headers=partner).json()["layers"]] == [
        "relocation_sites",
        "facilities",
        "admin_areas",
    ]
    assert "households" not in app.get("/tiles/relocation_sites.json", headers=partner).json()["vector_layers"][0]["fields"]
    multi = mapbox_vector_tile.decode(app.get("/tiles/14/12852/6847.mvt").content)
    assert set(multi) == {"relocation_sites", "facilities", "households", "admin_areas"}
    single = mapbox_vector_tile.decode(app.get("/tiles/households/14/12852/6847.mvt").content)
    assert multi["households"] == single["households"]
    some = mapbox_vector_tile.decode(app.get("/tiles/14/12852/6847.mvt?layers=facilities,households&kinds=TRAINING_BASE").content)
    assert set(some) == {"facilities", "households"} and {f["properties"]["kind"] for f in some["facilities"]["features"]} == {
        "TRAINING_BASE"
    }
    assert set(mapbox_vector_tile.decode(app.get("/tiles/14/12852/6847.mvt", headers=partner).content)) == {
        "relocation_sites",
        "facilities",
        "admin_areas",
    }
    r = app.get("/tiles/14/12852/6847.mvt?layers=households", headers=partner)
    assert r.status_code == 403 and r.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    for bad in ("/tiles/14/12852/6847.mvt?layers=members", "/tiles/14/12852/6847.mvt?color=red", "/tiles/nope.json"):
        r = app.get(bad)
        assert r.status_code == 400 and r.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", bad


# --------------------------------------------------------------------------- OGC API Features


async def test_ogc_paging_while_rows_are_inserted_and_deleted(app, engine):  # type: ignore[no-untyped-def]
    insert = text(
        "INSERT INTO facility (name, kind, admin_code, location) "
        "VALUES (:n, 'cooperative', '513432', ST_SetSRID(ST_MakePoint(102.42, 28.32), 4326)) RETURNING id"
    )
    async with engine.begin() as c:
        doomed = await c.scalar(insert, {"n": "[test] closes while paged"})
    added = None
    try:
        url: str | None = "/ogc/collections/facilities/items?" + urlencode({"areaCode": "513432", "limit": 2})
        seen: list[int] = []
        matched = []
        while url:
            page = app.get(url).json()
            seen += [f["id"] for f in page["features"]]
            matched.append(page["numberMatched"])
            url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
            if len(matched) == 1:  # between the first and the second page: one row more, one (not yet seen) less
                assert "areaCode=513432" in url and "limit=2" in url  # the next link carries every parameter
                async with engine.begin() as c:
                    added = await c.scalar(insert, {"n": "[test] opened while paged"})
                    await c.execute(text("DELETE FROM facility WHERE id = :i"), {"i": doomed})
        async with engine.connect() as c:
            now = set(
                (
                    await c.execute(
                        text("SELECT id FROM facility WHERE admin_code LIKE '513432%' OR located_code LIKE '513432%'")
                    )
                ).scalars()
            )
        assert len(seen) == len(set(seen))  # every feature exactly once
        assert set(seen) == now and added in seen and doomed not in seen
        assert len(seen) == matched[-1] == len(now)
        assert matched[0] == len(now)  # one in, one out
        assert len(matched) >= 3
    finally:
        async with engine.begin() as c:
            await c.execute(text("DELETE FROM facility WHERE id = ANY(:i)"), {"i": [i for i in (doomed, added) if i]})


async def test_ogc_pages_of_every_household_hold_each_once(app, engine):  # type: ignore[no-untyped-def]
    items, matched = ogc_all(app, "households", {}, limit=400)
    async with engine.connect() as c:
        total = await c.scalar(text("SELECT count(*) FROM household WHERE dwelling IS NOT NULL AND NOT ST_IsEmpty(dwelling)"))
    ids_ = [f["id"] for f in items]
    assert len(ids_) == len(set(ids_)) == total and set(matched) == {total}
    assert ids_ == sorted(ids_)


def test_ogc_crs_and_bbox_crs(app):  # type: ignore[no-untyped-def]
    base = app.get("/ogc/collections/relocation_sites/items").json()["features"][0]
    lon, lat = base["geometry"]["coordinates"]
    for crs in ("http://www.opengis.net/def/crs/EPSG/0/4326", "http://www.opengis.net/def/crs/EPSG/0/4490"):
        r = app.get("/ogc/collections/relocation_sites/items", params={"crs": crs})
        assert r.headers["content-crs"] == f"<{crs}>"
        assert r.json()["features"][0]["geometry"]["coordinates"] == [lat, lon]  # lat/lon axis order
        box = f"{lat - 0.01},{lon - 0.01},{lat + 0.01},{lon + 0.01}"
        hit = app.get("/ogc/collections/relocation_sites/items", params={"bbox": box, "bbox-crs": crs}).json()
        assert [f["id"] for f in hit["features"]] == [base["id"]]
    box = f"{lon - 0.01},{lat - 0.01},{lon + 0.01},{lat + 0.01}"
    assert app.get("/ogc/collections/relocation_sites/items", params={"bbox": box}).json()["numberMatched"] == 1
    r = app.get("/ogc/collections/relocation_sites/items", params={"crs": "http://www.opengis.net/def/crs/EPSG/0/3857"})
    assert r.status_code == 400 and r.json()["code"] == "BAD_USER_INPUT" and "crs" in r.json()["description"]
    one = app.get(
        f"/ogc/collections/relocation_sites/items/{base['id']}", params={"crs": "http://www.opengis.net/def/crs/EPSG/0/4326"}
    )
    assert one.json()["geometry"]["coordinates"] == [lat, lon]


async def test_ogc_cql2_filters(app, engine, ids):  # type: ignore[no-untyped-def]
    async with engine.connect() as c:
        big = set(
            (
                await c.execute(text("SELECT id FROM household WHERE member_count >= 7 AND site_id = :s"), {"s": ids["yixin"]})
            ).scalars()
        )
        bases = set(
            (await c.execute(text("SELECT id FROM facility WHERE kind IN ('vegetable_base', 'tea_plantation')"))).scalars()
        )
        named = set((await c.execute(text("SELECT id FROM facility WHERE name LIKE '%基地%'"))).scalars())
    cases = [
        ("households", f"size >= 7 AND siteId = {ids['yixin']}", big),
        ("households", f"NOT (size < 7) AND siteId IN ({ids['yixin']})", big),
        ("households", f"size BETWEEN 7 AND 1000 AND NOT siteId IS NULL AND siteId = {ids['yixin']}", big),
        ("facilities", "kind IN ('VEGETABLE_BASE', 'TEA_PLANTATION')", bases),
        ("facilities", "kind = 'VEGETABLE_BASE' OR kind = 'TEA_PLANTATION'", bases),
        ("facilities", "name LIKE '%基地%'", named),
        ("facilities", "closedOn IS NULL AND name LIKE '%基地%'", named),
    ]
    for layer, cql, expected in cases:
        got, matched = ogc_all(app, layer, {"filter": cql}, limit=500)
        assert {f["id"] for f in got} == expected and set(matched) == {len(expected)}, cql
    # a queryable as a query parameter is an equality filter
    got, _ = ogc_all(app, "facilities", {"kind": "VEGETABLE_BASE"}, limit=50)
    assert {f["properties"]["kind"] for f in got} == {"VEGETABLE_BASE"} and got
    bad = [
        ("households", "size >", "filter"),
        ("households", "colour = 'red'", "filter"),
        ("households", "size = 'big'", "filter"),
        ("facilities", "kind = 'SPACEPORT'", "filter"),
        ("facilities", "S_INTERSECTS(geometry, POINT(102 28))", "filter"),
        ("households", "size = siteId", "filter"),
        ("facilities", "siteId LIKE '1%'", "filter"),
    ]
    for layer, cql, name in bad:
        r = app.get(f"/ogc/collections/{layer}/items", params={"filter": cql})
        body = r.json()
        assert r.status_code == 400 and body["code"] == "BAD_USER_INPUT", (cql, body)
        assert body["errors"][0]["extensions"]["field"] == name and "Traceback" not in r.text
    for params, name in [
        ({"filter": "size > 1", "filter-lang": "cql2-json"}, "filter-lang"),
        ({"limit": "0"}, "limit"),
        ({"limit": "lots"}, "limit"),
        ({"datetime": "2024-01-01/2024-02-01"}, "datetime"),
        ({"datetime": "yesterday"}, "datetime"),
        ({"bbox": "1,2,3"}, "bbox"),
        ({"after": "x"}, "after"),
        ({"size": "seven"}, "size"),
        ({"colour": "red"}, "colour"),
        ({"kinds": "SCHOOL"}, "kinds"),
    ]:
        r = app.get("/ogc/collections/households/items", params=params)
        assert r.status_code == 400 and r.json()["errors"][0]["extensions"]["field"] == name, (params, r.text)


def test_ogc_datetime_is_the_layers_as_of(app):  # type: ignore[no-untyped-def]
    on = app.get("/ogc/collections/households/items", params={"datetime": AS_OF, "zeroEmployment": "true", "limit": 1}).json()
    same = app.get(
        "/ogc/collections/households/items", params={"datetime": f"{AS_OF}T08:00:00Z", "zeroEmployment": "true", "limit": 1}
    ).json()
    fc = feature_collection(app, "households", {"asOf": AS_OF, "zeroEmployment": True})
    assert on["numberMatched"] == same["numberMatched"] == fc["numberReturned"] > 0
    # a layer without a date accepts a valid datetime and is unchanged by it
    sites = app.get("/ogc/collections/relocation_sites/items", params={"datetime": AS_OF}).json()
    assert sites["numberMatched"] == app.get("/ogc/collections/relocation_sites/items").json()["numberMatched"]


def test_ogc_landing_conformance_api_and_collections(app):  # type: ignore[no-untyped-def]
    nobody = {"Authorization": ""}

    class Anon:
        def get(self, path: str) -> Any:
            return app.get(path, headers=nobody)

    anon = Anon()
    landing = anon.get("/ogc").json()
    assert {link["rel"] for link in landing["links"]} >= {"self", "service-desc", "conformance", "data"}
    conf = anon.get("/ogc/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conf
    assert "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2" in conf
    doc = anon.get("/ogc/api")
    assert doc.headers["content-type"] == "application/vnd.oai.openapi+json;version=3.0"
    validate(doc.json())  # an independent OpenAPI 3.0 validator
    cols = app.get("/ogc/collections").json()["collections"]
    assert [c["id"] for c in cols] == ["relocation_sites", "facilities", "households", "admin_areas"]
    hh = next(c for c in cols if c["id"] == "households")
    assert "http://www.opengis.net/def/crs/EPSG/0/4490" in hh["crs"]
    assert anon.get("/ogc/collections").status_code == 401
