"""The map layer registry (issue #12): every map layer declared once, every map output a view over it.

A ``Layer`` names its table, geometry, properties (camelCase, as GraphQL names them), the filters it accepts,
whether it holds personal data and whether its points cluster. Built from it, all in PostgreSQL:

- ``feature_collection_select``: a whole RFC 7946 FeatureCollection as ONE json text value (GraphQL
  ``featureCollection``; the planner passes the text through);
- ``tile_select``: a Mapbox Vector Tile of one or more layers (``/tiles``);
- ``items_select`` / ``item_select``: OGC API Features pages and single features (``/ogc``);
- ``queryables``: the properties a viewer may filter on (OGC queryables, CQL2).

Adding a layer (say, schools) is one ``Layer`` in ``LAYERS`` (plus its test). Coordinates are stored WGS84
(SRID 4326); ``coordSys`` answers are expressed in SQL by ``anju_from_wgs84`` (migrations/sql/coords.sql).
Row scope is the session's (``resolvers.access.scoped_sessionmaker``): every statement here runs under the
viewer's row-level security, so a filter never runs over rows the viewer cannot see.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    Integer,
    LargeBinary,
    Text,
    case,
    cast,
    func,
    literal,
    literal_column,
    null,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by

import models as m
from resolvers.access import Viewer
from resolvers.coords import CoordSys
from resolvers.errors import InvalidInput, OutOfScope
from resolvers.facilities import open_on
from resolvers.geofilters import BBox, area_condition, bbox_condition, parse_bbox
from resolvers.households import zero_employment
from resolvers.query import AnySelect, SessionMaker, check_date, geojson, optional_id

H, F, S, A = m.Household, m.Facility, m.RelocationSite, m.AdminArea

WEB_MERCATOR_HALF = 20037508.342789244
"""Half the Web Mercator (EPSG:3857) world's width in metres: tiles and cluster cells count from -this."""
CLUSTER_CELL_PX = 64
"""Cluster cell side in 256-px tile pixels: 4 × 4 cells per tile, aligned with tile edges."""
TILE_EXTENT, TILE_BUFFER = 4096, 256
"""MVT extent and buffer in tile units."""
SHIFT_MARGIN_DEGREES = 0.02
"""How far (degrees) a GCJ-02/BD-09 position may lie from its WGS84 one (≤ ~1.5 km): rows are fetched this much wider."""

FILTERS = ("areaCode", "siteId", "bbox", "kinds", "zeroEmployment", "asOf")
"""Every filter a layer may accept (GraphQL ``LayerFilter`` members, tile and OGC query parameters of the same names)."""


def _shown(enum_col: Any) -> ColumnElement[str]:
    """An enum column's value as GraphQL shows it (``TRAINING_BASE``)."""
    return func.upper(cast(enum_col, Text))


@dataclass(frozen=True)
class Property:
    """One property of a layer's features: its name (camelCase), JSON type and SQL.

    Attributes:
        name: the property's name in GeoJSON, tiles, OGC items, queryables and CQL2.
        type: JSON Schema type: ``string``, ``integer``, ``number`` or ``boolean``; ``format`` ``date`` for dates.
        description: what it is, with unit.
        sql: the SQL expression over the layer's table, given the layer's date (``asOf``).
        for_partners: partner viewers see it (else null for them, and they cannot filter on it).
        values: the allowed values of an enum-like string (GraphQL enum member names), else None.
        format: JSON Schema ``format`` (``date``) or None.
        zh: the Chinese name, written before ``name`` in export headers (``名称 name``; ``resolvers.exports``).
    """

    name: str
    type: str
    description: str
    sql: Callable[[dt.date], Any]
    for_partners: bool = True
    values: tuple[str, ...] | None = None
    format: str | None = None
    zh: str = ""

    def visible_to(self, viewer: Viewer) -> bool:
        """The viewer may see (and filter on) this property."""
        return self.for_partners or viewer.reads_households

    def column(self, as_of: dt.date, viewer: Viewer) -> ColumnElement[Any]:
        """The SQL value for ``viewer`` (NULL where the viewer may not see it), labelled with the property's name."""
        expr = self.sql(as_of) if self.visible_to(viewer) else null()
        if self.format == "date":  # JSON and MVT have no date: ISO text
            expr = cast(expr, Text)
        return expr.label(self.name)


