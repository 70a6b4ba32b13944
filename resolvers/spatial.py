"""Spatial queries.

Bbox / radius / polygon filters, nearest facilities, proximity of sites, households beyond a distance of any job, and map layers
(GeoJSON FeatureCollections, vector tiles).

Units: coordinates are WGS84 lon/lat (SRID 4326); every distance is metres on the WGS84 ellipsoid
(PostGIS ``geography``); radius search uses ``ST_DWithin(col::geography, …)`` backed by the
geography GiST indexes of migration 0004.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shapely.geometry.base import BaseGeometry
from sqlalchemy import ColumnElement, Text, and_, cast, func, literal, null, select, text, true
from sqlalchemy.dialects.postgresql import JSON

import models as m
from resolvers.errors import InvalidInput
from resolvers.facilities import facility_select, open_on
from resolvers.geofilters import BBox, area_condition, bbox_condition, geog, point_param
from resolvers.households import household_select, zero_employment
from resolvers.paging import Page, PageArgs
from resolvers.query import AnySelect, SessionMaker, fetch_page, geojson
from resolvers.rows import FacilityRow, HouseholdRow

F, H, S, A = m.Facility, m.Household, m.RelocationSite, m.AdminArea
MAX_COMMUTE_METERS = 50_000.0
"""Largest distance householdsBeyond accepts: beyond 50 km no one commutes daily, and the anti-join's
cost grows with the distance."""


# --------------------------------------------------------------------------- proximity


@dataclass(frozen=True, slots=True)
class FacilityDistance:
    """A facility row and its geodesic distance in metres."""

    facility: FacilityRow
    distance_meters: float


async def nearest_facilities(
    sm: SessionMaker,
    point: BaseGeometry,
    kinds: Sequence[m.FacilityKind] | None,
    k: int,
    as_of: dt.date,
) -> list[FacilityDistance]:
    """The ``k`` facilities open on ``as_of`` nearest to ``point`` by geodesic distance (WGS84 ellipsoid), ties by id.

    Exact, in one statement: the ``<->`` index operator finds k candidates; the farthest candidate's
    geodesic distance r bounds the true k nearest, which are then all rows within r
    (``ST_DWithin`` on geography, indexed), re-ranked by ``ST_Distance(geography)``.

    Raises:
        InvalidInput: k outside 1..100.
    """
    if not 1 <= k <= 100:
        raise InvalidInput(f"k: {k} outside 1..100", field="k")
    pt = point_param(point)
    kind_cond = and_(F.kind.in_(list(kinds)) if kinds else literal(True), open_on(as_of))
    cand = select(F.location).where(kind_cond).order_by(F.location.op("<->")(pt)).limit(k).subquery()
    # + 1 m: ST_DWithin and ST_Distance round differently at the very boundary; extra rows are re-ranked away.
    radius = select(func.max(func.ST_Distance(geog(cand.c.location), geog(pt))) + 1.0).scalar_subquery()
    dist = func.ST_Distance(geog(F.location), geog(pt)).label("distance_meters")
    q = (
        facility_select()
        .add_columns(dist)
        .where(kind_cond, func.ST_DWithin(geog(F.location), geog(pt), radius))
        .order_by(dist, F.id)
        .limit(k)
    )
    async with sm() as s:
        return [FacilityDistance(FacilityRow.of(r), float(r.distance_meters)) for r in await s.execute(q)]


async def nearby_facilities_by_site_ids(
    sm: SessionMaker,
    keys: Sequence[tuple[int, float, tuple[m.FacilityKind, ...] | None, int, dt.date]],
) -> list[list[FacilityDistance]]:
    """Batch: for each (site id, radius in metres, kinds, first, date) the ``first`` nearest facilities open on the date.

    Within the radius of the site's location, nearest first (geodesic metres). One statement per distinct (radius, kinds,
    first, date), a LATERAL per site.
    """
    groups: dict[tuple[float, Any, int, dt.date], list[int]] = {}
    for sid, r, kinds, first, as_of in keys:
        groups.setdefault((r, kinds, first, as_of), []).append(sid)
    out: dict[tuple[int, float, Any, int, dt.date], list[FacilityDistance]] = {}
    async with sm() as s:
        for (r, kinds, first, as_of), sids in groups.items():
            site = select(S.id, S.location).where(S.id.in_(list(set(sids)))).subquery("s")
            dist = func.ST_Distance(geog(F.location), geog(site.c.location)).label("distance_meters")
            conds: list[ColumnElement[bool]] = [func.ST_DWithin(geog(F.location), geog(site.c.location), r), open_on(as_of)]
            if kinds:
                conds.append(F.kind.in_(list(kinds)))
            near = facility_select().add_columns(dist).where(*conds).order_by(dist, F.id).limit(first).lateral("n")
            q = (
                select(site.c.id.label("_site"), near)
                .select_from(site.join(near, true()))
                .order_by(site.c.id, near.c.distance_meters, near.c.id)
            )
            for row in await s.execute(q):
                out.setdefault((row._mapping["_site"], r, kinds, first, as_of), []).append(
                    FacilityDistance(FacilityRow.of(row), float(row.distance_meters))
                )
    return [out.get(k, []) for k in keys]


NEAREST_BY_KIND_SQL = """
SELECT s.id AS _site, kk.kind AS _kind, best.id, best.distance_meters
FROM relocation_site s
CROSS JOIN unnest(CAST(:kinds AS facility_kind[])) AS kk(kind)
CROSS JOIN LATERAL (
    SELECT ST_Distance(geography(f.location), geography(s.location)) AS r
    FROM facility f WHERE f.kind = kk.kind AND anju_open_on(f.opened_on, f.closed_on, :as_of)
    ORDER BY f.location <-> s.location LIMIT 1) c
