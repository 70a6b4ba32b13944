"""Core object types of API.md.

AdminArea, RelocationSite, Facility, Household, Member, Employment, IncomeLinkage, and their connections. Types present rows from
``resolvers``; nested fields go through the request's DataLoaders (one query per field per request).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import enum
import json
import math
from collections.abc import Awaitable, Callable, Hashable, Sequence
from decimal import Decimal
from typing import Annotated, Any, Generic, Protocol, TypeVar

import strawberry
from strawberry import Info
from strawberry.dataloader import DataLoader

import models as m
from resolvers import coverage as cov
from resolvers import suppression as sup
from resolvers.coords import CoordSys, geojson_from_wgs84
from resolvers.errors import InvalidInput
from resolvers.geofilters import MAX_RADIUS_METERS
from resolvers.mutations import Written
from resolvers.paging import Page, PageArgs, page_args
from resolvers.query import check_year
from resolvers.rows import (
    AdminAreaRow,
    EmploymentRow,
    FacilityRow,
    HouseholdIncomeRow,
    HouseholdRow,
    IncomeLinkageRow,
    MemberRow,
    ResidenceRow,
    SiteRow,
    TypedRow,
)
from schema.context import Context
from schema.enums import (
    AdminLevel,
    AssistanceTier,
    EmploymentChannel,
    FacilityKind,
    Gender,
    JoinReason,
    LeaveReason,
    LinkageMechanism,
    MonitoringCategory,
    PovertyStatus,
    Relation,
    SiteKind,
    describe_values,
)
from schema.permissions import NotPartner, PairedCountyForPartners, ReadsHouseholds, allow
from schema.scalars import GeoJSON

T = TypeVar("T")
R = TypeVar("R")
K = TypeVar("K", bound=Hashable)
WrittenRowT = TypeVar("WrittenRowT", bound="TypedRow")
NULL_FOR_PARTNERS = allow(NotPartner, null_otherwise=True)
"""Counts per site or facility: null for partners, who get aggregates per paired county only."""
Ctx = Info[Context, None]

CoordSysEnum = strawberry.enum(
    CoordSys,
    name="CoordSys",
    description="Coordinate system of geometry arguments/results: WGS84 (stored), GCJ02 (AMap/Tencent basemaps), BD09 (Baidu).",
)
COORD_SYS_ARG = "Coordinate system of the result: WGS84 (default, as stored), GCJ02 or BD09."
describe_values(
    CoordSysEnum,
    {
        "WGS84": "WGS84 (EPSG:4326), GPS coordinates: how Anju stores every geometry; OpenStreetMap-based maps",
        "GCJ02": "GCJ-02 (国测局坐标, 'Mars' coordinates): AMap/Gaode and Tencent basemaps",
        "BD09": "BD-09 (百度坐标): Baidu basemaps",
    },
)
FIRST = "Page size: at most this many records (default 50, at most 500)."
AFTER = "Cursor: `pageInfo.endCursor` of the previous page; omit for the first page."
AS_OF = "The date asked about (YYYY-MM-DD); default: today in Asia/Shanghai."
YEAR = "Calendar year, e.g. 2023."
KINDS = "Facility kinds to consider (any of); every kind when omitted."
FirstArg = Annotated[int | None, strawberry.argument(description=FIRST)]
"""The ``first`` argument of a connection field."""
AfterArg = Annotated[str | None, strawberry.argument(description=AFTER)]
"""The ``after`` argument of a connection field."""
AsOfArg = Annotated[dt.date | None, strawberry.argument(description=AS_OF)]
"""The ``asOf`` argument of a field on a date."""
OpenOnArg = Annotated[
    dt.date | None,
    strawberry.argument(
        description="Only facilities open on this date (openedOn <= asOf < closedOn, unknown dates open); "
        "default: today in Asia/Shanghai."
    ),
]
"""The ``asOf`` argument of a proximity field: facilities open on that date."""
YearArg = Annotated[int, strawberry.argument(description=YEAR)]
"""The ``year`` argument of a field of a year."""


def geo_out(value: Any, coord_sys: CoordSys) -> Any:
    """A stored GeoJSON text/object, as a GeoJSON object in ``coord_sys``."""
    if value is None:
        return None
    obj = json.loads(value) if isinstance(value, str) else value
    return geojson_from_wgs84(obj, coord_sys)


def geometry_field(attr: str, description: str) -> Any:
    """A non-null geometry field read from the private ``attr``, with a ``coordSys`` argument."""

    def resolve(
        root: Any, coord_sys: Annotated[CoordSys, strawberry.argument(description=COORD_SYS_ARG)] = CoordSys.WGS84
    ) -> GeoJSON:
        return geo_out(getattr(root, attr), coord_sys)

    return strawberry.field(resolver=resolve, description=description)


def optional_geometry_field(attr: str, description: str) -> Any:
    """Like ``geometry_field`` for a nullable geometry."""

    def resolve(
        root: Any, coord_sys: Annotated[CoordSys, strawberry.argument(description=COORD_SYS_ARG)] = CoordSys.WGS84
    ) -> GeoJSON | None:
        return geo_out(getattr(root, attr), coord_sys)

    return strawberry.field(resolver=resolve, description=description)


def connection_args(info: Ctx, first: int | None, after: str | None, *, kind: str, numeric: bool = True) -> PageArgs:
    """Validate ``first``/``after`` against the settings' page sizes (BAD_USER_INPUT naming the argument)."""
    p = info.context.settings.paging
    return page_args(first, after, kind=kind, numeric=numeric, default=p.default_page_size, maximum=p.max_page_size)