@dataclass(frozen=True)
class Layer:
    """A map layer, declared once.

    Attributes:
        name: the layer's name in URLs, tiles and OGC (``households``); GraphQL ``MapLayer`` is its upper case.
        title: a human title (OGC collections, TileJSON).
        description: what a feature is.
        model: the table (SQLAlchemy model).
        id: the feature id column (bigint, or an admin area's code).
        geometry: the geometry column (SRID 4326).
        geometry_type: ``Point`` or ``MultiPolygon``.
        properties: the features' properties, in order.
        filters: which of ``FILTERS`` the layer accepts.
        code: the admin-code column ``areaCode`` matches (see ``resolvers.geofilters.area_condition``).
        site: the column ``siteId`` matches, or None.
        personal: holds records about households (partners: ``FORBIDDEN``).
        clusters: points cluster below the clustering zoom (``features.cluster_below_zoom``).
        asof_rule: what ``asOf`` does on this layer (docs).
    """

    name: str
    title: str
    description: str
    model: Any
    id: Any
    geometry: Any
    geometry_type: str
    properties: tuple[Property, ...]
    filters: frozenset[str]
    code: Any
    site: Any = None
    personal: bool = False
    clusters: bool = False
    asof_rule: str = ""
    extra: Callable[[LayerArgs], list[ColumnElement[bool]]] = field(default=lambda a: [])

    @property
    def numeric_ids(self) -> bool:
        """Feature ids are integers (admin areas: digit-string codes)."""
        return self.model is not A

    @property
    def polygon(self) -> bool:
        """Polygons: simplified with ``zoom``, rings counter-clockwise."""
        return self.geometry_type != "Point"

    def prop(self, name: str) -> Property | None:
        """The property ``name``, or None."""
        return next((p for p in self.properties if p.name == name), None)

    def check_viewer(self, viewer: Viewer) -> None:
        """Raises OutOfScope (FORBIDDEN) when the viewer has no business with this layer (partners and households)."""
        if self.personal and not viewer.reads_households:
            raise OutOfScope(f"layer: {self.name} are household records, not available to partner viewers", field="layer")

    def visible_properties(self, viewer: Viewer) -> list[Property]:
        """The properties ``viewer`` may see and filter on."""
        return [p for p in self.properties if p.visible_to(viewer)]


@dataclass(frozen=True)
class LayerArgs:
    """A layer's filters, validated (members combine with AND).

    Attributes:
        as_of: the layer's date (``asOf``; today when not given, Asia/Shanghai).
        as_of_given: ``asOf`` was given explicitly (facilities: then only those open on it).
        area_code: the area and everything below it (``resolvers.geofilters.area_condition``).
        site_id: features of this relocation site.
        bbox: WGS84 [minLon, minLat, maxLon, maxLat]; features intersecting it.
        kinds: facility kinds.
        zero_employment: households zero-employment on ``as_of`` (true) or not (false).
        where: further SQL conditions over the layer's table (compiled CQL2).
    """

    as_of: dt.date
    as_of_given: bool = False
    area_code: str | None = None
    site_id: int | None = None
    bbox: BBox | None = None
    kinds: tuple[m.FacilityKind, ...] | None = None
    zero_employment: bool | None = None
    where: tuple[ColumnElement[bool], ...] = ()


def _site_households(as_of: dt.date) -> ColumnElement[Any]:
    """Households living at the site now (``household.site_id``), of those the transaction may see; not dated."""
    return select(func.count()).where(H.site_id == S.id).correlate(S).scalar_subquery()


