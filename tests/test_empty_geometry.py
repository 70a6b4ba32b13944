"""Empty geometries (``POINT EMPTY``, possible through SQL or an import) have no location: they are
served as null — GeoJSON fields and FeatureCollection features (RFC 7946 §3.2 allows a null geometry)
— left out of tiles and clusters, and a household with an empty dwelling is not "beyond" any job."""

from __future__ import annotations

import datetime as dt
import math

import mapbox_vector_tile
import pytest
from geojson_pydantic import FeatureCollection
from pyproj import Geod
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker

from resolvers import layers
from tests import handbuilt
from tests.conftest import ADMIN, admin_runner

NAME = "anju_test_empty_geometry"
GEOD = Geod(ellps="WGS84")
FACILITY = (102.41, 28.31)  # both fixture facilities (tests/handbuilt.py)
NEAR, FAR = (102.41, 28.31), (102.30, 28.20)


@pytest.fixture(scope="module")
async def eg(settings, schema):  # type: ignore[no-untyped-def]
    eng, ids = await handbuilt.build(settings, NAME)
    async with eng.begin() as c:
        point = "ST_SetSRID(ST_MakePoint(:x, :y), 4326)"
        await c.execute(
            text(f"UPDATE household SET dwelling = {point} WHERE id = :i"), {"i": ids["h1"], "x": FAR[0], "y": FAR[1]}
        )
        await c.execute(
            text(f"UPDATE household SET dwelling = {point} WHERE id = :i"), {"i": ids["h2"], "x": NEAR[0], "y": NEAR[1]}
        )
        await c.execute(text("UPDATE household SET dwelling = 'SRID=4326;POINT EMPTY' WHERE id = :i"), {"i": ids["h3"]})
        await c.execute(
            text("UPDATE relocation_site SET boundary = 'SRID=4326;MULTIPOLYGON EMPTY' WHERE id = :i"), {"i": ids["S1"]}
        )
        await c.execute(text("UPDATE facility SET footprint = 'SRID=4326;MULTIPOLYGON EMPTY' WHERE id = :i"), {"i": ids["F1"]})
        await c.execute(text("UPDATE employment SET workplace = 'SRID=4326;POINT EMPTY' WHERE member_id = :m"), {"m": ids["g"]})
    sm = async_sessionmaker(eng, expire_on_commit=False)

    run = admin_runner(schema, sm, settings, data_only=True)

    yield run, ids, sm
    await eng.dispose()


async def test_empty_geometry_fields_are_null(eg):  # type: ignore[no-untyped-def]
    run, ids, _ = eg
    d = await run(
        "query($h: ID!, $g: ID!, $s: ID!, $f: ID!) { household(id: $h) { dwelling } near: household(id: $g) { dwelling } "
        "relocationSite(id: $s) { boundary location } facility(id: $f) { footprint location } "
        "worker: household(id: $w) { employments { workplace } } }".replace("$w", '"' + str(ids["h6"]) + '"'),
        h=str(ids["h3"]),
        g=str(ids["h2"]),
        s=str(ids["S1"]),
        f=str(ids["F1"]),
    )
    assert d["household"] == {"dwelling": None}
    assert d["near"] == {"dwelling": {"type": "Point", "coordinates": list(NEAR)}}
    assert d["relocationSite"] == {"boundary": None, "location": {"type": "Point", "coordinates": list(FACILITY)}}
    assert d["facility"] == {"footprint": None, "location": {"type": "Point", "coordinates": list(FACILITY)}}
    assert {None} == {e["workplace"] for e in d["worker"]["employments"]}


async def test_feature_collection_leaves_an_empty_geometry_out(eg):  # type: ignore[no-untyped-def]
    """A map layer holds what can be drawn, the same in featureCollection, tiles and OGC items (the layer registry)."""
    run, ids, _ = eg
    fc = (await run("{ featureCollection(layer: HOUSEHOLDS) }"))["featureCollection"]
    FeatureCollection.model_validate(fc)  # an independent RFC 7946 validator
    geometries = {f["id"]: f["geometry"] for f in fc["features"]}
    assert geometries == {
        ids["h1"]: {"type": "Point", "coordinates": list(FAR)},
        ids["h2"]: {"type": "Point", "coordinates": list(NEAR)},
    }
    # clustered, an empty point lies in no cell: the clusters hold the two located households
    fc = (await run("{ featureCollection(layer: HOUSEHOLDS, zoom: 3) }"))["featureCollection"]
    FeatureCollection.model_validate(fc)
    assert sum(f["properties"]["point_count"] for f in fc["features"]) == 2
    assert all(f["geometry"] is not None for f in fc["features"])


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


async def test_tiles_leave_empty_geometries_out(eg):  # type: ignore[no-untyped-def]
    _, ids, sm = eg
    z = 7
    x, y = _tile_of(*NEAR, z)
    assert _tile_of(*FAR, z) == (x, y)
    hh = layers.LAYERS["households"]
    tile = await layers.tile(
        sm, [(hh, layers.layer_args(hh, today=dt.date.today()))], ADMIN, z, x, y, max_features=100, cluster_below_zoom=0
    )
    decoded = mapbox_vector_tile.decode(tile)
    assert sorted(f["id"] for f in decoded["households"]["features"]) == sorted([ids["h1"], ids["h2"]])


async def test_households_beyond_leaves_out_households_without_a_location(eg):  # type: ignore[no-untyped-def]
    run, ids, _ = eg
    distance = 10_000
    # computed apart: geodesic distances from each located dwelling to the fixture facilities
    far = GEOD.inv(*FAR, *FACILITY)[2]
    near = GEOD.inv(*NEAR, *FACILITY)[2]
    assert near < distance < far
    d = await run(
        "query($d: Float!) { householdsBeyond(distanceMeters: $d, ofKinds: [ASSISTANCE_WORKSHOP, VEGETABLE_BASE]) "
        "{ totalCount nodes { id } } }",
        d=distance,
    )
    assert d["householdsBeyond"] == {"totalCount": 1, "nodes": [{"id": str(ids["h1"])}]}


@pytest.mark.parametrize("table", ["relocation_site", "facility"])
async def test_a_required_location_is_never_empty(eg, table):  # type: ignore[no-untyped-def]
    """A site's or facility's location is required (``GeoJSON!``): the database refuses ``POINT EMPTY`` there."""
    _, ids, sm = eg
    key = {"relocation_site": "S1", "facility": "F1"}[table]
    async with sm() as s:
        with pytest.raises(IntegrityError) as caught:
            async with s.begin():
                await s.execute(text(f"UPDATE {table} SET location = 'SRID=4326;POINT EMPTY' WHERE id = :i"), {"i": ids[key]})
        assert f"ck_{table}_location_not_empty" in str(caught.value.orig)
        still = await s.scalar(text(f"SELECT NOT ST_IsEmpty(location) FROM {table} WHERE id = :i"), {"i": ids[key]})
    assert still is True
