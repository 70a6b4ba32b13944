"""Chinese basemap coordinate systems at the API boundary: storage stays WGS84 (SRID 4326).

Web maps in China draw on GCJ-02 (AMap, Tencent) or BD-09 (Baidu) tiles, where WGS84 points land
hundreds of metres off. The forward transforms come from the ``coordTransform`` package (the
published GCJ-02 formula; BD-09 on top of it). Its GCJ-02→WGS84 is the usual one-step
approximation (metre-level error); here it is refined by fixed-point iteration on the forward
transform until the round trip agrees to 1e-9° (≈0.1 mm), so GCJ02→WGS84→GCJ02 holds to far under
0.5 m. Outside China (the formula's own bounds) both systems equal WGS84.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import coordTransform as ct


class CoordSys(enum.Enum):
    """Coordinate system of a geometry argument or result."""

    WGS84 = "wgs84"
    GCJ02 = "gcj02"
    BD09 = "bd09"


def _gcj_to_wgs(lng: float, lat: float) -> tuple[float, float]:
    w_lng, w_lat = ct.gcj02_to_wgs84(lng, lat)
    for _ in range(10):
        g_lng, g_lat = ct.wgs84_to_gcj02(w_lng, w_lat)
        d_lng, d_lat = g_lng - lng, g_lat - lat
        w_lng, w_lat = w_lng - d_lng, w_lat - d_lat
        if abs(d_lng) < 1e-9 and abs(d_lat) < 1e-9:
            break
    return w_lng, w_lat


def to_wgs84(lng: float, lat: float, system: CoordSys) -> tuple[float, float]:
    """A position given in ``system`` as WGS84 lon/lat."""
    if system is CoordSys.WGS84 or ct.out_of_china(lng, lat):
        return lng, lat
    if system is CoordSys.BD09:
        lng, lat = ct.bd09_to_gcj02(lng, lat)
    return _gcj_to_wgs(lng, lat)


def from_wgs84(lng: float, lat: float, system: CoordSys) -> tuple[float, float]:
    """A WGS84 lon/lat position expressed in ``system``."""
    if system is CoordSys.WGS84 or ct.out_of_china(lng, lat):
        return lng, lat
    g_lng, g_lat = ct.wgs84_to_gcj02(lng, lat)
    if system is CoordSys.BD09:
        b_lng, b_lat = ct.gcj02_to_bd09(g_lng, g_lat)
        return b_lng, b_lat
    return g_lng, g_lat


def _map_positions(coords: Any, fn: Callable[[float, float], tuple[float, float]]) -> Any:
    if isinstance(coords, list) and coords and isinstance(coords[0], int | float) and not isinstance(coords[0], bool):
        lng, lat = fn(float(coords[0]), float(coords[1]))
        return [round(lng, 6), round(lat, 6), *coords[2:]]
    if isinstance(coords, list):
        return [_map_positions(c, fn) for c in coords]
    return coords


def transform_geojson(obj: Any, fn: Callable[[float, float], tuple[float, float]]) -> Any:
    """A copy of a GeoJSON geometry, Feature or FeatureCollection with every position mapped by ``fn``."""
    if not isinstance(obj, dict):
        return obj
    out = dict(obj)
    if "coordinates" in out:
        out["coordinates"] = _map_positions(out["coordinates"], fn)
    if isinstance(out.get("geometry"), dict):
        out["geometry"] = transform_geojson(out["geometry"], fn)
    if isinstance(out.get("geometries"), list):
        out["geometries"] = [transform_geojson(g, fn) for g in out["geometries"]]
    if isinstance(out.get("features"), list):
        out["features"] = [transform_geojson(f, fn) for f in out["features"]]
    return out


def geojson_to_wgs84(obj: Any, system: CoordSys) -> Any:
    """An input geometry given in ``system``, as WGS84 (unchanged for WGS84).

    Non-numeric positions are left as they are for the geometry checks to refuse.
    """
    if system is CoordSys.WGS84:
        return obj
    try:
        return transform_geojson(obj, lambda x, y: to_wgs84(x, y, system))
    except (TypeError, ValueError, IndexError, OverflowError, RecursionError):
        return obj  # left for the geometry checks to refuse with a proper message


def bbox_to_wgs84(bbox: list[float], system: CoordSys) -> list[float]:
    """A bbox given in ``system`` as the WGS84 bbox of its four converted corners (the shift varies with position.

    So corners are converted one by one and the box grown to hold them all).
    """
    if system is CoordSys.WGS84 or len(bbox) != 4 or not all(isinstance(v, int | float) for v in bbox):
        return bbox
    x0, y0, x1, y1 = bbox
    if x0 > x1:  # crosses the antimeridian: far outside China, where every system is WGS84
        return bbox
    try:
        corners = [to_wgs84(x, y, system) for x in (x0, x1) for y in (y0, y1)]
    except (OverflowError, ValueError):
        return bbox
    xs, ys = [c[0] for c in corners], [c[1] for c in corners]
    if y0 > y1:  # keep the client's own error for the bbox checks to report
        return bbox
    return [min(xs), min(ys), max(xs), max(ys)]


def geojson_from_wgs84(obj: Any, system: CoordSys) -> Any:
    """A stored (WGS84) GeoJSON object expressed in ``system``."""
    if system is CoordSys.WGS84 or obj is None:
        return obj
    return transform_geojson(obj, lambda x, y: from_wgs84(x, y, system))