LAYERS: dict[str, Layer] = {
    layer.name: layer
    for layer in (
        Layer(
            name="relocation_sites",
            title="Relocation sites (安置区/安置点)",
            description="Relocation sites (points) with their kind and the households living there you may see.",
            model=S,
            id=S.id,
            geometry=S.location,
            geometry_type="Point",
            properties=(
                Property("name", "string", "Site name.", lambda d: S.name, zh="名称"),
                Property(
                    "kind", "string", "Site kind.", lambda d: _shown(S.kind), values=tuple(k.name for k in m.SiteKind), zh="类型"
                ),
                Property(
                    "households",
                    "integer",
                    "Households living at the site now that you may see (null for partner viewers: a small cell).",
                    _site_households,
                    for_partners=False,
                    zh="在住户数",
                ),
            ),
            filters=frozenset({"areaCode", "siteId", "bbox"}),
            code=S.admin_code,
            site=S.id,
        ),
        Layer(
            name="facilities",
            title="Facilities (产业/服务设施)",
            description="Industrial and service facilities (points): parks, workshops, bases, schools, clinics.",
            model=F,
            id=F.id,
            geometry=F.location,
            geometry_type="Point",
            properties=(
                Property("name", "string", "Facility name.", lambda d: F.name, zh="名称"),
                Property(
                    "kind",
                    "string",
                    "Facility kind.",
                    lambda d: _shown(F.kind),
                    values=tuple(k.name for k in m.FacilityKind),
                    zh="类型",
                ),
                Property(
                    "siteId", "integer", "The relocation site the facility serves, if any.", lambda d: F.site_id, zh="安置点编号"
                ),
                Property(
                    "closedOn",
                    "string",
                    "Date the facility closed (null: open).",
                    lambda d: F.closed_on,
                    format="date",
                    zh="关闭日期",
                ),
            ),
            filters=frozenset({"areaCode", "siteId", "bbox", "kinds", "asOf"}),
            code=F.admin_code,
            site=F.site_id,
            clusters=True,
            asof_rule="when given, only facilities open on that date (opened on or before it, not closed by it)",
            extra=lambda a: ([F.kind.in_(list(a.kinds))] if a.kinds else []) + ([open_on(a.as_of)] if a.as_of_given else []),
        ),
        Layer(
            name="households",
            title="Households (搬迁户)",
            description="Household dwellings (points): site, size and zero-employment; no personal data. Not for partners.",
            model=H,
            id=H.id,
            geometry=H.dwelling,
            geometry_type="Point",
            properties=(
                Property("siteId", "integer", "The relocation site the household lives at, if any.", lambda d: H.site_id),
                Property("size", "integer", "Members of the household now (人).", lambda d: H.member_count),
                Property(
                    "zeroEmployment",
                    "boolean",
                    "零就业家庭 on asOf: has labor force and no member employed.",
                    zero_employment,
                ),
            ),
            filters=frozenset({"areaCode", "siteId", "bbox", "zeroEmployment", "asOf"}),
            code=H.admin_code,
            site=H.site_id,
            personal=True,
            clusters=True,
            asof_rule="the date of zeroEmployment (property and filter)",
            extra=lambda a: [] if a.zero_employment is None else [zero_employment(a.as_of) == a.zero_employment],
        ),
        Layer(
            name="admin_areas",
            title="Admin areas (行政区划)",
            description="Admin areas that have a boundary (polygons): code, name, level.",
            model=A,
            id=A.code,
            geometry=A.geom,
            geometry_type="MultiPolygon",
            properties=(
                Property("code", "string", "GB/T 2260 / NBS statistical code.", lambda d: A.code),
                Property("name", "string", "Area name.", lambda d: A.name),
                Property("level", "string", "Level.", lambda d: _shown(A.level), values=tuple(v.name for v in m.AdminLevel)),
            ),
            filters=frozenset({"areaCode", "bbox"}),
            code=A.code,
        ),
    )
}
"""Every map layer by name, in catalog order."""


def layer_named(name: str, field: str = "layer") -> Layer:
    """The layer ``name`` (``households``; GraphQL's upper case is accepted too).

    Raises:
        InvalidInput: no such layer (names ``field``).
    """
    found = LAYERS.get(name.lower()) if isinstance(name, str) and len(name) <= 64 else None
    if found is None:
        raise InvalidInput(f"{field}: {str(name)[:40]!r} is not one of {', '.join(LAYERS)}", field=field)
    return found


def layer_args(
    layer: Layer,
    *,
    today: dt.date,
    prefix: str = "",
    as_of: dt.date | None = None,
    area_code: str | None = None,
    site_id: int | None = None,
    bbox: BBox | None = None,
    kinds: Sequence[m.FacilityKind] | None = None,
    zero_employment: bool | None = None,
) -> LayerArgs:
    """Validated filters of ``layer``: each given filter must be one the layer accepts.

    Args:
        layer: the layer.
        today: the default ``asOf`` (today in Asia/Shanghai).
        prefix: prepended to filter names in messages (``filter.`` in GraphQL).
        as_of: the layer's date (``asOf``), or None for today.
        area_code: an admin code (6, 9 or 12 digits), or None.
        site_id: a relocation site's id, or None.
        bbox: a validated WGS84 box, or None.
        kinds: facility kinds, or None.
        zero_employment: households zero-employment on ``as_of`` (true) or not (false), or None.

    Raises:
        InvalidInput: a filter the layer does not accept, a malformed area code or a date outside 1900..2100.
    """
    given = {
        "asOf": as_of,
        "areaCode": area_code,
        "siteId": site_id,
        "bbox": bbox,
        "kinds": kinds,
        "zeroEmployment": zero_employment,
    }
    for name, value in given.items():
        if value is not None and name not in layer.filters:
            accepted = ", ".join(f for f in FILTERS if f in layer.filters)
            raise InvalidInput(
                f"{prefix}{name}: does not apply to the {layer.name} layer (it accepts {accepted})", field=f"{prefix}{name}"
            )
    if area_code is not None:
        area_condition(layer.code, area_code, f"{prefix}areaCode")  # validates the code's shape
    return LayerArgs(
        as_of=check_date(as_of, f"{prefix}asOf") if as_of is not None else today,
        as_of_given=as_of is not None,
        area_code=area_code,
        site_id=site_id,
        bbox=bbox,
        kinds=tuple(kinds) if kinds is not None else None,
        zero_employment=zero_employment,
    )