def from_row_fields(cls: type[T], row: object, **given: Any) -> T:
    """A strawberry type built from a resolver row, field by field.

    Args:
        cls: the strawberry type; each of its constructor fields ``x`` or private ``_x`` takes ``row.x``.
        row: the resolver row.
        **given: values of the fields that are not a plain copy (renamed or converted).

    Returns:
        The object; a field named ``id`` becomes a GraphQL ``ID`` (the row's id as a string).
    """
    values = dict(given)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]  # strawberry types are dataclasses
        if f.init and f.name not in values:
            value = getattr(row, f.name.lstrip("_"))
            values[f.name] = strawberry.ID(str(value)) if f.name == "id" else value
    return cls(**values)


async def load_optional(loader: DataLoader[K, R | None], key: K | None, make: Callable[[R], T]) -> T | None:
    """The object a nullable key names, through the request's DataLoader.

    Args:
        loader: batch loader of rows (None for a missing key).
        key: the key; None gives None.
        make: builds the object from its row.

    Returns:
        The object, or None when the key is None or names no row (that you may see).
    """
    row = await loader.load(key) if key is not None else None
    return make(row) if row else None


async def load_found(loader: DataLoader[K, R | None], key: K, make: Callable[[R], T], what: str) -> T:
    """The object a foreign key (or this request's own write) guarantees, through the request's DataLoader.

    Args:
        loader: batch loader of rows (None for a missing key).
        key: the key.
        make: builds the object from its row.
        what: the kind of record, for the error.

    Returns:
        The object.

    Raises:
        LookupError: the row vanished (a concurrent delete): an internal error, not a client's.
    """
    return make(found(await loader.load(key), what, key))


@strawberry.type(description="Relay-style page information.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="True when another page follows this one.")
    end_cursor: str | None = strawberry.field(
        description="Cursor of the last record of this page: pass it as `after` for the next page; null on an empty page."
    )


@strawberry.type(description="A page of records: `nodes`, `totalCount` (computed only when asked) and `pageInfo`.")
class Connection(Generic[T]):
    nodes: list[T] = strawberry.field(description="The records of this page, in the list's order (by id or code).")
    page_info: PageInfo = strawberry.field(description="Whether more pages follow, and the cursor to get the next one.")
    _count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="Records matching the filter, over all pages.")
    async def total_count(self) -> int:
        return await self._count()

    @classmethod
    def of(cls, page: Page[R], make: Callable[[R], T]) -> Connection[T]:
        return cls(
            nodes=[make(r) for r in page.nodes],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
            _count=page.count,
        )


class _HasId(Protocol):
    @property
    def id(self) -> int: ...


RowT = TypeVar("RowT", bound=_HasId)


def primed(loader: DataLoader[int, RowT | None], page: Page[RowT], make: Callable[[RowT], T]) -> Connection[T]:
    """A connection of a list query's page whose rows also prime the request's by-id loader.

    Args:
        loader: the by-id loader of the rows' kind.
        page: the page the list query returned.
        make: builds an object from a row.

    Returns:
        The connection of ``page``.
    """
    loader.prime_many({r.id: r for r in page.nodes})
    return Connection.of(page, make)


@strawberry.type(description="行政区划: province > prefecture > county > township > village/community (GB/T 2260 + NBS codes).")
class AdminArea:
    code: str = strawberry.field(
        description="6-digit GB/T 2260 code (province/prefecture/county), 9-digit township or "
        "12-digit village-level NBS statistical code."
    )
    name: str = strawberry.field(description="Official name, e.g. 喜德县.")
    level: AdminLevel = strawberry.field(description="Level: province, prefecture, county, township or village.")
    parent_code: strawberry.Private[str | None]
    assistance_tier: AssistanceTier | None = strawberry.field(description="重点帮扶县 tier, for counties.")
    _geometry: strawberry.Private[str | None]

    geometry: GeoJSON | None = optional_geometry_field("_geometry", "Boundary MultiPolygon, where one is known.")

    @classmethod
    def from_row(cls, r: AdminAreaRow) -> AdminArea:
        return from_row_fields(cls, r)

    @strawberry.field(description="The area directly above (null for a province).")
    async def parent(self, info: Ctx) -> AdminArea | None:
        return await _area(info, self.parent_code)

    @strawberry.field(description="Areas directly below this one, by code.")
    async def children(
        self,
        info: Ctx,
        first: FirstArg = None,
        after: AfterArg = None,
    ) -> Connection[AdminArea]:
        args = connection_args(info, first, after, kind="admin_area", numeric=False)
        page = await info.context.loaders.children_pages.load((self.code, args))
        return Connection.of(page, AdminArea.from_row)

    @strawberry.field(
        description="Employment coverage (就业覆盖) of every household under this area on `asOf` "
        "(default: today, Asia/Shanghai).",
        extensions=allow(PairedCountyForPartners),
    )
    async def employment_coverage(self, info: Ctx, as_of: AsOfArg = None) -> EmploymentCoverage:
        c = await info.context.loaders.area_coverage.load((self.code, info.context.as_of(as_of)))
        return EmploymentCoverage.of(c, info.context.suppression_k)

    @strawberry.field(
        description="Income linkages (利益联结) of `year` over every household under this area.",
        extensions=allow(PairedCountyForPartners),
    )
    async def income_linkage_summary(self, info: Ctx, year: YearArg) -> IncomeLinkageSummary:
        summary = await info.context.loaders.area_linkage_summary.load((self.code, check_year(year)))
        return IncomeLinkageSummary.of(summary, "area", self.code, year, info.context.suppression_k)


async def _area(info: Ctx, code: str | None) -> AdminArea | None:
    return await load_optional(info.context.loaders.admin_area, code, AdminArea.from_row)


async def _required_area(info: Ctx, code: str) -> AdminArea:
    return await load_found(info.context.loaders.admin_area, code, AdminArea.from_row, "admin area")


