"""GCJ-02 / BD-09 at the API boundary, against published reference pairs and the team's own,
separately written converter (data/liangshan: county seats converted by scripts/gcj.py)."""

from __future__ import annotations

import csv

import pytest
from pyproj import Geod

from resolvers.coords import CoordSys, from_wgs84, to_wgs84
from tests.conftest import DATA

GEOD = Geod(ellps="WGS84")
with (DATA / "liangshan" / "county_seats.csv").open(encoding="utf-8") as _f:
    SEATS = list(csv.DictReader(_f))


def _m(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(GEOD.inv(a[0], a[1], b[0], b[1])[2])


def test_published_reference_pair():
    # gcoord's README example: GCJ-02 (123, 45) is WGS84 (122.99395597, 44.99804071).
    assert _m(to_wgs84(123, 45, CoordSys.GCJ02), (122.99395597, 44.99804071)) < 0.05
    assert _m(from_wgs84(122.99395597, 44.99804071, CoordSys.GCJ02), (123, 45)) < 0.05


@pytest.mark.parametrize("row", SEATS, ids=[r["code"] for r in SEATS])
def test_county_seats_match_independent_converter(row):
    gcj = (float(row["lon_gcj02_src"]), float(row["lat_gcj02_src"]))
    wgs = (float(row["lon_wgs84"]), float(row["lat_wgs84"]))
    assert _m(to_wgs84(*gcj, CoordSys.GCJ02), wgs) < 0.15  # the CSV keeps 6 decimals (≈0.1 m)
    assert _m(from_wgs84(*wgs, CoordSys.GCJ02), gcj) < 0.15


@pytest.mark.parametrize("system", [CoordSys.GCJ02, CoordSys.BD09])
def test_round_trip_within_half_a_metre(system):
    worst = 0.0
    for lon10 in range(740, 1340, 25):  # 74°E .. 134°E
        for lat10 in range(190, 530, 20):  # 19°N .. 53°N
            p = (lon10 / 10, lat10 / 10)
            worst = max(worst, _m(from_wgs84(*to_wgs84(*p, system), system), p))
    assert worst < 0.5


def test_shift_is_hundreds_of_metres_in_liangshan():
    p = (102.410818, 28.31002)
    assert 300 < _m(from_wgs84(*p, CoordSys.GCJ02), p) < 600
    assert 700 < _m(from_wgs84(*p, CoordSys.BD09), p) < 1500


async def test_api_outputs_and_inputs_in_gcj02(gql):  # type: ignore[no-untyped-def]
    xide = next(r for r in SEATS if r["code"] == "513432")
    r = await gql('{ relocationSites(filter: {name: "彝欣社区"}) { nodes { w: location g: location(coordSys: GCJ02) } } }')
    node = r.data["relocationSites"]["nodes"][0]
    # The site's point is Xide's seat; in GCJ-02 it is AMap's own published seat point.
    assert node["g"]["coordinates"] == pytest.approx([float(xide["lon_gcj02_src"]), float(xide["lat_gcj02_src"])], abs=2e-6)
    g = node["g"]["coordinates"]
    same = await gql(
        "query($p: GeoJSON!, $q: GeoJSON!) { w: nearestFacilities(point: $p, k: 2) { distanceMeters } "
        " g: nearestFacilities(point: $q, k: 2, coordSys: GCJ02) { distanceMeters } "
        " r: relocationSites(filter: {near: {point: $q, radiusMeters: 5}, coordSys: GCJ02}) { totalCount } }",
        p=node["w"],
        q={"type": "Point", "coordinates": g},
    )
    assert same.errors is None
    assert [x["distanceMeters"] for x in same.data["g"]] == pytest.approx([x["distanceMeters"] for x in same.data["w"]], abs=0.5)
    assert same.data["r"]["totalCount"] == 1
