"""Spatial benchmark (issue: spatial queries and map layers): run ``anju seed --scale sichuan`` first,
then ``.venv/bin/python -m bench.spatial``. p50/p95 and requests/s through the full HTTP stack beside
the same SQL run directly, for a 2,000-feature featureCollection in a bbox, nearestFacilities k=5,
householdsBeyond(5000 m) for one county, and a z10 vector tile."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from bench.common import Case, main, run_cases
from resolvers import layers
from resolvers.access import scoped_sessionmaker

SEAT = (102.410818, 28.31002)  # Xide county seat (data/liangshan/county_seats.csv)


def record_tile(layer: str, z: int, x: int, y: int) -> Any:
    """``Case.record_with`` for a tile: the tile's SQL in the asking viewer's scope."""
    entry = layers.LAYERS[layer]

    def record(sm: Any, viewer: Any) -> Any:
        args = layers.layer_args(entry, today=dt.date.today())
        return layers.tile(
            scoped_sessionmaker(sm, viewer), [(entry, args)], viewer, z, x, y, max_features=10000, cluster_below_zoom=12
        )

    return record


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    return (int((lon + 180.0) / 360.0 * n), int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n))


async def run() -> None:
    x, y = tile_of(*SEAT, 10)
    cases = [
        Case(
            "featureCollection HOUSEHOLDS, bbox, zoom 13, 2,000 features",
            "{ featureCollection(layer: HOUSEHOLDS, bbox: [101.8, 27.6, 103.0, 28.6], zoom: 13, limit: 2000) }",
        ),
        Case(
            "nearestFacilities k=5",
            '{ nearestFacilities(point: {type: "Point", coordinates: [102.41, 28.31]}, k: 5) '
            "{ distanceMeters facility { id name kind } } }",
        ),
        Case(
            "householdsBeyond 5000 m of workshops/parks/factories, one county (Xide)",
            "{ householdsBeyond(distanceMeters: 5000, ofKinds: [ASSISTANCE_WORKSHOP, INDUSTRIAL_PARK, COMMUNITY_FACTORY], "
            'areaCode: "513432", first: 100) { totalCount nodes { id code } } }',
        ),
        Case(
            f"vector tile households z10 ({x}/{y})",
            path=f"/tiles/households/10/{x}/{y}.mvt",
            record_with=record_tile("households", 10, x, y),
        ),
    ]
    await run_cases("spatial", "Spatial benchmark (bench/spatial.py)", cases)


if __name__ == "__main__":
    main(run())