async def _site(info: Ctx, site_id: int | None) -> RelocationSite | None:
    return await load_optional(info.context.loaders.site, site_id, RelocationSite.from_row)


async def _facility(info: Ctx, facility_id: int | None) -> Facility | None:
    return await load_optional(info.context.loaders.facility, facility_id, Facility.from_row)


def found(row: T | None, what: str, key: object) -> T:
    """A row a foreign key (or this request's own write) guarantees.

    Only a concurrent delete makes it None, which is an internal error, not a client's.
    """
    if row is None:
        raise LookupError(f"{what} {key} vanished")
    return row


async def household_by_id(info: Ctx, household_id: int) -> Household:
    """The household a foreign key (or this request's write) names, through the request's loader."""
    return await load_found(info.context.loaders.household, household_id, Household.from_row, "household")


async def written_household(info: Ctx, w: Written) -> Household:
    """The household a write of this request changed, for its payload: read just after the commit.

    ``w.version`` is the version the write produced and is what the payload answers, even when another write has
    raised it since the commit (the other fields show the row as read): a client that edits next with it gets
    ``CONFLICT`` if someone else wrote in between, never overwrites that write unseen. The request's loaders
    start afresh (the data changed); see ``written_row``.

    Raises:
        LookupError: the household vanished since the commit (see ``load_found``).
    """
    info.context.fresh_loaders()
    return Household.from_row(await written_row(info.context.loaders.household, w.household_id, w.version, "household"))


async def written_row(loader: DataLoader[int, WrittenRowT | None], key: int, version: int, what: str) -> WrittenRowT:
    """The row of a record this request's write changed (a household, site or facility), with the version it produced.

    Read after the commit through the request's fresh ``loader``, with ``version`` (the write's) in place of the one
    read, and kept in the loader so that the record answers that version wherever the payload reaches it
    (``member { household }``, ``households { site }``), not only at its top.

    Raises:
        LookupError: the row vanished (a concurrent delete): an internal error, not a client's.
    """
    row = dataclasses.replace(found(await loader.load(key), what, key), version=version)
    loader.prime(key, row, force=True)
    return row


async def member_by_id(info: Ctx, member_id: int) -> Member:
    """The member a foreign key (or this request's write) names, through the request's loader."""
    return await load_found(info.context.loaders.member, member_id, Member.from_row, "member")


@strawberry.type(description="安置区/安置点: a relocation site. Counts are derived from household rows.")
class RelocationSite:
    id: strawberry.ID = strawberry.field(description="Site id.")
    name: str = strawberry.field(description="Site name, e.g. 彝欣社区.")
    kind: SiteKind = strawberry.field(description="Settlement form (安置方式).")
    planned_households: int | None = strawberry.field(description="Planned households (规划安置户数), as recorded.")
    planned_population: int | None = strawberry.field(description="Planned population (规划安置人数), as recorded.")
    opened_on: dt.date | None = strawberry.field(description="Date the site opened, if recorded.")
    closed_on: dt.date | None = strawberry.field(
        description="First day the site is closed (撤销), if closed; a closed site stays listed (history)."
    )
    version: int = strawberry.field(
        description="Row version; updateRelocationSite and closeRelocationSite carry it (optimistic locking)."
    )
    _id: strawberry.Private[int]
    _admin_code: strawberry.Private[str]
    _location: strawberry.Private[str]
    _boundary: strawberry.Private[str | None]

    location: GeoJSON = geometry_field("_location", "Point.")

    boundary: GeoJSON | None = optional_geometry_field("_boundary", "MultiPolygon, where drawn.")

    @classmethod
    def from_row(cls, r: SiteRow) -> RelocationSite:
        return from_row_fields(cls, r)

    @strawberry.field(description="The village/community-level area the site belongs to.")
    async def admin_area(self, info: Ctx) -> AdminArea:
        return await _required_area(info, self._admin_code)

    @strawberry.field(
        description="Households living at the site (rows with this site) that you may see, 户; "
        "null for partner viewers (they get aggregates per paired county).",
        extensions=NULL_FOR_PARTNERS,
    )
    async def household_count(self, info: Ctx) -> int | None:
        return int((await info.context.loaders.site_stats.load(self._id)).household_count)

    @strawberry.field(
        description="Members of the site's households you may see, 人; null for partner viewers.", extensions=NULL_FOR_PARTNERS
    )
    async def population(self, info: Ctx) -> int | None:
        return int((await info.context.loaders.site_stats.load(self._id)).population)

    @strawberry.field(description="Townships/villages the site's households came from (迁出地).")
    async def origin_areas(self, info: Ctx) -> list[AdminArea]:
        codes = await info.context.loaders.site_origin_codes.load(self._id)
        rows = await info.context.loaders.admin_area.load_many(codes)
        return [AdminArea.from_row(r) for r in rows if r]

    @strawberry.field(description="The site's households, by id.", extensions=allow(ReadsHouseholds))
    async def households(
        self,
        info: Ctx,
        first: FirstArg = None,
        after: AfterArg = None,
    ) -> Connection[Household]:
        args = connection_args(info, first, after, kind="household")
        page = await info.context.loaders.site_household_pages.load((self._id, args))
        return Connection.of(page, Household.from_row)

    @strawberry.field(description="Facilities attached to the site (facility.site), by id.")
    async def facilities(self, info: Ctx) -> list[Facility]:
        return [Facility.from_row(r) for r in await info.context.loaders.site_facilities.load(self._id)]

    @strawberry.field(
        description="Facilities open on `asOf` within `radiusMeters` (geodesic metres, WGS84 ellipsoid) of the site, "
        "nearest first; optionally of some kinds."
    )
    async def nearby_facilities(
        self,
        info: Ctx,
        radius_meters: Annotated[
            float, strawberry.argument(description="Radius in metres (geodesic, WGS84 ellipsoid), > 0 and at most 1,000,000.")
        ],
        kinds: Annotated[list[FacilityKind] | None, strawberry.argument(description=KINDS)] = None,
        first: Annotated[int, strawberry.argument(description="at most this many, nearest first (default 50, at most 500)")] = 50,
        as_of: OpenOnArg = None,
    ) -> list[FacilityDistance]:
        if not math.isfinite(radius_meters) or not 0 < radius_meters <= MAX_RADIUS_METERS:
            raise InvalidInput(f"radiusMeters: {radius_meters} outside (0, {MAX_RADIUS_METERS:.0f}] metres", field="radiusMeters")
        limit = info.context.settings.paging.max_page_size
        if not 1 <= first <= limit:
            raise InvalidInput(f"first: {first} is outside 1..{limit}", field="first")
        key = (self._id, float(radius_meters), tuple(kinds) if kinds else None, first, info.context.as_of(as_of))
        return [
            FacilityDistance(facility=Facility.from_row(x.facility), distance_meters=x.distance_meters)
            for x in await info.context.loaders.nearby_facilities.load(key)
        ]

    @strawberry.field(
        description="The nearest facility open on `asOf` of each kind (all kinds when omitted) and its geodesic "
        "distance in metres; kinds with no open facility are left out."
    )
    async def nearest_by_kind(
        self,
        info: Ctx,
        kinds: Annotated[list[FacilityKind] | None, strawberry.argument(description=KINDS)] = None,
        as_of: OpenOnArg = None,
    ) -> list[FacilityDistance]:
        wanted = tuple(dict.fromkeys(kinds)) if kinds else tuple(m.FacilityKind)
        pairs = await info.context.loaders.nearest_by_kind.load((self._id, wanted, info.context.as_of(as_of)))
        rows = await info.context.loaders.facility.load_many([fid for fid, _ in pairs])
        return [
            FacilityDistance(facility=Facility.from_row(r), distance_meters=d) for (_, d), r in zip(pairs, rows, strict=True) if r
        ]

    @strawberry.field(
        description="Employment coverage (就业覆盖) of the site's households on `asOf` (default: today, Asia/Shanghai).",
        extensions=allow(NotPartner),
    )
    async def employment_coverage(self, info: Ctx, as_of: AsOfArg = None) -> EmploymentCoverage:
        c = await info.context.loaders.site_coverage.load((self._id, info.context.as_of(as_of)))
        return EmploymentCoverage.of(c, info.context.suppression_k)

    @strawberry.field(description="Income linkages (利益联结) of the site's households in `year`.", extensions=allow(NotPartner))
    async def income_linkage_summary(self, info: Ctx, year: YearArg) -> IncomeLinkageSummary:
        summary = await info.context.loaders.site_linkage_summary.load((self._id, check_year(year)))
        return IncomeLinkageSummary.of(summary, "site", str(self._id), year, info.context.suppression_k)


