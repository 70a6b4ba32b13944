"""Root ``Query`` (API.md "Query (core)") and the filter inputs."""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
from decimal import Decimal
from typing import Annotated, Any

import strawberry

from resolvers import admin_areas, coverage, facilities, geofilters, households, layers, sites, spatial
from resolvers.coords import CoordSys, bbox_to_wgs84, geojson_to_wgs84
from resolvers.geometry import parse_geometry
from resolvers.mutations import check_money
from resolvers.query import check_year, optional_id, parse_id
from schema.casework import CaseworkQuery
from schema.enums import AdminLevel, FacilityKind, describe_values
from schema.imports import ImportQuery
from schema.partners import PartnerQuery
from schema.permissions import ReadsHouseholds, allow
from schema.planning import PlanningQuery
from schema.scalars import JSON, GeoJSON
from schema.targets import TargetQuery
from schema.training import TrainingQuery
from schema.types import (
    KINDS,
    AdminArea,
    AfterArg,
    AsOfArg,
    Connection,
    Ctx,
    Facility,
    FacilityDistance,
    FirstArg,
    Household,
    HouseholdRisk,
    OpenOnArg,
    RelocationSite,
    YearArg,
    connection_args,
    load_optional,
    primed,
)


@strawberry.input(description="Within `radiusMeters` (geodesic metres, WGS84 ellipsoid) of `point`.")
class NearInput:
    point: GeoJSON = strawberry.field(description="GeoJSON Point.")
    radius_meters: float = strawberry.field(
        description="Radius in metres (geodesic, WGS84 ellipsoid), > 0 and at most 1,000,000."
    )


def _bbox(bbox: list[float] | None, coord_sys: CoordSys, field: str) -> geofilters.BBox | None:
    """A bbox argument given in ``coord_sys``, validated, as WGS84 (None when absent)."""
    if bbox is None:
        return None
    if all(map(math.isfinite, bbox)):
        bbox = bbox_to_wgs84(bbox, coord_sys)
    return geofilters.parse_bbox(bbox, field)


def _spatial(
    info: Ctx, bbox: list[float] | None, near: NearInput | None, intersects: Any, coord_sys: CoordSys, prefix: str = "filter."
) -> geofilters.SpatialFilter | None:
    """Validate the spatial members of a filter (converted from ``coord_sys`` to WGS84 first)."""
    if bbox is None and near is None and intersects is None:
        return None
    cap = info.context.settings.features.max_vertices
    box = _bbox(bbox, coord_sys, f"{prefix}bbox")
    near_ = None
    if near is not None:
        near_ = geofilters.parse_near(
            geojson_to_wgs84(near.point, coord_sys), near.radius_meters, f"{prefix}near", max_vertices=cap
        )
    shape_ = None
    if intersects is not None:
        shape_ = parse_geometry(
            geojson_to_wgs84(intersects, coord_sys),
            f"{prefix}intersects",
            allowed=("Polygon", "MultiPolygon", "Point", "MultiPoint", "LineString", "MultiLineString"),
            max_vertices=cap,
        )
    return geofilters.SpatialFilter(bbox=box, near=near_, intersects=shape_)


SPATIAL_DOC = (
    "bbox [minLon, minLat, maxLon, maxLat] (minLon > maxLon crosses the antimeridian); near: within metres "
    "of a point; intersects: a GeoJSON geometry; coordSys: the system these are given in."
)


@strawberry.input(description="Relocation-site filter; members combine with AND.")
class SiteFilter:
    name: str | None = strawberry.field(default=None, description="Exact name, e.g. 彝欣社区.")
    name_contains: str | None = strawberry.field(default=None, description="Case-insensitive substring of the name.")
    area_code: str | None = strawberry.field(default=None, description="Admin area code: the area and everything below it.")
    bbox: list[float] | None = strawberry.field(default=None, description=SPATIAL_DOC)
    near: NearInput | None = strawberry.field(default=None, description="Within a radius (metres) of a point.")
    intersects: GeoJSON | None = strawberry.field(
        default=None, description="Intersecting this GeoJSON geometry (Point, LineString, Polygon or Multi*)."
    )
    coord_sys: CoordSys = strawberry.field(
        default=CoordSys.WGS84, description="Coordinate system bbox, near and intersects are given in (default WGS84)."
    )

    def to_resolver(self, info: Ctx) -> sites.SiteFilter:
        return sites.SiteFilter(
            name=self.name,
            name_contains=self.name_contains,
            area_code=self.area_code,
            spatial=_spatial(info, self.bbox, self.near, self.intersects, self.coord_sys),
        )


