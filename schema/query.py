"""Root ``Query`` (API.md "Query (core)") and the filter inputs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry

from resolvers import admin_areas, coverage, facilities, households, sites
from resolvers.errors import InvalidInput
from resolvers.query import check_year, parse_id, require_id
from schema.enums import AdminLevel, FacilityKind
from schema.types import (
    AdminArea,
    Connection,
    Ctx,
    Facility,
    Household,
    HouseholdRisk,
    RelocationSite,
    connection_args,
)


@strawberry.input(description="Relocation-site filter; members combine with AND.")
class SiteFilter:
    name: str | None = strawberry.field(default=None, description="Exact name, e.g. 彝欣社区.")
    name_contains: str | None = strawberry.field(default=None, description="Case-insensitive substring of the name.")
    area_code: str | None = strawberry.field(default=None, description="Admin area code: the area and everything below it.")

    def to_resolver(self) -> sites.SiteFilter:
        return sites.SiteFilter(name=self.name, name_contains=self.name_contains, area_code=self.area_code)


@strawberry.input(description="Facility filter; members combine with AND, `kinds` is any-of.")
class FacilityFilter:
    name: str | None = None
    name_contains: str | None = None
    area_code: str | None = strawberry.field(default=None, description="Admin area code: the area and everything below it.")
    kinds: list[FacilityKind] | None = None

    def to_resolver(self) -> facilities.FacilityFilter:
        return facilities.FacilityFilter(name=self.name, name_contains=self.name_contains, area_code=self.area_code,
                                         kinds=tuple(self.kinds) if self.kinds is not None else None)


@strawberry.input(description="Household filter; members combine with AND.")
class HouseholdFilter:
    site_id: strawberry.ID | None = None
    area_code: str | None = strawberry.field(default=None, description="Admin area code: the area and everything below it.")
    zero_employment: bool | None = strawberry.field(
        default=None, description="true: only 零就业家庭 on `asOf`; false: only households that are not.")
    as_of: dt.date | None = strawberry.field(default=None, description="Date of `zeroEmployment` (default: today).")

    def to_resolver(self, today: dt.date) -> households.HouseholdFilter:
        site_id = require_id(self.site_id, "filter.siteId") if self.site_id is not None else None
        return households.HouseholdFilter(site_id=site_id, area_code=self.area_code,
                                          zero_employment=self.zero_employment, as_of=self.as_of or today)


@strawberry.type
class Query:
    @strawberry.field(description="One admin area by code; null when unknown.")
    async def admin_area(self, info: Ctx, code: str) -> AdminArea | None:
        row = await info.context.loaders.admin_area.load(code) if code.isdigit() and len(code) <= 12 else None
        return AdminArea.from_row(row) if row else None

    @strawberry.field(description="Admin areas by code, optionally of one level and/or directly under a parent.")
    async def admin_areas(self, info: Ctx, level: AdminLevel | None = None, parent_code: str | None = None,
                          first: int | None = None, after: str | None = None) -> Connection[AdminArea]:
        args = connection_args(info, first, after, kind="admin_area", numeric=False)
        page = await admin_areas.admin_areas_page(info.context.sessionmaker, args, level=level, parent_code=parent_code)
        return Connection.of(page, AdminArea.from_row)

    @strawberry.field(description="One relocation site by id; null when unknown.")
    async def relocation_site(self, info: Ctx, id: strawberry.ID) -> RelocationSite | None:
        key = parse_id(id)
        row = await info.context.loaders.site.load(key) if key else None
        return RelocationSite.from_row(row) if row else None

    @strawberry.field(description="Relocation sites matching the filter, by id.")
    async def relocation_sites(self, info: Ctx, filter: SiteFilter | None = None, first: int | None = None,
                               after: str | None = None) -> Connection[RelocationSite]:
        args = connection_args(info, first, after, kind="relocation_site")
        page = await sites.sites_page(info.context.sessionmaker, filter.to_resolver() if filter else None, args)
        info.context.loaders.site.prime_many({r["id"]: r for r in page.nodes})
        return Connection.of(page, RelocationSite.from_row)

    @strawberry.field(description="One facility by id; null when unknown.")
    async def facility(self, info: Ctx, id: strawberry.ID) -> Facility | None:
        key = parse_id(id)
        row = await info.context.loaders.facility.load(key) if key else None
        return Facility.from_row(row) if row else None

    @strawberry.field(description="Facilities matching the filter, by id.")
    async def facilities(self, info: Ctx, filter: FacilityFilter | None = None, first: int | None = None,
                         after: str | None = None) -> Connection[Facility]:
        args = connection_args(info, first, after, kind="facility")
        page = await facilities.facilities_page(info.context.sessionmaker, filter.to_resolver() if filter else None, args)
        info.context.loaders.facility.prime_many({r["id"]: r for r in page.nodes})
        return Connection.of(page, Facility.from_row)

    @strawberry.field(description="One household by id; null when unknown.")
    async def household(self, info: Ctx, id: strawberry.ID) -> Household | None:
        key = parse_id(id)
        row = await info.context.loaders.household.load(key) if key else None
        return Household.from_row(row) if row else None

    @strawberry.field(description="Households matching the filter, by id.")
    async def households(self, info: Ctx, filter: HouseholdFilter | None = None, first: int | None = None,
                         after: str | None = None) -> Connection[Household]:
        args = connection_args(info, first, after, kind="household")
        f = filter.to_resolver(info.context.today()) if filter else None
        page = await households.households_page(info.context.sessionmaker, f, args)
        info.context.loaders.household.prime_many({r["id"]: r for r in page.nodes})
        return Connection.of(page, Household.from_row)

    @strawberry.field(description="零就业家庭 (dynamic zero-clearing work): households with labor force and no member "
                                  "employed on `asOf` (default: today), by id; optionally under an area and/or at a site.")
    async def zero_employment_households(self, info: Ctx, area_code: str | None = None, site_id: strawberry.ID | None = None,
                                         as_of: dt.date | None = None, first: int | None = None,
                                         after: str | None = None) -> Connection[Household]:
        args = connection_args(info, first, after, kind="household")
        sid = require_id(site_id, "siteId") if site_id is not None else None
        page = await coverage.zero_employment_households(info.context.sessionmaker, args, as_of=as_of or info.context.today(),
                                                         area_code=area_code, site_id=sid)
        info.context.loaders.household.prime_many({r["id"]: r for r in page.nodes})
        return Connection.of(page, Household.from_row)

    @strawberry.field(description="防返贫监测: households whose per-capita net income in `year` is below "
                                  "`perCapitaThreshold` (yuan; default from settings, 10,000) or fell compared with "
                                  "`year - 1`, by id.")
    async def households_at_risk(self, info: Ctx, year: int, area_code: str | None = None,
                                 site_id: strawberry.ID | None = None, per_capita_threshold: Decimal | None = None,
                                 first: int | None = None, after: str | None = None) -> Connection[HouseholdRisk]:
        args = connection_args(info, first, after, kind="household")
        sid = require_id(site_id, "siteId") if site_id is not None else None
        threshold = info.context.settings.monitoring.per_capita_threshold if per_capita_threshold is None \
            else per_capita_threshold
        if not threshold.is_finite() or threshold < 0:
            raise InvalidInput(f"perCapitaThreshold: {threshold} must be a finite amount >= 0 (yuan)",
                               field="perCapitaThreshold")
        check_year(year)
        page = await coverage.households_at_risk(info.context.sessionmaker, args, year=year, threshold=threshold,
                                                 area_code=area_code, site_id=sid)
        return Connection.of(page, HouseholdRisk.of)