@strawberry.type(description="产业/服务设施: a park, base, workshop, factory, school, clinic …")
class Facility:
    id: strawberry.ID = strawberry.field(description="Facility id.")
    name: str = strawberry.field(description="Facility name.")
    kind: FacilityKind = strawberry.field(description="Kind of facility (industrial park, workshop, school …).")
    area_mu: float | None = strawberry.field(description="Area in mu (亩; 1 mu = 666.67 m²).")
    planned_jobs: int | None = strawberry.field(description="Planned jobs (设计岗位数).")
    operator: str | None = strawberry.field(description="Who runs it (enterprise, cooperative, office), if recorded.")
    opened_on: dt.date | None = strawberry.field(description="Date it opened, if recorded.")
    closed_on: dt.date | None = strawberry.field(
        description="First day it is closed, if closed: from then on it drops out of proximity queries (it stays listed)."
    )
    version: int = strawberry.field(description="Row version; updateFacility and closeFacility carry it (optimistic locking).")
    _id: strawberry.Private[int]
    _admin_code: strawberry.Private[str]
    _site_id: strawberry.Private[int | None]
    _location: strawberry.Private[str]
    _footprint: strawberry.Private[str | None]

    location: GeoJSON = geometry_field("_location", "Point.")

    footprint: GeoJSON | None = optional_geometry_field("_footprint", "MultiPolygon, where drawn.")

    @classmethod
    def from_row(cls, r: FacilityRow) -> Facility:
        return from_row_fields(cls, r)

    @strawberry.field(description="The admin area the facility lies in.")
    async def admin_area(self, info: Ctx) -> AdminArea:
        return await _required_area(info, self._admin_code)

    @strawberry.field(description="The relocation site the facility serves, if attached to one.")
    async def site(self, info: Ctx) -> RelocationSite | None:
        return await _site(info, self._site_id)

    @strawberry.field(
        description="Members (of the households you may see) with an employment here active on `asOf` "
        "(default: today), persons; null for partner viewers.",
        extensions=NULL_FOR_PARTNERS,
    )
    async def employees(self, info: Ctx, as_of: AsOfArg = None) -> int | None:
        n, _ = await info.context.loaders.facility_employees.load((self._id, info.context.as_of(as_of)))
        return int(n)

    @strawberry.field(
        description="employees(asOf) ÷ plannedJobs; null without planned jobs, and for partner viewers.",
        extensions=NULL_FOR_PARTNERS,
    )
    async def jobs_filled_rate(self, info: Ctx, as_of: AsOfArg = None) -> float | None:
        if not self.planned_jobs:
            return None
        n, _ = await info.context.loaders.facility_employees.load((self._id, info.context.as_of(as_of)))
        return int(n) / self.planned_jobs

    @strawberry.field(
        description="Households (that you may see) with an income linkage to this facility in `year`; null for partner viewers.",
        extensions=NULL_FOR_PARTNERS,
    )
    async def linked_households(self, info: Ctx, year: YearArg) -> int | None:
        return int(await info.context.loaders.facility_linked_households.load((self._id, check_year(year))))