@strawberry.input(description="Facility filter; members combine with AND, `kinds` is any-of.")
class FacilityFilter:
    name: str | None = strawberry.field(default=None, description="Exact name.")
    name_contains: str | None = strawberry.field(default=None, description="Case-insensitive substring of the name.")
    area_code: str | None = strawberry.field(default=None, description="Admin area code: the area and everything below it.")
    kinds: list[FacilityKind] | None = strawberry.field(default=None, description="Any of these kinds.")
    bbox: list[float] | None = strawberry.field(default=None, description=SPATIAL_DOC)
    near: NearInput | None = strawberry.field(default=None, description="Within a radius (metres) of a point.")
    intersects: GeoJSON | None = strawberry.field(
        default=None, description="Intersecting this GeoJSON geometry (Point, LineString, Polygon or Multi*)."
    )
    coord_sys: CoordSys = strawberry.field(
        default=CoordSys.WGS84, description="Coordinate system bbox, near and intersects are given in (default WGS84)."
    )

    def to_resolver(self, info: Ctx) -> facilities.FacilityFilter:
        return facilities.FacilityFilter(
            name=self.name,
            name_contains=self.name_contains,
            area_code=self.area_code,
            kinds=tuple(self.kinds) if self.kinds is not None else None,
            spatial=_spatial(info, self.bbox, self.near, self.intersects, self.coord_sys),
        )


@strawberry.input(description="Household filter; members combine with AND.")
class HouseholdFilter:
    site_id: strawberry.ID | None = strawberry.field(default=None, description="Households living at this relocation site.")
    area_code: str | None = strawberry.field(default=None, description="Admin area code: the area and everything below it.")
    zero_employment: bool | None = strawberry.field(
        default=None, description="true: only 零就业家庭 on `asOf`; false: only households that are not."
    )
    as_of: dt.date | None = strawberry.field(default=None, description="Date of `zeroEmployment` (default: today).")
    bbox: list[float] | None = strawberry.field(default=None, description=SPATIAL_DOC)
    near: NearInput | None = strawberry.field(default=None, description="Within a radius (metres) of a point.")
    intersects: GeoJSON | None = strawberry.field(
        default=None, description="Intersecting this GeoJSON geometry (Point, LineString, Polygon or Multi*)."
    )
    coord_sys: CoordSys = strawberry.field(
        default=CoordSys.WGS84, description="Coordinate system bbox, near and intersects are given in (default WGS84)."
    )

    def to_resolver(self, info: Ctx) -> households.HouseholdFilter:
        site_id = optional_id(self.site_id, "filter.siteId")
        return households.HouseholdFilter(
            site_id=site_id,
            area_code=self.area_code,
            zero_employment=self.zero_employment,
            as_of=info.context.as_of(self.as_of, "filter.asOf"),
            spatial=_spatial(info, self.bbox, self.near, self.intersects, self.coord_sys),
        )


MapLayer: Any = strawberry.enum(
    enum.Enum("MapLayer", {name.upper(): name for name in layers.LAYERS}),  # type: ignore[call-overload]
    name="MapLayer",
    description="Map layers: the layer registry's (tiles and OGC API Features use the same names in lower case).",
)
describe_values(
    MapLayer,
    {
        name.upper(): f"{layer.description} Properties: {', '.join(p.name for p in layer.properties)}; "
        f"filters: {', '.join(f for f in layers.FILTERS if f in layer.filters)}."
        for name, layer in layers.LAYERS.items()
    },
)


@strawberry.input(
    description="Narrows a map layer; members combine with AND. Each layer accepts the filters its MapLayer description "
    "lists; another one answers BAD_USER_INPUT naming it."
)
class LayerFilter:
    area_code: str | None = strawberry.field(
        default=None,
        description="The area and everything below it: on point layers the admin code, or the point lying inside the "
        "area's polygon; on ADMIN_AREAS by code only (the area and its descendants).",
    )
    site_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Features of this relocation site (facilities attached to it, households living there, the site itself).",
    )
    kinds: list[FacilityKind] | None = strawberry.field(default=None, description="Facility kinds (FACILITIES).")
    zero_employment: bool | None = strawberry.field(
        default=None, description="Households zero-employment (零就业家庭) on asOf (true) or not (false) (HOUSEHOLDS)."
    )
    as_of: dt.date | None = strawberry.field(
        default=None,
        description="The layer's date (default today, Asia/Shanghai): HOUSEHOLDS' zeroEmployment; on FACILITIES, when "
        "given, only facilities open on that date.",
    )