def _parse_bool(value: str, name: str) -> bool:
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidInput(f"{name}: {value[:20]!r} is not true or false", field=name)


def parse_date(value: str, name: str) -> dt.date:
    """An ISO date ``YYYY-MM-DD`` (an RFC 3339 date-time counts by its date).

    Raises:
        InvalidInput: anything else (names ``name``).
    """
    try:
        return dt.date.fromisoformat(value[:10]) if len(value) in (10, 20) or "T" in value else dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{name}: {value[:40]!r} is not a date; expected YYYY-MM-DD", field=name) from None


def parse_kinds(value: str, name: str = "kinds") -> tuple[m.FacilityKind, ...]:
    """Comma-separated facility kinds as GraphQL names them (``SCHOOL,CLINIC``).

    Raises:
        InvalidInput: an unknown kind (names ``name``).
    """
    out = []
    for part in value.split(","):
        try:
            out.append(m.FacilityKind[part.strip().upper()])
        except KeyError:
            raise InvalidInput(
                f"{name}: {part[:40]!r} is not a facility kind; expected some of {', '.join(k.name for k in m.FacilityKind)}",
                field=name,
            ) from None
    return tuple(out)


def parse_coord_sys(value: str | None, name: str = "coordSys") -> CoordSys:
    """``WGS84`` (default), ``GCJ02`` or ``BD09``.

    Raises:
        InvalidInput: anything else (names ``name``).
    """
    if value is None:
        return CoordSys.WGS84
    try:
        return CoordSys[value.upper()]
    except KeyError:
        raise InvalidInput(f"{name}: {value[:20]!r} is not one of WGS84, GCJ02, BD09", field=name) from None


def args_from_query(layer: Layer, params: Mapping[str, str], *, today: dt.date, as_of_param: str = "asOf") -> LayerArgs:
    """A layer's filters from URL query parameters of the same names (tiles, OGC).

    ``areaCode``, ``siteId``, ``kinds`` (comma-separated), ``zeroEmployment`` (true/false) and ``asOf`` (YYYY-MM-DD;
    OGC passes its ``datetime`` as ``as_of_param``). ``bbox`` is the caller's (tile bounds, OGC ``bbox``).

    Raises:
        InvalidInput: a malformed value or a filter the layer does not accept (names the parameter).
    """
    get = params.get
    raw_as_of = get(as_of_param)
    return layer_args(
        layer,
        today=today,
        as_of=parse_date(raw_as_of, as_of_param) if raw_as_of is not None else None,
        area_code=get("areaCode"),
        site_id=optional_id(get("siteId"), "siteId"),
        kinds=parse_kinds(get("kinds", "")) if get("kinds") is not None else None,
        zero_employment=_parse_bool(get("zeroEmployment", ""), "zeroEmployment") if get("zeroEmployment") is not None else None,
    )


def conditions(layer: Layer, a: LayerArgs) -> list[ColumnElement[bool]]:
    """Every SQL condition of ``layer`` under ``a``: a drawable geometry, then the filters (AND)."""
    out: list[ColumnElement[bool]] = [layer.geometry.is_not(None), ~func.ST_IsEmpty(layer.geometry)]
    if a.area_code is not None:
        out.append(area_condition(layer.code, a.area_code, "areaCode"))
    if a.site_id is not None and layer.site is not None:
        out.append(layer.site == a.site_id)
    if a.bbox is not None:
        out.append(bbox_condition(layer.geometry, a.bbox))
    out.extend(layer.extra(a))
    out.extend(a.where)
    return out


def rows_select(layer: Layer, a: LayerArgs, viewer: Viewer) -> AnySelect:
    """``id``, ``geom`` (SRID 4326) and one column per property (labelled with its name) of the matching features."""
    cols = [layer.id.label("id"), layer.geometry.label("geom"), *(p.column(a.as_of, viewer) for p in layer.properties)]
    return select(*cols).where(*conditions(layer, a))


def _properties_json(layer: Layer, rows: Any) -> ColumnElement[Any]:
    pairs = [x for p in layer.properties for x in (literal(p.name), rows.c[p.name])]
    return func.json_build_object(*pairs)


def _pixel_degrees(zoom: int) -> float:
    """Degrees of longitude per 256-px-tile pixel at ``zoom`` (Web Mercator tiling)."""
    return 360.0 / (256 * 2**zoom)


