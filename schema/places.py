"""Keeping the registry: create, update and close relocation sites (安置区) and facilities (产业/服务设施).

``PlaceMutation`` is mixed into the root ``Mutation`` (schema/mutations.py). Admins write anywhere,
county officers only the places under their area codes (row-level security: FORBIDDEN), planners
and partners never (FORBIDDEN). Updates and closes carry the place's ``version``; a stale one is a
``CONFLICT`` and writes nothing. In update inputs an omitted field stays as it is and an explicit
``null`` clears it (refused for required fields). Rules: ``resolvers.places``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import strawberry

from resolvers import places
from resolvers.places import PlaceLimits
from resolvers.query import optional_id, require_id
from schema.enums import FacilityKind, SiteKind
from schema.idempotency import idempotency_key_field, once
from schema.permissions import WritesPlaces, allow
from schema.scalars import GeoJSON
from schema.types import Ctx, Facility, RelocationSite, given_fields, written_row

WRITES_PLACES = allow(WritesPlaces)
"""Admins, and county officers under their areas (row-level security); others FORBIDDEN."""
VERSION = "The place's `version` as you last read it (optimistic locking)."
UNCHANGED = " Omitted: unchanged."
CLEARS = " Omitted: unchanged; null clears it."
NAME = "Name, 1..200 characters."
ADMIN_CODE = (
    "Admin area code (6, 9 or 12 digits) the place belongs to; it must exist. The location may lie at most "
    "the configured tolerance (default 2,000 m) outside that area's polygon (or its nearest ancestor's)."
)
SITE_ADMIN_CODE = ADMIN_CODE + " A site's is a county, township or village code."
LOCATION = "GeoJSON Point, WGS84 lon/lat."
POLYGON = "GeoJSON Polygon or MultiPolygon, WGS84 (stored as MultiPolygon)."
OPENED_ON = "Date it opened (开放/投用); may lie in the future for a planned place (not open before that date)."
SITE_FIELDS = ("name", "kind", "admin_code", "location", "boundary", "planned_households", "planned_population", "opened_on")
FACILITY_FIELDS = (
    "name",
    "kind",
    "admin_code",
    "location",
    "footprint",
    "area_mu",
    "planned_jobs",
    "operator",
    "opened_on",
)


@strawberry.input(description="A new relocation site (安置区/安置点).")
class CreateRelocationSiteInput:
    name: str = strawberry.field(description=NAME)
    kind: SiteKind = strawberry.field(description="Settlement form (安置方式).")
    admin_code: str = strawberry.field(description=SITE_ADMIN_CODE)
    location: GeoJSON = strawberry.field(description=LOCATION)
    boundary: GeoJSON | None = strawberry.field(default=None, description=POLYGON)
    planned_households: int | None = strawberry.field(default=None, description="Planned households (规划安置户数), >= 0.")
    planned_population: int | None = strawberry.field(default=None, description="Planned population (规划安置人数), >= 0.")
    opened_on: dt.date | None = strawberry.field(default=None, description=OPENED_ON)
    origin_area_codes: list[str] | None = strawberry.field(
        default=None, description="Townships/villages the households came from (迁出地): existing admin area codes, at most 200."
    )
    idempotency_key: str | None = idempotency_key_field()


@strawberry.input(description="Fields of a relocation site to change.")
class UpdateRelocationSiteInput:
    id: strawberry.ID = strawberry.field(description="The site to change.")
    version: int = strawberry.field(description=VERSION)
    name: str | None = strawberry.field(default=strawberry.UNSET, description=NAME + UNCHANGED + " Not null.")
    kind: SiteKind | None = strawberry.field(default=strawberry.UNSET, description="Settlement form." + UNCHANGED + " Not null.")
    admin_code: str | None = strawberry.field(default=strawberry.UNSET, description=SITE_ADMIN_CODE + UNCHANGED + " Not null.")
    location: GeoJSON | None = strawberry.field(default=strawberry.UNSET, description=LOCATION + UNCHANGED + " Not null.")
    boundary: GeoJSON | None = strawberry.field(default=strawberry.UNSET, description=POLYGON + CLEARS)
    planned_households: int | None = strawberry.field(default=strawberry.UNSET, description="Planned households, >= 0." + CLEARS)
    planned_population: int | None = strawberry.field(default=strawberry.UNSET, description="Planned population, >= 0." + CLEARS)
    opened_on: dt.date | None = strawberry.field(default=strawberry.UNSET, description=OPENED_ON + CLEARS)
    origin_area_codes: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description="Origin areas (迁出地), replacing the recorded ones." + CLEARS
    )


@strawberry.input(description="A new facility (产业/服务设施).")
class CreateFacilityInput:
    name: str = strawberry.field(description=NAME)
    kind: FacilityKind = strawberry.field(description="Kind of facility.")
    admin_code: str = strawberry.field(description=ADMIN_CODE)
    location: GeoJSON = strawberry.field(description=LOCATION)
    footprint: GeoJSON | None = strawberry.field(default=None, description=POLYGON)
    site_id: strawberry.ID | None = strawberry.field(default=None, description="The relocation site it serves, if any.")
    area_mu: float | None = strawberry.field(default=None, description="Area in mu (亩), >= 0.")
    planned_jobs: int | None = strawberry.field(default=None, description="Planned jobs (设计岗位数), >= 0.")
    operator: str | None = strawberry.field(default=None, description="Who runs it, 1..200 characters.")
    opened_on: dt.date | None = strawberry.field(default=None, description=OPENED_ON)
    idempotency_key: str | None = idempotency_key_field()


@strawberry.input(description="Fields of a facility to change.")
class UpdateFacilityInput:
    id: strawberry.ID = strawberry.field(description="The facility to change.")
    version: int = strawberry.field(description=VERSION)
    name: str | None = strawberry.field(default=strawberry.UNSET, description=NAME + UNCHANGED + " Not null.")
    kind: FacilityKind | None = strawberry.field(default=strawberry.UNSET, description="Kind." + UNCHANGED + " Not null.")
    admin_code: str | None = strawberry.field(default=strawberry.UNSET, description=ADMIN_CODE + UNCHANGED + " Not null.")
    location: GeoJSON | None = strawberry.field(default=strawberry.UNSET, description=LOCATION + UNCHANGED + " Not null.")
    footprint: GeoJSON | None = strawberry.field(default=strawberry.UNSET, description=POLYGON + CLEARS)
    site_id: strawberry.ID | None = strawberry.field(default=strawberry.UNSET, description="The site it serves." + CLEARS)
    area_mu: float | None = strawberry.field(default=strawberry.UNSET, description="Area in mu (亩), >= 0." + CLEARS)
    planned_jobs: int | None = strawberry.field(default=strawberry.UNSET, description="Planned jobs, >= 0." + CLEARS)
    operator: str | None = strawberry.field(default=strawberry.UNSET, description="Who runs it." + CLEARS)
    opened_on: dt.date | None = strawberry.field(default=strawberry.UNSET, description=OPENED_ON + CLEARS)


@strawberry.input(description="Closes a relocation site or facility from a date on; it stays in history.")
class ClosePlaceInput:
    id: strawberry.ID = strawberry.field(description="The site or facility to close.")
    version: int = strawberry.field(description=VERSION)
    closed_on: dt.date = strawberry.field(
        description="First day it is closed: not in the future, not before openedOn. A facility drops out of "
        "proximity queries from this date."
    )


@strawberry.type(description="What a relocation-site mutation wrote.")
class RelocationSitePayload:
    relocation_site: RelocationSite = strawberry.field(description="The site as written, with its new `version`.")


@strawberry.type(description="What a facility mutation wrote.")
class FacilityPayload:
    facility: Facility = strawberry.field(description="The facility as written, with its new `version`.")


def _limits(info: Ctx) -> PlaceLimits:
    s = info.context.settings
    return PlaceLimits(
        today=info.context.today(),
        max_vertices=s.features.max_vertices,
        tolerance_meters=s.registry.location_tolerance_meters,
    )


async def _site(info: Ctx, w: places.WrittenPlace) -> RelocationSitePayload:
    """The site as read just after the write's commit, answering the version the write produced (see written_household)."""
    info.context.fresh_loaders()
    row = await written_row(info.context.loaders.site, w.id, w.version, "relocation site")
    return RelocationSitePayload(relocation_site=RelocationSite.from_row(row))


