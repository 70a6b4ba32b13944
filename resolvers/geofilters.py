"""Spatial filter building blocks shared by every entity's query.

Bbox, radius (metres), polygon, and the admin-area predicate (code prefix, or the polygon a point lies in). Coordinates
WGS84 lon/lat (SRID 4326); metres on the WGS84 ellipsoid via ``geography``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import shapely
from geoalchemy2 import Geography, Geometry
from shapely.geometry.base import BaseGeometry
from sqlalchemy import ColumnElement, LargeBinary, and_, func, literal, or_

import models as m
from resolvers.errors import InvalidInput
from resolvers.geometry import parse_geometry
from resolvers.query import area_code_prefix, check_text_arg, contains_pattern, under_area

MAX_RADIUS_METERS = 1_000_000.0
"""Largest radius accepted (1,000 km): a province is ~1,000 km across."""


class BBox(NamedTuple):
    """minx, miny, maxx, maxy = minLon, minLat, maxLon, maxLat (SRID 4326); minx > maxx crosses the antimeridian."""

    minx: float
    miny: float
    maxx: float
    maxy: float


def parse_bbox(values: Sequence[float] | None, field: str = "bbox") -> BBox | None:
    """Validate ``[minLon, minLat, maxLon, maxLat]`` (RFC 7946 §5).

    Raises:
        InvalidInput: not 4 finite numbers, lon/lat out of range, or minLat > maxLat (names ``field``).
    """
    if values is None:
        return None
    form = "expected [minLon, minLat, maxLon, maxLat] in SRID 4326"
    if len(values) != 4:
        raise InvalidInput(f"{field}: {len(values)} numbers; {form}", field=field)
    if not all(math.isfinite(v) for v in values):
        raise InvalidInput(f"{field}: numbers must be finite; {form}", field=field)
    b = BBox(*map(float, values))
    for v in (b.minx, b.maxx):
        if not -180 <= v <= 180:
            raise InvalidInput(f"{field}: longitude {v} outside [-180, 180]; {form}", field=field)
    for v in (b.miny, b.maxy):
        if not -90 <= v <= 90:
            raise InvalidInput(f"{field}: latitude {v} outside [-90, 90]; {form}", field=field)
    if b.miny > b.maxy:
        raise InvalidInput(f"{field}: minLat {b.miny} > maxLat {b.maxy}; {form}", field=field)
    return b


def _box(col: Any, minx: float, miny: float, maxx: float, maxy: float) -> ColumnElement[bool]:
    env = func.ST_MakeEnvelope(minx, miny, maxx, maxy, m.SRID)
    if getattr(getattr(col, "type", None), "geometry_type", None) == "POINT":
        # ``&&`` uses the index (float4 boxes, rounded outwards); the coordinates make it exact.
        return and_(col.op("&&")(env), func.ST_X(col).between(minx, maxx), func.ST_Y(col).between(miny, maxy))
    return func.ST_Intersects(col, env)


def bbox_condition(col: Any, b: BBox) -> ColumnElement[bool]:
    """The geometry lies in or touches the box (index-assisted and exact.

    No point just outside); a box crossing the antimeridian is two envelopes.
    """
    if b.minx <= b.maxx:
        return _box(col, b.minx, b.miny, b.maxx, b.maxy)
    return or_(_box(col, b.minx, b.miny, 180, b.maxy), _box(col, -180, b.miny, b.maxx, b.maxy))


@dataclass(frozen=True)
class Near:
    """A point (WGS84) and a radius in metres."""

    point: BaseGeometry
    radius_meters: float


def parse_near(point: Any, radius_meters: float, field: str = "near", *, max_vertices: int = 10_000) -> Near:
    """Validate a NearInput. Raises InvalidInput / InvalidGeometry naming ``<field>.point`` or ``.radiusMeters``."""
    if not math.isfinite(radius_meters) or radius_meters <= 0 or radius_meters > MAX_RADIUS_METERS:
        raise InvalidInput(
            f"{field}.radiusMeters: {radius_meters} outside (0, {MAX_RADIUS_METERS:.0f}] metres", field=f"{field}.radiusMeters"
        )
    geom = parse_geometry(point, f"{field}.point", allowed=("Point",), max_vertices=max_vertices)
    return Near(geom, float(radius_meters))


def point_param(geom: BaseGeometry) -> Any:
    """A bound geometry parameter (WKB, SRID 4326)."""
    return func.ST_GeomFromWKB(literal(shapely.to_wkb(geom), LargeBinary), m.SRID, type_=Geometry)


def geog(expr: Any) -> Any:
    """``geography(expr)``: the same expression as the geography indexes of migration 0004 (metres)."""
    return func.geography(expr, type_=Geography)


def within(col: Any, near: Near) -> ColumnElement[bool]:
    """``ST_DWithin(col::geography, point::geography, metres)`` (geography index, migration 0004)."""
    return func.ST_DWithin(geog(col), geog(point_param(near.point)), near.radius_meters)


def area_condition(code_col: Any, code: str, field: str) -> ColumnElement[bool]:
    """The area and everything below it.

    Rows whose admin code starts with the area's code prefix; for tables of points that carry ``located_code`` (sites,
    facilities, households), also the points lying in the area's polygon though coded elsewhere. ``located_code`` is the most
    specific area whose polygon contains the point, kept by a trigger (migration 0006), so both halves are index lookups.

    Admin areas themselves are "under an area" by code only (the area and its descendants by code prefix), never by polygon: a
    polygon test would also match the neighbours whose borders touch the area's, and the areas containing it.

    Args:
        code_col: the admin-code column of the filtered table (``admin_code``, or ``admin_area.code``).
        code: the area's code (6, 9 or 12 digits).
        field: the argument's name, used in messages.

    Returns:
        A SQL predicate to AND into the query.

    Raises:
        InvalidInput: malformed code (names ``field``).
    """
    prefix = area_code_prefix(code, field)
    table = code_col.table
    by_code = under_area(code_col, code, field)
    if "located_code" in table.c:
        return or_(by_code, table.c.located_code.like(prefix + "%"))
    return by_code


@dataclass(frozen=True)
class SpatialFilter:
    """The spatial members of Site/Facility/HouseholdFilter, validated (AND-combined)."""

    bbox: BBox | None = None
    near: Near | None = None
    intersects: BaseGeometry | None = None

    def conditions(self, col: Any) -> list[ColumnElement[bool]]:
        """SQL conditions on the geometry column ``col`` (SRID 4326), one per member that is set."""
        out: list[ColumnElement[bool]] = []
        if self.bbox is not None:
            out.append(bbox_condition(col, self.bbox))
        if self.near is not None:
            out.append(within(col, self.near))
        if self.intersects is not None:
            out.append(func.ST_Intersects(col, point_param(self.intersects)))
        return out


@dataclass(frozen=True)
class PlaceFilter:
    """The filter members shared by relocation sites and facilities (named places with a location).

    Exact name, name substring, admin area (code or polygon) and the spatial members.
    """

    name: str | None = None
    name_contains: str | None = None
    area_code: str | None = None
    spatial: SpatialFilter | None = None

    def conditions(self, name_col: Any, code_col: Any, geom_col: Any) -> list[ColumnElement[bool]]:
        """SQL predicates (to AND) for these members. Raises InvalidInput naming a malformed member."""
        out: list[ColumnElement[bool]] = []
        if self.name is not None:
            out.append(name_col == check_text_arg(self.name, "filter.name"))
        if self.name_contains is not None:
            out.append(name_col.ilike(contains_pattern(self.name_contains, "filter.nameContains")))
        if self.area_code is not None:
            out.append(area_condition(code_col, self.area_code, "filter.areaCode"))
        if self.spatial is not None:
            out.extend(self.spatial.conditions(geom_col))
        return out