def cell_meters(zoom: int) -> float:
    """Side of a cluster cell at ``zoom``, Web Mercator metres (64 px of a 256-px tile)."""
    return CLUSTER_CELL_PX * 2 * WEB_MERCATOR_HALF / (256 * 2**zoom)


def _clusters(layer: Layer, rows: AnySelect, zoom: int) -> AnySelect:
    """Rows clustered on the world-anchored Web Mercator grid of ``zoom`` (cells aligned with tile edges).

    One row per cell: ``id`` = the smallest member id, ``geom`` = the members' mean position (in Web Mercator,
    back to SRID 4326), properties MapLibre's: ``cluster``, ``cluster_id``, ``point_count``, ``point_count_abbreviated``.
    Biggest clusters first, then by id: the same cells and order in every tile and collection.
    """
    inner = rows.subquery("pts")
    merc = func.ST_Transform(inner.c.geom, 3857)
    cell = cell_meters(zoom)
    gx = func.floor((func.ST_X(merc) + WEB_MERCATOR_HALF) / cell)
    gy = func.floor((func.ST_Y(merc) + WEB_MERCATOR_HALF) / cell)
    n = func.count()
    abbreviated = case(
        (n >= 10000, func.concat(func.round(n / 1000.0), "k")),
        (n >= 1000, func.concat(func.round(n / 100.0) / 10, "k")),
        else_=cast(n, Text),
    )
    return (
        select(
            func.min(inner.c.id).label("id"),
            func.ST_Transform(
                func.ST_SetSRID(func.ST_MakePoint(func.avg(func.ST_X(merc)), func.avg(func.ST_Y(merc))), 3857), 4326
            ).label("geom"),
            literal(True).label("cluster"),
            func.min(inner.c.id).label("cluster_id"),
            cast(n, Integer).label("point_count"),
            abbreviated.label("point_count_abbreviated"),
        )
        .group_by(gx, gy)
        .order_by(n.desc(), func.min(inner.c.id))
    )


CLUSTER_PROPERTIES = ("cluster", "cluster_id", "point_count", "point_count_abbreviated")
"""Properties of a cluster feature (MapLibre's names, as its GeoJSON sources give clusters)."""


def clustered(layer: Layer, zoom: int | None, cluster_below_zoom: int) -> bool:
    """The layer comes clustered at ``zoom``: a clustering layer below the clustering zoom."""
    return layer.clusters and zoom is not None and zoom < cluster_below_zoom


def _output_geometry(layer: Layer, g: Any, zoom: int | None, coord_sys: CoordSys) -> Any:
    if layer.polygon and zoom is not None:
        # Simplification keeps each polygon valid but may nest a MultiPolygon's parts: repair, keep polygons.
        g = func.ST_CollectionExtract(func.ST_MakeValid(func.ST_SimplifyPreserveTopology(g, _pixel_degrees(zoom))), 3)
    if coord_sys is not CoordSys.WGS84:
        g = func.anju_from_wgs84(g, coord_sys.value)
    return g


def check_zoom_limit(zoom: int | None, limit: int, max_limit: int) -> None:
    """Raises InvalidInput for a limit outside 1..max_limit or a zoom outside 0..22."""
    if not 1 <= limit <= max_limit:
        raise InvalidInput(f"limit: {limit} outside 1..{max_limit}", field="limit")
    if zoom is not None and not 0 <= zoom <= 22:
        raise InvalidInput(f"zoom: {zoom} outside 0..22", field="zoom")


