"""Input geometry checks (API.md "Bad input"), done before any query or write.

A GeoJSON input must be an RFC 7946 geometry object of an expected type, lon in [-180, 180],
lat in [-90, 90], finite numbers, rings closed with >= 4 positions, valid polygons (no
self-intersection), at most ``max_vertices`` positions, and no legacy ``crs`` member other than
WGS84/CRS84. Violations raise ``InvalidGeometry`` naming the field; nothing is written.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from resolvers.errors import InvalidGeometry

GEOMETRY_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")
WGS84_CRS_NAMES = {
    "urn:ogc:def:crs:OGC:1.3:CRS84",
    "urn:ogc:def:crs:OGC::CRS84",
    "urn:ogc:def:crs:EPSG::4326",
    "EPSG:4326",
    "urn:ogc:def:crs:EPSG:4326",
    "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
    "http://www.opengis.net/def/crs/EPSG/0/4326",
}


def _positions(coords: Any, depth: int, field: str) -> Iterator[Sequence[Any]]:
    if not isinstance(coords, list):
        raise InvalidGeometry(f"{field}: coordinates must be nested arrays of [lon, lat]", field=field)
    if depth == 0:
        yield coords
        return
    for c in coords:
        yield from _positions(c, depth - 1, field)


def check_position(pos: Any, field: str) -> tuple[float, float]:
    """One GeoJSON position: ``[lon, lat]``, two finite numbers, lon in [-180, 180], lat in [-90, 90].

    The one rule of a position: ``parse_geometry`` checks each of a geometry's positions with it, and the roster import
    its dwelling columns (a point: nothing else to check, so no shapely object per row).

    Returns:
        (lon, lat) as floats (degrees, WGS84).

    Raises:
        InvalidGeometry: naming ``field`` and the problem.
    """
    if not isinstance(pos, list) or len(pos) != 2 or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in pos):
        raise InvalidGeometry(f"{field}: a position must be [lon, lat] numbers (no altitude: positions are 2D)", field=field)
    try:
        lon, lat = float(pos[0]), float(pos[1])
    except OverflowError:  # an integer too large for a float
        raise InvalidGeometry(f"{field}: coordinates must be finite numbers", field=field) from None
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise InvalidGeometry(f"{field}: coordinates must be finite numbers", field=field)
    if not -180 <= lon <= 180:
        raise InvalidGeometry(f"{field}: longitude {lon} outside [-180, 180]; positions are [lon, lat]", field=field)
    if not -90 <= lat <= 90:
        raise InvalidGeometry(f"{field}: latitude {lat} outside [-90, 90]; positions are [lon, lat]", field=field)
    return lon, lat


_DEPTH = {"Point": 0, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2, "Polygon": 2, "MultiPolygon": 3}


def parse_geometry(value: Any, field: str, *, allowed: Sequence[str], max_vertices: int = 10_000) -> BaseGeometry:
    """Validate a GeoJSON geometry object and return it as a shapely geometry (lon/lat, SRID 4326).

    Args:
        value: the decoded JSON value of the argument.
        field: the argument's name, used in messages.
        allowed: accepted GeoJSON types, e.g. ("Point",).
        max_vertices: the vertex cap (settings; 10,000 by default).

    Raises:
        InvalidGeometry: (BAD_USER_INPUT) naming ``field`` and the problem.
    """
    if not isinstance(value, dict):
        raise InvalidGeometry(f"{field}: expected a GeoJSON geometry object, got {type(value).__name__}", field=field)
    kind = value.get("type")
    if kind == "GeometryCollection":
        raise InvalidGeometry(f"{field}: a GeometryCollection is not accepted here; expected {' or '.join(allowed)}", field=field)
    if kind not in GEOMETRY_TYPES:
        raise InvalidGeometry(
            f"{field}: type {str(kind)[:30]!r} is not a GeoJSON geometry type; expected {' or '.join(allowed)}", field=field
        )
    if kind not in allowed:
        raise InvalidGeometry(f"{field}: got a {kind}, expected {' or '.join(allowed)}", field=field)
    crs = value.get("crs")
    if crs is not None:
        props = crs.get("properties") if isinstance(crs, dict) else None
        name = props.get("name") if isinstance(props, dict) else None
        if not isinstance(name, str) or name not in WGS84_CRS_NAMES:
            raise InvalidGeometry(
                f"{field}: crs {str(name)[:60]!r} is not WGS84; send RFC 7946 lon/lat (EPSG:4326) without a crs member",
                field=field,
            )
    coords: Any = value.get("coordinates")  # JSON: its shape is checked position by position below
    n = 0
    for pos in _positions(coords, _DEPTH[kind], field):  # fixed depth per type: no unbounded recursion
        n += 1
        if n > max_vertices:
            raise InvalidGeometry(f"{field}: more than {max_vertices} vertices", field=field)
        check_position(pos, field)
    if kind in ("Polygon", "MultiPolygon"):
        polygons = [coords] if kind == "Polygon" else coords
        for poly in polygons:
            if not poly:
                raise InvalidGeometry(f"{field}: a polygon needs an exterior ring", field=field)
            for ring in poly:
                if len(ring) < 4:
                    raise InvalidGeometry(f"{field}: a linear ring needs >= 4 positions", field=field)
                if ring[0][:2] != ring[-1][:2]:
                    raise InvalidGeometry(f"{field}: a linear ring must be closed (first position = last)", field=field)
    if kind in ("LineString",) and len(coords) < 2:
        raise InvalidGeometry(f"{field}: a LineString needs >= 2 positions", field=field)
    try:
        geom = shape(value)
    except (ValueError, TypeError, AttributeError, shapely.errors.GEOSException):
        raise InvalidGeometry(f"{field}: not a readable GeoJSON {kind}", field=field) from None
    if geom.is_empty:
        raise InvalidGeometry(f"{field}: the {kind} is empty", field=field)
    if not geom.is_valid:
        raise InvalidGeometry(f"{field}: invalid {kind} ({shapely.is_valid_reason(geom)})", field=field)
    return geom


CHINA_BOUNDS = (73.4, 3.3, 135.1, 53.6)
"""China's extent (min lon, min lat, max lon, max lat; WGS84 degrees, Nansha Islands to Mohe, Pamirs to the Wusuli):
the bounding box of the national boundary (Ministry of Natural Resources standard map, GS(2019)1822)."""


def china_problem(lon: float, lat: float, field: str) -> InvalidGeometry | None:
    """A location outside China's extent (``CHINA_BOUNDS``), naming swapped longitude and latitude; None when inside.

    A registry place or dwelling lies in China; a point outside its box is a typing error, most often lon/lat swapped
    (28.31, 102.41) or a projected coordinate. The finer check (near its admin area) is ``anju_area_distance``.
    """
    x0, y0, x1, y1 = CHINA_BOUNDS
    if x0 <= lon <= x1 and y0 <= lat <= y1:
        return None
    if x0 <= lat <= x1 and y0 <= lon <= y1:
        return InvalidGeometry(
            f"{field}: ({lon}, {lat}) lies outside China; longitude and latitude look swapped (expected lon {x0}–{x1}, "
            f"lat {y0}–{y1})",
            field=field,
        )
    return InvalidGeometry(
        f"{field}: ({lon}, {lat}) lies outside China (lon {x0}–{x1}, lat {y0}–{y1}, WGS84 decimal degrees)", field=field
    )