@strawberry.type(description="A facility and its geodesic distance (metres, WGS84 ellipsoid).")
class FacilityDistance:
    facility: Facility = strawberry.field(description="The facility.")
    distance_meters: float = strawberry.field(description="Geodesic distance in metres (WGS84 ellipsoid).")


@strawberry.type(description="搬迁户: a relocated household (or a never-relocated one, with no site).")
class Household:
    id: strawberry.ID = strawberry.field(description="Household id.")
    code: str = strawberry.field(description="Household code (户编号), unique.")
    relocated_on: dt.date | None = strawberry.field(
        description="Date the household moved to its site (null when never relocated)."
    )
    poverty_status: PovertyStatus = strawberry.field(description="脱贫户 or 一般户.")
    monitoring_category: MonitoringCategory | None = strawberry.field(description="防返贫监测对象类别, if monitored.")
    risk_eliminated: bool | None = strawberry.field(description="风险已消除, for monitored households.")
    version: int = strawberry.field(description="Row version; edits must carry it (optimistic locking).")
    _member_count: strawberry.Private[int]
    _labor_force_count: strawberry.Private[int]
    _id: strawberry.Private[int]
    _admin_code: strawberry.Private[str]
    _site_id: strawberry.Private[int | None]
    _origin_code: strawberry.Private[str | None]
    _dwelling: strawberry.Private[str | None]

    dwelling: GeoJSON | None = optional_geometry_field("_dwelling", "Point of the dwelling.")

    @classmethod
    def from_row(cls, r: HouseholdRow) -> Household:
        return from_row_fields(
            cls, r, _member_count=r.member_count, _labor_force_count=r.labor_force_count, _origin_code=r.origin_admin_code
        )

    async def _sizes(self, info: Ctx, as_of: dt.date | None) -> tuple[int, int]:
        if as_of is None:  # today: the trigger-kept counts of members who have not left
            return self._member_count, self._labor_force_count
        return await info.context.loaders.sizes.load((self._id, info.context.as_of(as_of)))

    @strawberry.field(
        description="Members present (人) on `asOf` (joinedOn <= asOf < leftOn); default: today, the members who have not left."
    )
    async def size(self, info: Ctx, as_of: AsOfArg = None) -> int:
        return (await self._sizes(info, as_of))[0]

    @strawberry.field(description="Members present on `asOf` recorded as labor force (劳动力); default: today.")
    async def labor_force_count(self, info: Ctx, as_of: AsOfArg = None) -> int:
        return (await self._sizes(info, as_of))[1]

    @strawberry.field(description="The village/community-level area where the household lives now.")
    async def admin_area(self, info: Ctx) -> AdminArea:
        return await _required_area(info, self._admin_code)

    @strawberry.field(description="The relocation site it lives at; null for households never relocated.")
    async def site(self, info: Ctx) -> RelocationSite | None:
        return await _site(info, self._site_id)

    @strawberry.field(description="The village/township the household left (迁出地).")
    async def origin_area(self, info: Ctx) -> AdminArea | None:
        return await _area(info, self._origin_code)

    @strawberry.field(
        description="Its members (家庭成员): those who have not left, or with `includeLeft` every member ever recorded."
    )
    async def members(
        self,
        info: Ctx,
        include_left: Annotated[
            bool, strawberry.argument(description="Also the members who left (leftOn set): the household's whole record.")
        ] = False,
    ) -> list[Member]:
        rows = await info.context.loaders.members.load(self._id)
        today = info.context.today()
        return [Member.from_row(r) for r in rows if include_left or r.left_on is None or r.left_on > today]

    @strawberry.field(
        description="Where it lived (dated): residence rows by validFrom; the last is where it lives now. A relocated "
        "household's first row is its origin village."
    )
    async def residences(self, info: Ctx) -> list[Residence]:
        return [Residence.from_row(r) for r in await info.context.loaders.residences.load(self._id)]

    @strawberry.field(
        description="Surveyed income (家庭纯收入) of `year` with the household size it counts; null if not surveyed."
    )
    async def income(self, info: Ctx, year: YearArg) -> HouseholdIncome | None:
        row = await info.context.loaders.income.load((self._id, check_year(year)))
        return HouseholdIncome.from_row(row) if row is not None else None

    @strawberry.field(description="Its members' employments active on `asOf` (default: today, Asia/Shanghai).")
    async def employments(self, info: Ctx, as_of: AsOfArg = None) -> list[Employment]:
        rows = await info.context.loaders.household_employments.load((self._id, info.context.as_of(as_of)))
        return [Employment.from_row(r) for r in rows]

    @strawberry.field(description="Income linkages (利益联结) of `year`, or of every year when omitted; yuan/year.")
    async def income_linkages(
        self,
        info: Ctx,
        year: Annotated[int | None, strawberry.argument(description="Calendar year; every year when omitted.")] = None,
    ) -> list[IncomeLinkage]:
        key = (self._id, check_year(year) if year is not None else None)
        return [IncomeLinkage.from_row(r) for r in await info.context.loaders.income_linkages.load(key)]

    @strawberry.field(description="Members stably employed (稳定就业) on `asOf` (default: today), persons.")
    async def stably_employed_count(self, info: Ctx, as_of: AsOfArg = None) -> int:
        st = await info.context.loaders.household_employment.load((self._id, info.context.as_of(as_of)))
        return int(st.stably_employed_count)

    @strawberry.field(description="零就业家庭: has labor force and no member employed on `asOf` (default: today).")
    async def is_zero_employment(self, info: Ctx, as_of: AsOfArg = None) -> bool:
        st = await info.context.loaders.household_employment.load((self._id, info.context.as_of(as_of)))
        return bool(st.is_zero_employment)

    @strawberry.field(
        description="Income-linkage yuan of `year`, summed and by mechanism; perCapita = total ÷ the year's household size "
        "(recorded with that year's income, else the members present at the year's end)."
    )
    async def linked_income(self, info: Ctx, year: YearArg) -> LinkedIncome:
        li = await info.context.loaders.linked_income.load((self._id, check_year(year)))
        return LinkedIncome(
            total=li.total,
            per_capita=li.per_capita,
            by_mechanism=[MechanismAmount.of(x) for x in li.by_mechanism],
        )

    @strawberry.field(description="Surveyed annual net income (家庭纯收入) of `year`, yuan; null if not surveyed.")
    async def net_income(self, info: Ctx, year: YearArg) -> Decimal | None:
        return await info.context.loaders.net_income.load((self._id, check_year(year)))