def feature_collection_select(
    layer: Layer,
    a: LayerArgs,
    viewer: Viewer,
    *,
    zoom: int | None,
    limit: int,
    cluster_below_zoom: int,
    coord_sys: CoordSys = CoordSys.WGS84,
) -> AnySelect:
    """One statement whose single row and column is the whole FeatureCollection as json TEXT.

    ``{"type": "FeatureCollection", "features": [...], "numberReturned": n, "truncated": bool}``: at most ``limit``
    features by id (clusters: biggest first), ``truncated`` true when more matched. Features: ``id`` (the record's id, an
    admin area's code; a cluster's ``"cluster-<smallest member id>"``), ``geometry`` (6 decimals, in ``coord_sys``,
    polygons counter-clockwise and simplified to about a pixel at ``zoom``), ``properties`` (the layer's, in order; a
    cluster's ``CLUSTER_PROPERTIES``). What the lead's planner passes through without decoding.

    Args:
        layer: the layer.
        a: its filters (``layer_args``).
        viewer: who asks (properties it may not see are null); rows are the session's (row-level security).
        zoom: map zoom 0..22, or None (no clustering, full detail).
        limit: at most this many features (validated by the caller: ``check_zoom_limit``).
        coord_sys: coordinate system of the answer's coordinates (WGS84, GCJ02, BD09).
        cluster_below_zoom: clustering layers cluster below this zoom (setting ``features.cluster_below_zoom``).
    """
    src = rows_select(layer, a, viewer)
    if clustered(layer, zoom, cluster_below_zoom):
        ranked = _clusters(layer, src, zoom or 0).subquery("c")
        order = (ranked.c.point_count.desc(), ranked.c.id)
        inner = select(ranked, func.row_number().over(order_by=order).label("rn")).order_by(*order)
        rows = inner.limit(limit + 1).subquery("rows")
        fid: Any = func.concat("cluster-", rows.c.id)
        props: Any = func.json_build_object(*[x for p in CLUSTER_PROPERTIES for x in (literal(p), rows.c[p])])
    else:
        inner = src.add_columns(func.row_number().over(order_by=layer.id).label("rn")).order_by(layer.id)
        rows = inner.limit(limit + 1).subquery("rows")
        fid = rows.c.id
        props = _properties_json(layer, rows)
    g = _output_geometry(layer, rows.c.geom, zoom, coord_sys)
    feature = func.json_build_object(
        "type", "Feature", "id", fid, "geometry", cast(geojson(g, polygon=layer.polygon), JSON), "properties", props
    )
    n = func.count()
    fc = func.json_build_object(
        "type",
        "FeatureCollection",
        "features",
        func.coalesce(func.json_agg(aggregate_order_by(feature, rows.c.rn)).filter(rows.c.rn <= limit), text("'[]'::json")),
        "numberReturned",
        func.least(n, limit),
        "truncated",
        n > limit,
    )
    return select(cast(fc, Text))


# --------------------------------------------------------------------------- vector tiles


def check_tile(z: int, x: int, y: int) -> None:
    """Raises InvalidInput for z/x/y outside the tile pyramid (z 0..22, x/y < 2^z)."""
    if not 0 <= z <= 22:
        raise InvalidInput(f"z: {z} outside 0..22", field="z")
    if not (0 <= x < 2**z and 0 <= y < 2**z):
        raise InvalidInput(f"x/y: {x}/{y} outside 0..{2**z - 1} at zoom {z}", field="xy")


def tile_bounds(z: int, x: int, y: int) -> BBox:
    """The WGS84 lon/lat bounds of tile z/x/y (slippy-map formula)."""
    n = 2**z

    def lat(t: float) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * t / n))))

    return BBox(x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y))


def _tile_layer(
    layer: Layer,
    a: LayerArgs,
    viewer: Viewer,
    z: int,
    x: int,
    y: int,
    *,
    coord_sys: CoordSys,
    max_features: int,
    cluster_below: int,
) -> ColumnElement[bytes]:
    """SQL bytea: one layer's MVT (ST_AsMVT) within tile z/x/y, or empty bytes."""
    env = func.ST_TileEnvelope(z, x, y)
    margin = TILE_BUFFER / TILE_EXTENT
    reach = func.ST_Transform(func.ST_TileEnvelope(z, x, y, text(f"margin => {margin}")), 4326)
    if coord_sys is not CoordSys.WGS84:  # rows are shifted into the tile from up to ~1.5 km away
        reach = func.ST_Expand(reach, SHIFT_MARGIN_DEGREES)
    src = rows_select(layer, a, viewer).where(layer.geometry.op("&&")(reach))
    if clustered(layer, z, cluster_below):
        rows = _clusters(layer, src, z).subquery("rows")
        prop_cols = [rows.c[p] for p in CLUSTER_PROPERTIES]
        order: list[Any] = [rows.c.point_count.desc(), rows.c.id]
    else:
        rows = src.subquery("rows")
        prop_cols = [rows.c[p.name] for p in layer.properties]
        order = [rows.c.id]
    g = func.ST_Transform(_output_geometry(layer, rows.c.geom, z if layer.polygon else None, coord_sys), 3857)
    mvt_geom = func.ST_AsMVTGeom(g, env, TILE_EXTENT, TILE_BUFFER, True)
    inside = rows.c.geom.op("&&")(func.ST_Transform(env, 4326))
    fid = cast(rows.c.id, BigInteger)  # admin area codes are digits
    feats = (
        select(fid.label("fid"), mvt_geom.label("mvt_geom"), *prop_cols)
        .where(mvt_geom.is_not(None))
        .order_by(inside.desc(), *order)  # a stable order: inside the tile first, then as the collection orders
        .limit(max_features)
        .subquery("t")
    )
    mvt = select(func.ST_AsMVT(literal_column("t"), layer.name, TILE_EXTENT, "mvt_geom", "fid")).select_from(feats)
    return func.coalesce(mvt.scalar_subquery(), cast(literal(b""), LargeBinary))