CROSS JOIN LATERAL (
    SELECT f.id, ST_Distance(geography(f.location), geography(s.location)) AS distance_meters
    FROM facility f
    WHERE f.kind = kk.kind AND anju_open_on(f.opened_on, f.closed_on, :as_of)
      AND ST_DWithin(geography(f.location), geography(s.location), c.r + 1.0)
    ORDER BY distance_meters, f.id LIMIT 1) best
WHERE s.id = ANY(CAST(:ids AS bigint[]))
ORDER BY s.id, kk.kind
"""


async def nearest_by_kind_by_site_ids(
    sm: SessionMaker,
    keys: Sequence[tuple[int, tuple[m.FacilityKind, ...], dt.date]],
) -> list[list[tuple[int, float]]]:
    """Batch: for each (site id, kinds, date) the nearest facility of each kind open on the date.

    As (facility id, geodesic metres), in kind order; kinds without an open facility are left out. Exact as
    ``nearest_facilities`` (k = 1 per kind); "open" is ``anju_open_on`` (``resolvers.facilities.open_on``).
    """
    groups: dict[tuple[tuple[m.FacilityKind, ...], dt.date], list[int]] = {}
    for sid, kinds, as_of in keys:
        groups.setdefault((kinds, as_of), []).append(sid)
    out: dict[tuple[int, Any, dt.date], list[tuple[int, float]]] = {}
    async with sm() as s:
        for (kinds, as_of), sids in groups.items():
            params = {"kinds": [k.value for k in kinds], "ids": list(set(sids)), "as_of": as_of}
            for r in await s.execute(text(NEAREST_BY_KIND_SQL), params):
                out.setdefault((r._mapping["_site"], kinds, as_of), []).append((int(r.id), float(r.distance_meters)))
    return [out.get(key, []) for key in keys]


async def households_beyond(
    sm: SessionMaker,
    args: PageArgs,
    *,
    distance_meters: float,
    kinds: Sequence[m.FacilityKind],
    as_of: dt.date,
    site_id: int | None = None,
    area_code: str | None = None,
) -> Page[HouseholdRow]:
    """Households whose dwelling lies farther than ``distance_meters`` (geodesic) from every open facility of ``kinds``.

    Open: on ``as_of`` (``resolvers.facilities.open_on``).

    "no job within commuting distance" — as one anti-join (NOT EXISTS + ST_DWithin), by id. Households without a dwelling point
    (NULL or empty) are not listed: their location is unknown.

    Raises:
        InvalidInput: distance outside (0, 50 km]; no kinds; malformed areaCode.
    """
    if not math.isfinite(distance_meters) or not 0 < distance_meters <= MAX_COMMUTE_METERS:
        raise InvalidInput(
            f"distanceMeters: {distance_meters} outside (0, {MAX_COMMUTE_METERS:.0f}] metres (a commuting distance)",
            field="distanceMeters",
        )
    if not kinds:
        raise InvalidInput("ofKinds: give at least one facility kind", field="ofKinds")
    near_any = (
        select(literal(1))
        .where(F.kind.in_(list(kinds)), open_on(as_of), func.ST_DWithin(geog(F.location), geog(H.dwelling), distance_meters))
        .correlate(H)
        .exists()
    )
    # no known location (no dwelling, or an empty one): not "beyond" anything
    q = household_select().where(H.dwelling.is_not(None), ~func.ST_IsEmpty(H.dwelling), ~near_any)
    if site_id is not None:
        q = q.where(H.site_id == site_id)
    if area_code is not None:
        q = q.where(area_condition(H.admin_code, area_code, "areaCode"))
    return await fetch_page(sm, q, H.id, args, kind="household", build=HouseholdRow.of)


# --------------------------------------------------------------------------- map layers

LAYERS = ("relocation_sites", "facilities", "households", "admin_areas")
POINT_LAYERS = ("facilities", "households")


@dataclass(frozen=True)
class LayerFilter:
    """Optional narrowing of a map layer: area (code or polygon), site, facility kinds."""

    area_code: str | None = None
    site_id: int | None = None
    kinds: tuple[m.FacilityKind, ...] | None = None


def _shown(enum_col: Any) -> ColumnElement[str]:
    """An enum column's value as GraphQL shows it (``TRAINING_BASE``)."""
    return func.upper(cast(enum_col, Text))