async def _facility(info: Ctx, w: places.WrittenPlace) -> FacilityPayload:
    """The facility as read just after the write's commit, answering the version the write produced."""
    info.context.fresh_loaders()
    return FacilityPayload(
        facility=Facility.from_row(await written_row(info.context.loaders.facility, w.id, w.version, "facility"))
    )


def _facility_values(input: CreateFacilityInput | UpdateFacilityInput) -> dict[str, Any]:
    values = given_fields(input, FACILITY_FIELDS)
    if input.site_id is not strawberry.UNSET:
        values["site_id"] = optional_id(input.site_id, "siteId")
    return values


@strawberry.type
class PlaceMutation:
    @strawberry.mutation(
        description="Record a new relocation site (admins; county officers in their areas).", extensions=WRITES_PLACES
    )
    async def create_relocation_site(
        self, info: Ctx, input: Annotated[CreateRelocationSiteInput, strawberry.argument(description="What to record.")]
    ) -> RelocationSitePayload | None:
        values = given_fields(input, (*SITE_FIELDS, "origin_area_codes"))
        w = await once(
            info,
            "createRelocationSite",
            input,
            lambda: places.create_place(info.context.sessionmaker, places.S, values, _limits(info)),
        )
        return await _site(info, w)

    @strawberry.mutation(
        description="Change a relocation site's given fields (omitted: unchanged; null: cleared).", extensions=WRITES_PLACES
    )
    async def update_relocation_site(
        self, info: Ctx, input: Annotated[UpdateRelocationSiteInput, strawberry.argument(description="What to change.")]
    ) -> RelocationSitePayload | None:
        values = given_fields(input, (*SITE_FIELDS, "origin_area_codes"))
        sid = require_id(input.id, "id")
        w = await places.update_place(info.context.sessionmaker, places.S, sid, input.version, values, _limits(info))
        return await _site(info, w)

    @strawberry.mutation(
        description="Close a relocation site from `closedOn` on; it stays listed (history).", extensions=WRITES_PLACES
    )
    async def close_relocation_site(
        self, info: Ctx, input: Annotated[ClosePlaceInput, strawberry.argument(description="What to record.")]
    ) -> RelocationSitePayload | None:
        sid = require_id(input.id, "id")
        w = await places.close_place(info.context.sessionmaker, places.S, sid, input.version, input.closed_on, _limits(info))
        return await _site(info, w)

    @strawberry.mutation(description="Record a new facility (admins; county officers in their areas).", extensions=WRITES_PLACES)
    async def create_facility(
        self, info: Ctx, input: Annotated[CreateFacilityInput, strawberry.argument(description="What to record.")]
    ) -> FacilityPayload | None:
        values = _facility_values(input)
        w = await once(
            info, "createFacility", input, lambda: places.create_place(info.context.sessionmaker, places.F, values, _limits(info))
        )
        return await _facility(info, w)

    @strawberry.mutation(
        description="Change a facility's given fields (omitted: unchanged; null: cleared).", extensions=WRITES_PLACES
    )
    async def update_facility(
        self, info: Ctx, input: Annotated[UpdateFacilityInput, strawberry.argument(description="What to change.")]
    ) -> FacilityPayload | None:
        fid = require_id(input.id, "id")
        w = await places.update_place(
            info.context.sessionmaker, places.F, fid, input.version, _facility_values(input), _limits(info)
        )
        return await _facility(info, w)

    @strawberry.mutation(
        description="Close a facility from `closedOn` on: it drops out of proximity queries on and after that date "
        "and stays listed (history).",
        extensions=WRITES_PLACES,
    )
    async def close_facility(
        self, info: Ctx, input: Annotated[ClosePlaceInput, strawberry.argument(description="What to record.")]
    ) -> FacilityPayload | None:
        fid = require_id(input.id, "id")
        w = await places.close_place(info.context.sessionmaker, places.F, fid, input.version, input.closed_on, _limits(info))
        return await _facility(info, w)