def tile_select(
    layers: Sequence[tuple[Layer, LayerArgs]],
    viewer: Viewer,
    z: int,
    x: int,
    y: int,
    *,
    coord_sys: CoordSys = CoordSys.WGS84,
    max_features: int,
    cluster_below_zoom: int,
) -> AnySelect:
    """One statement whose single value is a Mapbox Vector Tile (bytea) holding each of ``layers`` (empty: no feature).

    Each layer named like the URL's (``households``), extent 4096, buffer 256, feature ids set (admin areas: the code
    as an integer), attributes the layer's properties under their names (the same as featureCollection's), clusters
    below the clustering zoom on the same cells as featureCollection's (MapLibre's ``point_count`` attributes), at most
    ``max_features`` per layer — those inside the tile first, then by id. ``coord_sys`` GCJ02/BD09 draws on AMap/Baidu
    basemaps (their tiles are Web Mercator over shifted lon/lat).

    Raises:
        InvalidInput: z/x/y outside the pyramid.
    """
    check_tile(z, x, y)
    parts = [
        _tile_layer(layer, a, viewer, z, x, y, coord_sys=coord_sys, max_features=max_features, cluster_below=cluster_below_zoom)
        for layer, a in layers
    ]
    out: Any = parts[0]
    for p in parts[1:]:
        out = out.op("||")(p)
    return select(out)


# --------------------------------------------------------------------------- OGC API Features


@dataclass(frozen=True)
class ItemsPage:
    """An OGC items page: the FeatureCollection text and whether another page follows."""

    text: str
    has_next: bool


def crs_geometry(g: Any, lat_lon: bool) -> Any:
    """``g`` with lat/lon axis order (EPSG:4326, EPSG:4490) when ``lat_lon``, else as stored (CRS84 lon/lat)."""
    return func.ST_FlipCoordinates(g) if lat_lon else g


def items_select(
    layer: Layer,
    a: LayerArgs,
    viewer: Viewer,
    *,
    limit: int,
    after: int | str | None,
    lat_lon: bool,
    links: list[dict[str, Any]],
    next_href_prefix: str,
) -> AnySelect:
    """One statement: a page of OGC API Features items as json TEXT, and whether more follow.

    Keyset by feature id (``after`` = the last id of the previous page): ``limit`` features with id > after, in id
    order; ``numberMatched`` counts every feature matching the filters (not only after ``after``), ``numberReturned``
    this page's. ``links`` are given (self, alternate…); a ``next`` link ``next_href_prefix || <last id>`` is added when
    more follow. Geometries full detail, 6 decimals, lon/lat or lat/lon (``lat_lon``).

    Returns:
        select of (text, has_next).
    """
    src = rows_select(layer, a, viewer)
    matched = select(func.count()).select_from(src.subquery("m")).scalar_subquery()
    page = src.order_by(layer.id)
    if after is not None:
        page = page.where(layer.id > after)
    rows = page.limit(limit + 1).subquery("rows")
    numbered = select(rows, func.row_number().over(order_by=rows.c.id).label("rn")).subquery("p")
    g = crs_geometry(numbered.c.geom, lat_lon)
    feature = func.json_build_object(
        "type",
        "Feature",
        "id",
        numbered.c.id,
        "geometry",
        cast(geojson(g, polygon=layer.polygon), JSON),
        "properties",
        _properties_json(layer, numbered),
    )
    n = func.count()
    more = n > limit
    last: Any = func.max(case((numbered.c.rn <= limit, cast(numbered.c.id, Text))))
    if layer.numeric_ids:
        last = cast(func.max(case((numbered.c.rn <= limit, numbered.c.id))), Text)
    next_link = case(
        (
            more,
            func.jsonb_build_array(
                func.jsonb_build_object(
                    "rel",
                    "next",
                    "type",
                    "application/geo+json",
                    "title",
                    "next page",
                    "href",
                    func.concat(next_href_prefix, last),
                )
            ),
        ),
        else_=cast(literal("[]"), JSONB),
    )
    fc = func.json_build_object(
        "type",
        "FeatureCollection",
        "features",
        func.coalesce(
            func.json_agg(aggregate_order_by(feature, numbered.c.rn)).filter(numbered.c.rn <= limit), text("'[]'::json")
        ),
        "numberMatched",
        matched,
        "numberReturned",
        func.least(n, limit),
        "timeStamp",
        func.to_char(func.now().op("AT TIME ZONE")("UTC"), 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        "links",
        cast(literal(links, JSONB), JSONB).op("||")(next_link),
    )
    return select(cast(fc, Text), more)


def item_select(
    layer: Layer, a: LayerArgs, viewer: Viewer, key: int | str, *, lat_lon: bool, links: list[dict[str, Any]]
) -> AnySelect:
    """One statement: the single Feature ``key`` as json TEXT (no row when the viewer cannot see it or it does not exist)."""
    rows = rows_select(layer, a, viewer).where(layer.id == key).subquery("rows")
    feature = func.json_build_object(
        "type",
        "Feature",
        "id",
        rows.c.id,
        "geometry",
        cast(geojson(crs_geometry(rows.c.geom, lat_lon), polygon=layer.polygon), JSON),
        "properties",
        _properties_json(layer, rows),
        "links",
        cast(literal(links, JSONB), JSONB),
    )
    return select(cast(feature, Text))


def extent_select(layer: Layer) -> AnySelect:
    """The layer's spatial extent as [minLon, minLat, maxLon, maxLat] (SRID 4326) over the rows the session may see."""
    box = func.ST_Extent(layer.geometry)
    return select(func.ST_XMin(box), func.ST_YMin(box), func.ST_XMax(box), func.ST_YMax(box)).where(
        layer.geometry.is_not(None), ~func.ST_IsEmpty(layer.geometry)
    )


def queryables(layer: Layer, viewer: Viewer, base_url: str) -> dict[str, Any]:
    """The OGC queryables of ``layer`` for ``viewer``: a JSON Schema (2020-12) of the properties it may filter on."""
    props: dict[str, Any] = {
        "geometry": {"format": f"geometry-{layer.geometry_type.lower()}", "description": "The feature's geometry."}
    }
    for p in layer.visible_properties(viewer):
        spec: dict[str, Any] = {"type": p.type, "title": p.name, "description": p.description}
        if p.values:
            spec["enum"] = list(p.values)
        if p.format:
            spec["format"] = p.format
        props[p.name] = spec
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": base_url,
        "type": "object",
        "title": layer.title,
        "properties": props,
        "additionalProperties": False,
    }