@strawberry.type(description="家庭成员: a member of a household.")
class Member:
    id: strawberry.ID = strawberry.field(description="Member id.")
    name: str = strawberry.field(description="Name; masked (张*) for roles without the right to personal data.")
    gender: Gender = strawberry.field(description="Gender (性别).")
    birth_year: int = strawberry.field(description="Year of birth.")
    relation: Relation = strawberry.field(description="Relation to the head of household (与户主关系).")
    labor_force: bool = strawberry.field(description="Recorded as labor force (劳动力).")
    skills: list[str] = strawberry.field(description="Skills as recorded (free text, e.g. 缝纫 sewing).")
    phone: str | None = strawberry.field(
        description="Phone number; masked (138****5678) for roles without the right to personal data."
    )
    id_number_last4: str | None = strawberry.field(
        description="Last 4 characters of the ID number (the number itself is never stored); null for roles without the right."
    )
    joined_on: dt.date | None = strawberry.field(
        description="First day in the household (入户日期); null: a member since before the records begin."
    )
    join_reason: JoinReason = strawberry.field(description="Why the member is in the household (入户原因).")
    left_on: dt.date | None = strawberry.field(
        description="First day no longer in the household (减员日期); null while a member."
    )
    leave_reason: LeaveReason | None = strawberry.field(description="Why the member left (减员原因); null while a member.")
    _id: strawberry.Private[int]
    _household_id: strawberry.Private[int]

    @classmethod
    def from_row(cls, r: MemberRow) -> Member:
        return from_row_fields(cls, r, skills=list(r.skills or []))

    @strawberry.field(description="The household the member belongs to.")
    async def household(self, info: Ctx) -> Household:
        return await household_by_id(info, self._household_id)

    @strawberry.field(description="Employments active on `asOf`; every employment when `asOf` is omitted.")
    async def employments(
        self,
        info: Ctx,
        as_of: Annotated[
            dt.date | None,
            strawberry.argument(description="Only employments active on this date (YYYY-MM-DD); every employment when omitted."),
        ] = None,
    ) -> list[Employment]:
        day = info.context.as_of(as_of) if as_of is not None else None
        rows = await info.context.loaders.member_employments.load((self._id, day))
        return [Employment.from_row(r) for r in rows]


@strawberry.type(description="Where a household lived from `validFrom` until the next residence's validFrom.")
class Residence:
    valid_from: dt.date | None = strawberry.field(
        description="First day (a move or the relocation date); null: since before the records begin."
    )
    dwelling: GeoJSON | None = optional_geometry_field("_dwelling", "Point of the dwelling then, if recorded.")
    _site_id: strawberry.Private[int | None]
    _admin_code: strawberry.Private[str]
    _dwelling: strawberry.Private[str | None]

    @classmethod
    def from_row(cls, r: ResidenceRow) -> Residence:
        return from_row_fields(cls, r)

    @strawberry.field(description="The relocation site; null when not at a site (e.g. the origin village).")
    async def site(self, info: Ctx) -> RelocationSite | None:
        return await _site(info, self._site_id)

    @strawberry.field(description="The village/community-level area it lived in.")
    async def admin_area(self, info: Ctx) -> AdminArea:
        return await _required_area(info, self._admin_code)


@strawberry.type(description="家庭纯收入: a household's surveyed net income of a year and the size its per-capita figures use.")
class HouseholdIncome:
    year: int = strawberry.field(description="Calendar year of the income.")
    net_income: Decimal = strawberry.field(description="Yuan in the year.")
    household_size: int | None = strawberry.field(
        description="Persons the year's per-capita figures divide by (recorded, else the members present on the survey date)."
    )
    surveyed_on: dt.date | None = strawberry.field(description="Date of the survey, if recorded.")

    @classmethod
    def from_row(cls, r: HouseholdIncomeRow) -> HouseholdIncome:
        return from_row_fields(cls, r)


@strawberry.type(description="就业: a member's job spell. Active on D when startOn <= D and (endOn null or >= D).")
class Employment:
    id: strawberry.ID = strawberry.field(description="Employment id.")
    channel: EmploymentChannel = strawberry.field(description="Employment channel (就业渠道).")
    employer_name: str | None = strawberry.field(description="Employer, where not a recorded facility.")
    outbound_region: str | None = strawberry.field(description="Destination region of labor export (劳务输出地).")
    start_on: dt.date = strawberry.field(description="First day of the spell.")
    end_on: dt.date | None = strawberry.field(description="Last day of the spell; null while it lasts.")
    monthly_wage: Decimal | None = strawberry.field(description="Yuan per month.")
    stable: bool = strawberry.field(description="Stable employment (稳定就业): contract or ≥ 6 months a year.")
    _member_id: strawberry.Private[int]
    _facility_id: strawberry.Private[int | None]
    _workplace: strawberry.Private[str | None]

    workplace: GeoJSON | None = optional_geometry_field("_workplace", "Point of the workplace, if known.")

    @classmethod
    def from_row(cls, r: EmploymentRow) -> Employment:
        return from_row_fields(cls, r)

    @strawberry.field(description="The member employed.")
    async def member(self, info: Ctx) -> Member:
        return await member_by_id(info, self._member_id)

    @strawberry.field(description="The facility employing the member (e.g. the workshop), if any.")
    async def facility(self, info: Ctx) -> Facility | None:
        return await _facility(info, self._facility_id)