def _layer_select(id_col: Any, geom: Any, **props: Any) -> AnySelect:
    """Select of a layer's features: ``id``, ``geom`` and ``props`` (a JSON object of ``props``, in their order)."""
    pairs = [x for name, value in props.items() for x in (name, value)]
    return select(id_col.label("id"), geom.label("geom"), func.json_build_object(*pairs).label("props"))


def _layer_source(layer: str, f: LayerFilter | None, as_of: Any, household_counts: bool = True) -> tuple[AnySelect, Any]:
    """(select of id + geom + display properties, geometry column) for a layer.

    No personal data: households expose id, site id, size and the zero-employment flag only. Enum values are shown as in GraphQL
    (``TRAINING_BASE``). Sites carry their household count (of the households the viewer may see) only when ``household_counts``
    (not for partner viewers: a count per site is a small cell).
    """
    f = f or LayerFilter()
    site_col: Any = None
    if layer == "relocation_sites":
        households = select(func.count()).where(H.site_id == S.id).correlate(S).scalar_subquery() if household_counts else null()
        q = _layer_select(S.id, S.location, name=S.name, kind=_shown(S.kind), households=households)
        geom, code_col, site_col = S.location, S.admin_code, S.id
    elif layer == "facilities":
        q = _layer_select(F.id, F.location, name=F.name, kind=_shown(F.kind), siteId=F.site_id, closedOn=F.closed_on)
        geom, code_col, site_col = F.location, F.admin_code, F.site_id
        if f.kinds:
            q = q.where(F.kind.in_(list(f.kinds)))
    elif layer == "households":
        q = _layer_select(H.id, H.dwelling, siteId=H.site_id, size=H.member_count, zeroEmployment=zero_employment(as_of)).where(
            H.dwelling.is_not(None)
        )
        geom, code_col, site_col = H.dwelling, H.admin_code, H.site_id
    elif layer == "admin_areas":
        q = _layer_select(A.code, A.geom, code=A.code, name=A.name, level=_shown(A.level)).where(A.geom.is_not(None))
        geom, code_col = A.geom, A.code
    else:
        raise InvalidInput(f"layer: {layer!r} is not one of {', '.join(LAYERS)}", field="layer")
    if f.site_id is not None and site_col is not None:
        q = q.where(site_col == f.site_id)
    if f.area_code is not None:
        q = q.where(area_condition(code_col, f.area_code, "filter.areaCode"))
    return q, geom


def _pixel_degrees(zoom: int) -> float:
    """Degrees of longitude per 256-px-tile pixel at ``zoom`` (Web Mercator tiling)."""
    return 360.0 / (256 * 2**zoom)


async def feature_collection(
    sm: SessionMaker,
    layer: str,
    *,
    bbox: BBox | None,
    zoom: int | None,
    f: LayerFilter | None,
    limit: int,
    max_limit: int,
    cluster_below_zoom: int,
    as_of: Any,
    household_counts: bool = True,
) -> Any:
    """An RFC 7946 FeatureCollection of ``layer``, built by PostGIS in one statement.

    Polygons are simplified to about a pixel at ``zoom`` (ST_SimplifyPreserveTopology), coordinates
    cut to 6 decimals, rings counter-clockwise. Below ``cluster_below_zoom`` the point layers come
    back clustered on a zoom-anchored grid of 64-px cells: one Point feature per cell at the mean of
    its points, ``properties: {cluster: true, count}``.

    Returns:
        dict {"type": "FeatureCollection", "features": [...]} (at most ``limit`` features).

    Raises:
        InvalidInput: unknown layer, limit outside 1..max_limit, zoom outside 0..22, bad filter.
    """
    if not 1 <= limit <= max_limit:
        raise InvalidInput(f"limit: {limit} outside 1..{max_limit}", field="limit")
    if zoom is not None and not 0 <= zoom <= 22:
        raise InvalidInput(f"zoom: {zoom} outside 0..22", field="zoom")
    src, geom_col = _layer_source(layer, f, as_of, household_counts)
    if bbox is not None:
        src = src.where(bbox_condition(geom_col, bbox))
    clustered = layer in POINT_LAYERS and zoom is not None and zoom < cluster_below_zoom
    if clustered:
        cell = 64 * _pixel_degrees(zoom or 0)
        inner = src.where(~func.ST_IsEmpty(geom_col)).subquery()  # an empty point lies in no cell
        snapped = func.ST_SnapToGrid(inner.c.geom, cell)
        grouped = (
            select(
                func.concat("cluster-", func.min(inner.c.id)).label("id"),
                func.ST_Centroid(func.ST_Collect(inner.c.geom)).label("geom"),
                func.json_build_object("cluster", True, "count", func.count()).label("props"),
            )
            .group_by(snapped)
            .order_by(func.count().desc(), func.min(inner.c.id))
            .limit(limit)
        )
        rows = grouped.subquery()
    else:
        rows = src.order_by(text("id")).limit(limit).subquery()
    g: ColumnElement[Any] = rows.c.geom
    if layer in ("admin_areas",) and zoom is not None:
        # Simplification keeps each polygon valid but may nest a MultiPolygon's parts: repair, keep polygons.
        g = func.ST_CollectionExtract(func.ST_MakeValid(func.ST_SimplifyPreserveTopology(g, _pixel_degrees(zoom))), 3)
    if layer == "admin_areas":
        g = func.ST_ForcePolygonCCW(g)
    feature = func.json_build_object(
        "type", "Feature", "id", rows.c.id, "geometry", cast(geojson(g), JSON), "properties", rows.c.props
    )
    q = select(
        func.json_build_object(
            "type", "FeatureCollection", "features", func.coalesce(func.json_agg(feature), text("'[]'::json")), type_=JSON
        )
    )
    async with sm() as s:
        return await s.scalar(q)