def feature_collection_statement(
    info: Ctx,
    layer: MapLayer,
    bbox: list[float] | None,
    zoom: int | None,
    filter: LayerFilter | None,
    limit: int | None,
    coord_sys: CoordSys,
) -> Any:
    """``Query.featureCollection``'s arguments validated into its one statement (``layers.feature_collection_select``).

    The resolver runs it; the read planner (schema/planner.py) embeds it. Raises InvalidInput naming the argument.
    """
    feats = info.context.settings.features
    entry = layers.layer_named(layer.value)
    f = filter or LayerFilter()
    args = layers.layer_args(
        entry,
        today=info.context.today(),
        prefix="filter.",
        as_of=f.as_of,
        area_code=f.area_code,
        site_id=optional_id(f.site_id, "filter.siteId"),
        bbox=_bbox(bbox, coord_sys, "bbox"),
        kinds=f.kinds,
        zero_employment=f.zero_employment,
    )
    size = feats.default_limit if limit is None else limit
    layers.check_zoom_limit(zoom, size, feats.max_limit)
    return layers.feature_collection_select(
        entry, args, info.context.viewer, zoom=zoom, limit=size, cluster_below_zoom=feats.cluster_below_zoom, coord_sys=coord_sys
    )


HouseholdAreaArg = Annotated[
    str | None,
    strawberry.argument(description="Only households under this admin area (code prefix, or dwelling inside its polygon)."),
]
"""The ``areaCode`` argument of household lists."""
HouseholdSiteArg = Annotated[strawberry.ID | None, strawberry.argument(description="Only households at this relocation site.")]
"""The ``siteId`` argument of household lists."""