def bbox_arg(values: str, name: str = "bbox", *, lat_lon: bool = False) -> BBox:
    """A ``minx,miny,maxx,maxy`` query parameter (lat/lon order when ``lat_lon``: EPSG:4326/4490) as a WGS84 BBox.

    Raises:
        InvalidInput: not 4 finite numbers, out of range (names ``name``).
    """
    try:
        nums = [float(v) for v in values.split(",")]
    except ValueError:
        raise InvalidInput(
            f"{name}: {values[:60]!r} is not 4 comma-separated numbers minLon,minLat,maxLon,maxLat", field=name
        ) from None
    if len(nums) == 6:  # 3-D box: drop the heights
        nums = [nums[0], nums[1], nums[3], nums[4]]
    if lat_lon and len(nums) == 4:
        nums = [nums[1], nums[0], nums[3], nums[2]]
    box = parse_bbox(nums, name)
    assert box is not None
    return box


def with_where(a: LayerArgs, *conds: ColumnElement[bool]) -> LayerArgs:
    """``a`` with further SQL conditions (compiled CQL2)."""
    return replace(a, where=(*a.where, *conds))


# --------------------------------------------------------------------------- running them


async def feature_collection(
    sm: SessionMaker,
    layer: Layer,
    a: LayerArgs,
    viewer: Viewer,
    *,
    zoom: int | None,
    limit: int,
    cluster_below_zoom: int,
    coord_sys: CoordSys = CoordSys.WGS84,
) -> str:
    """``feature_collection_select`` run in one session of ``sm`` (the viewer's scoped sessionmaker): the json text."""
    q = feature_collection_select(
        layer, a, viewer, zoom=zoom, limit=limit, cluster_below_zoom=cluster_below_zoom, coord_sys=coord_sys
    )
    async with sm() as s:
        return str(await s.scalar(q))


async def tile(
    sm: SessionMaker,
    layers: Sequence[tuple[Layer, LayerArgs]],
    viewer: Viewer,
    z: int,
    x: int,
    y: int,
    *,
    coord_sys: CoordSys = CoordSys.WGS84,
    max_features: int,
    cluster_below_zoom: int,
) -> bytes:
    """``tile_select`` run in one session of ``sm``: the tile's bytes (empty: no feature). Raises InvalidInput (z/x/y)."""
    q = tile_select(
        layers, viewer, z, x, y, coord_sys=coord_sys, max_features=max_features, cluster_below_zoom=cluster_below_zoom
    )
    async with sm() as s:
        return bytes(await s.scalar(q) or b"")