@strawberry.type(description="利益联结: a yearly benefit flow between a household and a facility/enterprise.")
class IncomeLinkage:
    id: strawberry.ID = strawberry.field(description="Income-linkage id.")
    mechanism: LinkageMechanism = strawberry.field(description="How the household benefits (wage, dividend, land rent …).")
    year: int = strawberry.field(description="Calendar year of the amount.")
    amount: Decimal = strawberry.field(description="Yuan in the year.")
    _household_id: strawberry.Private[int]
    _facility_id: strawberry.Private[int | None]

    @classmethod
    def from_row(cls, r: IncomeLinkageRow) -> IncomeLinkage:
        return from_row_fields(cls, r)

    @strawberry.field(description="The household receiving the amount.")
    async def household(self, info: Ctx) -> Household:
        return await household_by_id(info, self._household_id)

    @strawberry.field(description="The facility or enterprise paying it, if recorded.")
    async def facility(self, info: Ctx) -> Facility | None:
        return await _facility(info, self._facility_id)


@strawberry.type(description="Distinct employed members with an active employment in the channel.")
class ChannelCount:
    channel: EmploymentChannel = strawberry.field(description="Employment channel (就业渠道).")
    count: int = strawberry.field(description="Persons.")


SUPPRESSED = (
    "True when a cell is null because it rests on fewer than k households (partner viewers only; "
    "k = privacy.min_cell_households, default 5)."
)


@strawberry.type(
    description="就业覆盖 on a date (API.md Definitions), over the households you may see. coverageRate = "
    "householdsCovered ÷ householdsWithLaborForce, null when the latter is 0. Counts are null "
    "only for partner viewers, where a cell rests on fewer than k households (`suppressed`)."
)
class EmploymentCoverage:
    households: int | None = strawberry.field(description="Households counted (户).")
    households_with_labor_force: int | None = strawberry.field(
        description="Households with at least one member recorded as labor force (有劳动力家庭), 户."
    )
    households_covered: int | None = strawberry.field(
        description="Households with labor force and at least one member in stable employment (稳定就业) on the date, 户."
    )
    coverage_rate: float | None = strawberry.field(
        description="Employment coverage (就业覆盖率), 0..1: householdsCovered ÷ householdsWithLaborForce; "
        "null when the latter is 0."
    )
    zero_employment_households: int | None = strawberry.field(
        description="Zero-employment households (零就业家庭): labor force but no member employed on the date, 户."
    )
    employed_persons: int | None = strawberry.field(description="Distinct members employed on the date, 人.")
    stably_employed_persons: int | None = strawberry.field(description="Distinct members stably employed on the date, 人.")
    by_channel: list[ChannelCount] = strawberry.field(
        description="Employed members per channel of their active employments (a member in two channels counts in both)."
    )
    suppressed: bool = strawberry.field(description=SUPPRESSED)

    @classmethod
    def of(cls, c: cov.EmploymentCoverage, k: int | None) -> EmploymentCoverage:
        x = sup.coverage(c, k)
        return cls(
            households=x.households,
            households_with_labor_force=x.households_with_labor_force,
            households_covered=x.households_covered,
            coverage_rate=x.coverage_rate,
            zero_employment_households=x.zero_employment_households,
            employed_persons=x.employed_persons,
            stably_employed_persons=x.stably_employed_persons,
            suppressed=x.suppressed,
            by_channel=[ChannelCount(channel=ch.channel, count=ch.count) for ch in x.by_channel],
        )


@strawberry.type(description="Yuan of one linkage mechanism in a year.")
class MechanismAmount:
    mechanism: LinkageMechanism = strawberry.field(description="Linkage mechanism (利益联结方式).")
    amount: Decimal = strawberry.field(description="Yuan.")
    households: int = strawberry.field(description="Households receiving it (1 on a single household's field).")

    @classmethod
    def of(cls, x: cov.MechanismAmount) -> MechanismAmount:
        return cls(mechanism=x.mechanism, amount=x.amount, households=x.households)


@strawberry.type(description="A household's income-linkage yuan of a year.")
class LinkedIncome:
    total: Decimal = strawberry.field(description="Yuan in the year.")
    per_capita: Decimal | None = strawberry.field(
        description="total ÷ the year's household size, half-up to 0.01 yuan; null when nobody was a member."
    )
    by_mechanism: list[MechanismAmount] = strawberry.field(
        description="Yuan per mechanism (in the enum's order); mechanisms without linkages are left out."
    )


@strawberry.type(description="Linkage yuan a facility paid to a group's households in a year.")
class FacilityAmount:
    amount: Decimal = strawberry.field(description="Yuan.")
    households: int = strawberry.field(description="Households linked to the facility in the year, 户.")
    _facility_id: strawberry.Private[int]

    @strawberry.field(description="The facility; null when it lies outside what you may see (a partner's paired counties).")
    async def facility(self, info: Ctx) -> Facility | None:
        return await _facility(info, self._facility_id)


Breakdown = tuple[list[cov.LinkageCell], bool]
"""A partner's view of a linkage breakdown: the cells shown, and whether any was left out."""