@strawberry.type(
    description="Everything Anju answers: admin areas, sites, facilities, households, coverage, monitoring, "
    "spatial search, map layers, partners."
)
class Query(PartnerQuery, ImportQuery, CaseworkQuery, PlanningQuery, TargetQuery, TrainingQuery):
    @strawberry.field(description="One admin area by code; null when unknown.")
    async def admin_area(
        self, info: Ctx, code: Annotated[str, strawberry.argument(description="Area code (6, 9 or 12 digits), e.g. 513432.")]
    ) -> AdminArea | None:
        key = code if code.isdigit() and len(code) <= 12 else None
        return await load_optional(info.context.loaders.admin_area, key, AdminArea.from_row)

    @strawberry.field(description="Admin areas by code, optionally of one level and/or directly under a parent.")
    async def admin_areas(
        self,
        info: Ctx,
        level: Annotated[AdminLevel | None, strawberry.argument(description="Only areas of this level.")] = None,
        parent_code: Annotated[str | None, strawberry.argument(description="Only areas directly under this code.")] = None,
        first: FirstArg = None,
        after: AfterArg = None,
    ) -> Connection[AdminArea]:
        args = connection_args(info, first, after, kind="admin_area", numeric=False)
        page = await admin_areas.admin_areas_page(info.context.sessionmaker, args, level=level, parent_code=parent_code)
        return Connection.of(page, AdminArea.from_row)

    @strawberry.field(description="One relocation site by id; null when unknown.")
    async def relocation_site(
        self, info: Ctx, id: Annotated[strawberry.ID, strawberry.argument(description="Relocation-site id.")]
    ) -> RelocationSite | None:
        return await load_optional(info.context.loaders.site, parse_id(id), RelocationSite.from_row)

    @strawberry.field(description="Relocation sites matching the filter, by id.")
    async def relocation_sites(
        self,
        info: Ctx,
        filter: Annotated[
            SiteFilter | None, strawberry.argument(description="Conditions, combined with AND; every record when omitted.")
        ] = None,
        first: FirstArg = None,
        after: AfterArg = None,
    ) -> Connection[RelocationSite]:
        args = connection_args(info, first, after, kind="relocation_site")
        page = await sites.sites_page(info.context.sessionmaker, filter.to_resolver(info) if filter else None, args)
        return primed(info.context.loaders.site, page, RelocationSite.from_row)

    @strawberry.field(description="One facility by id; null when unknown.")
    async def facility(
        self, info: Ctx, id: Annotated[strawberry.ID, strawberry.argument(description="Facility id.")]
    ) -> Facility | None:
        return await load_optional(info.context.loaders.facility, parse_id(id), Facility.from_row)

    @strawberry.field(description="Facilities matching the filter, by id.")
    async def facilities(
        self,
        info: Ctx,
        filter: Annotated[
            FacilityFilter | None, strawberry.argument(description="Conditions, combined with AND; every record when omitted.")
        ] = None,
        first: FirstArg = None,
        after: AfterArg = None,
    ) -> Connection[Facility]:
        args = connection_args(info, first, after, kind="facility")
        page = await facilities.facilities_page(info.context.sessionmaker, filter.to_resolver(info) if filter else None, args)
        return primed(info.context.loaders.facility, page, Facility.from_row)

    @strawberry.field(description="One household by id; null when unknown.", extensions=allow(ReadsHouseholds))
    async def household(
        self, info: Ctx, id: Annotated[strawberry.ID, strawberry.argument(description="Household id.")]
    ) -> Household | None:
        return await load_optional(info.context.loaders.household, parse_id(id), Household.from_row)

    @strawberry.field(description="Households matching the filter, by id.", extensions=allow(ReadsHouseholds))
    async def households(
        self,
        info: Ctx,
        filter: Annotated[
            HouseholdFilter | None, strawberry.argument(description="Conditions, combined with AND; every record when omitted.")
        ] = None,
        first: FirstArg = None,
        after: AfterArg = None,
    ) -> Connection[Household]:
        args = connection_args(info, first, after, kind="household")
        f = filter.to_resolver(info) if filter else None
        page = await households.households_page(info.context.sessionmaker, f, args)
        return primed(info.context.loaders.household, page, Household.from_row)

    @strawberry.field(
        description="零就业家庭 (dynamic zero-clearing work): households with labor force and no member "
        "employed on `asOf` (default: today), by id; optionally under an area and/or at a site.",
        extensions=allow(ReadsHouseholds),
    )
    async def zero_employment_households(
        self,
        info: Ctx,
        area_code: HouseholdAreaArg = None,
        site_id: HouseholdSiteArg = None,
        as_of: AsOfArg = None,
        first: FirstArg = None,
        after: AfterArg = None,
    ) -> Connection[Household]:
        args = connection_args(info, first, after, kind="household")
        sid = optional_id(site_id, "siteId")
        page = await coverage.zero_employment_households(
            info.context.sessionmaker, args, as_of=info.context.as_of(as_of), area_code=area_code, site_id=sid
        )
        return primed(info.context.loaders.household, page, Household.from_row)

    @strawberry.field(
        description="防返贫监测: households whose per-capita net income in `year` is below "
        "`perCapitaThreshold` (yuan; default from settings, 10,000) or fell compared with "
        "`year - 1`, by id.",
        extensions=allow(ReadsHouseholds),
    )
    async def households_at_risk(
        self,
        info: Ctx,
        year: YearArg,
        area_code: HouseholdAreaArg = None,
        site_id: HouseholdSiteArg = None,
        per_capita_threshold: Annotated[
            Decimal | None,
            strawberry.argument(
                description="Yuan per person per year; default 10,000 (setting ANJU_MONITORING__PER_CAPITA_THRESHOLD)."
            ),
        ] = None,
        first: FirstArg = None,
        after: AfterArg = None,
    ) -> Connection[HouseholdRisk]:
        args = connection_args(info, first, after, kind="household")
        sid = optional_id(site_id, "siteId")
        threshold = (
            info.context.settings.monitoring.per_capita_threshold if per_capita_threshold is None else per_capita_threshold
        )
        threshold = check_money(threshold, "perCapitaThreshold")
        check_year(year)
        page = await coverage.households_at_risk(
            info.context.sessionmaker, args, year=year, threshold=threshold, area_code=area_code, site_id=sid
        )
        return Connection.of(page, HouseholdRisk.of)

    @strawberry.field(
        description="The k facilities open on `asOf` nearest to `point` by geodesic distance (metres, WGS84 "
        "ellipsoid), optionally of some kinds; exact (index candidates re-ranked)."
    )
    async def nearest_facilities(
        self,
        info: Ctx,
        point: Annotated[GeoJSON, strawberry.argument(description="GeoJSON Point to measure from, in coordSys.")],
        kinds: Annotated[list[FacilityKind] | None, strawberry.argument(description=KINDS)] = None,
        k: Annotated[int, strawberry.argument(description="How many facilities, 1..100 (default 5).")] = 5,
        coord_sys: Annotated[
            CoordSys,
            strawberry.argument(description="Coordinate system of point and of the results' geometries (default WGS84)."),
        ] = CoordSys.WGS84,
        as_of: OpenOnArg = None,
    ) -> list[FacilityDistance]:
        pt = parse_geometry(
            geojson_to_wgs84(point, coord_sys),
            "point",
            allowed=("Point",),
            max_vertices=info.context.settings.features.max_vertices,
        )
        rows = await spatial.nearest_facilities(info.context.sessionmaker, pt, kinds, k, info.context.as_of(as_of))
        return [FacilityDistance(facility=Facility.from_row(x.facility), distance_meters=x.distance_meters) for x in rows]

    @strawberry.field(
        description="Households whose dwelling is farther than `distanceMeters` (geodesic) from every "
        "facility of `ofKinds` open on `asOf` — no job within commuting distance — by id.",
        extensions=allow(ReadsHouseholds),
    )
    async def households_beyond(
        self,
        info: Ctx,
        distance_meters: Annotated[
            float, strawberry.argument(description="Commuting distance in metres (geodesic), > 0 and at most 50,000.")
        ],
        of_kinds: Annotated[
            list[FacilityKind],
            strawberry.argument(
                description="Facility kinds that offer jobs (at least one), e.g. [ASSISTANCE_WORKSHOP, INDUSTRIAL_PARK]."
            ),
        ],
        site_id: HouseholdSiteArg = None,
        area_code: HouseholdAreaArg = None,
        first: FirstArg = None,
        after: AfterArg = None,
        as_of: OpenOnArg = None,
    ) -> Connection[Household]:
        args = connection_args(info, first, after, kind="household")
        sid = optional_id(site_id, "siteId")
        page = await spatial.households_beyond(
            info.context.sessionmaker,
            args,
            distance_meters=distance_meters,
            kinds=of_kinds,
            as_of=info.context.as_of(as_of),
            site_id=sid,
            area_code=area_code,
        )
        return primed(info.context.loaders.household, page, Household.from_row)

    @strawberry.field(
        description="A map layer as an RFC 7946 FeatureCollection built by PostGIS (the layer registry's; the same "
        "features and properties as its vector tiles and OGC API Features items): feature id and display properties "
        "only (no personal data), plus `numberReturned` and `truncated` (true when more features matched than `limit`). "
        "Point layers are clustered below the configured zoom (features with MapLibre's properties {cluster: true, "
        "cluster_id, point_count, point_count_abbreviated}); polygons are simplified to about a pixel at `zoom`.",
        extensions=allow(ReadsHouseholds),
    )
    async def feature_collection(
        self,
        info: Ctx,
        layer: Annotated[MapLayer, strawberry.argument(description="Which layer.")],
        bbox: Annotated[
            list[float] | None,
            strawberry.argument(description="[minLon, minLat, maxLon, maxLat] in coordSys: only features intersecting it."),
        ] = None,
        zoom: Annotated[
            int | None,
            strawberry.argument(
                description="Map zoom 0..22: point layers are clustered below 12, polygons simplified to about a pixel."
            ),
        ] = None,
        filter: Annotated[
            LayerFilter | None,
            strawberry.argument(description="Narrows the layer (area, site, facility kinds, zero-employment, date)."),
        ] = None,
        limit: Annotated[
            int | None,
            strawberry.argument(
                description="At most this many features, 1..10,000 (default 5,000); `truncated: true` when more matched."
            ),
        ] = None,
        coord_sys: Annotated[
            CoordSys,
            strawberry.argument(description="Coordinate system of bbox and of the returned coordinates (default WGS84)."),
        ] = CoordSys.WGS84,
    ) -> JSON:
        q = feature_collection_statement(info, layer, bbox, zoom, filter, limit, coord_sys)
        async with info.context.sessionmaker() as s:
            return json.loads(str(await s.scalar(q)))