TILE_SQL = """
WITH bounds AS (
    SELECT ST_TileEnvelope(:z, :x, :y) AS env,
           ST_Transform(ST_TileEnvelope(:z, :x, :y), 4326) AS inner_q,
           ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => 0.0625), 4326) AS q
),
features AS (
    SELECT ST_AsMVTGeom(ST_Transform(src.{geom}, 3857), bounds.env, 4096, 256, true) AS mvt_geom,
           src.{geom} && bounds.inner_q AS inside, {props}
    FROM {table} src, bounds
    WHERE src.{geom} && bounds.q AND NOT ST_IsEmpty(src.{geom}) {where}
),
kept AS (
    -- features inside the tile first; the 256-px buffer only as room allows
    SELECT mvt_geom, {names} FROM features WHERE mvt_geom IS NOT NULL ORDER BY inside DESC LIMIT :max_features
)
SELECT ST_AsMVT(kept.*, :layer, 4096, 'mvt_geom') FROM kept
"""

# layer -> (table, geometry column, property expressions, their names, extra condition); allow-listed only.
TILE_SOURCES = {
    "relocation_sites": ("relocation_site", "location", "src.id, src.name, upper(src.kind::text) AS kind", "id, name, kind", ""),
    "facilities": (
        "facility",
        "location",
        "src.id, src.name, upper(src.kind::text) AS kind, src.site_id",
        "id, name, kind, site_id",
        "",
    ),
    "households": ("household", "dwelling", "src.id, src.site_id, src.member_count AS size", "id, site_id, size", ""),
    "admin_areas": ("admin_area", "geom", "src.code, src.name, upper(src.level::text) AS level", "code, name, level", ""),
}


def check_tile(layer: str, z: int, x: int, y: int) -> None:
    """Raises InvalidInput for an unknown layer or z/x/y outside the tile pyramid (z 0..22, x/y < 2^z)."""
    if layer not in TILE_SOURCES:
        raise InvalidInput(f"layer: {layer[:40]!r} is not one of {', '.join(TILE_SOURCES)}", field="layer")
    if not 0 <= z <= 22:
        raise InvalidInput(f"z: {z} outside 0..22", field="z")
    if not (0 <= x < 2**z and 0 <= y < 2**z):
        raise InvalidInput(f"x/y: {x}/{y} outside 0..{2**z - 1} at zoom {z}", field="xy")


async def tile(sm: SessionMaker, layer: str, z: int, x: int, y: int, *, max_features: int) -> bytes:
    """A Mapbox Vector Tile of ``layer`` (layer name = the MapLayer name in lower case).

    Built by ``ST_AsMVT`` over ``ST_AsMVTGeom(ST_Transform(geom, 3857), ST_TileEnvelope(z, x, y), 4096, 256)``; empty bytes when
    the tile holds nothing. Raises InvalidInput (see ``check_tile``).
    """
    check_tile(layer, z, x, y)
    table, geom, props, names, where = TILE_SOURCES[layer]
    q = text(TILE_SQL.format(table=table, geom=geom, props=props, names=names, where=where))
    async with sm() as s:
        data = await s.scalar(q, {"z": z, "x": x, "y": y, "layer": layer, "max_features": max_features})
    return bytes(data or b"")