@strawberry.type(
    description="利益联结 summary of a site's or area's households (that you may see) in a year. Null "
    "cells only for partner viewers (`suppressed`)."
)
class IncomeLinkageSummary:
    households_linked: int | None = strawberry.field(description="Households with >= 1 linkage in the year.")
    total: Decimal | None = strawberry.field(description="Yuan in the year.")
    _mechanisms: strawberry.Private[list[cov.MechanismAmount]]
    _scope: strawberry.Private[str]
    _key: strawberry.Private[str]
    _year: strawberry.Private[int]
    _k: strawberry.Private[int | None]
    _partner: strawberry.Private[dict[str, asyncio.Future[Breakdown]]]
    """Partner viewers: each breakdown's suppression, computed once (asyncio tasks by dimension)."""

    @classmethod
    def of(cls, s: cov.IncomeLinkageSummary, scope: str, key: str, year: int, k: int | None) -> IncomeLinkageSummary:
        linked, total = sup.summary_totals(s, k)
        return cls(
            households_linked=linked,
            total=total,
            _mechanisms=s.by_mechanism,
            _scope=scope,
            _key=key,
            _year=year,
            _k=k,
            _partner={},
        )

    def _breakdown(self, info: Ctx, dimension: str) -> asyncio.Future[Breakdown]:
        """Partner viewers: (shown cells, anything left out) of a breakdown, computed once per summary."""
        if dimension not in self._partner:
            sm, k = info.context.aggregate_sessionmaker, self._k
            assert k is not None

            async def compute() -> Breakdown:
                if self.households_linked is None:
                    return [], True
                cells = await cov.linkage_cells(sm, self._scope, self._key, self._year, dimension)
                return await sup.shown_linkage_cells(
                    cells, k, lambda shown: cov.households_outside(sm, self._scope, self._key, self._year, dimension, shown)
                )

            self._partner[dimension] = asyncio.ensure_future(compute())
        return self._partner[dimension]

    @strawberry.field(
        description="Yuan and households per mechanism (partner viewers: cells of fewer than k households left out)."
    )
    async def by_mechanism(self, info: Ctx) -> list[MechanismAmount]:
        if self._k is None:
            return [MechanismAmount.of(x) for x in self._mechanisms]
        cells, _ = await self._breakdown(info, "mechanism")
        return [MechanismAmount(mechanism=m.LinkageMechanism(c.key), amount=c.amount, households=c.households) for c in cells]

    @strawberry.field(description=SUPPRESSED + " Covers householdsLinked, total, byMechanism and byFacility.")
    async def suppressed(self, info: Ctx) -> bool:
        if self._k is None:
            return False
        if self.households_linked is None:
            return True
        return any([(await self._breakdown(info, d))[1] for d in ("mechanism", "facility")])

    @strawberry.field(
        description="Facilities paying the most linkage yuan to these households, largest first "
        "(partner viewers: facilities of fewer than k households left out)."
    )
    async def by_facility(
        self,
        info: Ctx,
        first: Annotated[int, strawberry.argument(description="At most this many facilities (default 10, 0..500).")] = 10,
    ) -> list[FacilityAmount]:
        limit = info.context.settings.paging.max_page_size
        if not 0 <= first <= limit:
            raise InvalidInput(f"first: {first} is outside 0..{limit}", field="first")
        if self._k is None:
            rows = await cov.top_facilities(info.context.aggregate_sessionmaker, self._scope, self._key, self._year, first)
            return [FacilityAmount(amount=r.amount, households=r.households, _facility_id=r.facility_id) for r in rows]
        cells, _ = await self._breakdown(info, "facility")
        return [
            FacilityAmount(amount=c.amount, households=c.households, _facility_id=int(c.key))
            for c in cells[:first]
            if c.key is not None  # the linkages without a facility are never shown as a cell
        ]


@strawberry.enum(description="Why a household is listed by householdsAtRisk.")
class RiskReason(enum.Enum):
    BELOW_THRESHOLD = strawberry.enum_value(
        "below_threshold", description="Per-capita net income of the year is below the threshold (yuan)."
    )
    INCOME_DECLINED = strawberry.enum_value(
        "income_declined", description="Per-capita net income fell compared with the previous year (收入不增反降)."
    )


@strawberry.type(description="A household flagged by 防返贫监测, with its per-capita net incomes (yuan).")
class HouseholdRisk:
    household: Household = strawberry.field(description="The household flagged.")
    reasons: list[RiskReason] = strawberry.field(description="Why it is listed (one or both reasons).")
    per_capita_income: Decimal | None = strawberry.field(
        description="Net income of the year ÷ household size, yuan per person (人均纯收入)."
    )
    previous_per_capita_income: Decimal | None = strawberry.field(
        description="The same for the previous year, yuan per person; null when not surveyed."
    )
    change_rate: float | None = strawberry.field(description="(this − previous) ÷ previous per-capita income.")

    @classmethod
    def of(cls, r: cov.RiskRow) -> HouseholdRisk:
        reasons = [
            x
            for x, on in ((RiskReason.BELOW_THRESHOLD, r.below_threshold), (RiskReason.INCOME_DECLINED, r.income_declined))
            if on
        ]
        return cls(
            household=Household.from_row(r.household),
            reasons=reasons,
            per_capita_income=r.per_capita_income,
            previous_per_capita_income=r.previous_per_capita_income,
            change_rate=r.change_rate,
        )


AdminAreaConnection = Connection[AdminArea]
RelocationSiteConnection = Connection[RelocationSite]
FacilityConnection = Connection[Facility]
HouseholdConnection = Connection[Household]


def given_fields(input: object, names: Sequence[str]) -> dict[str, Any]:
    """The input's fields among ``names`` that the client gave, explicit nulls included (omitted ones are UNSET).

    How every update input tells "omitted: unchanged" from "null: cleared".
    """
    return {n: v for n in names if (v := getattr(input, n)) is not strawberry.UNSET}
