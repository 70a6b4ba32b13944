"""Partner portal (东西部协作), ``me`` and the audit log: types, root fields and admin mutations.

A partner viewer reaches its own partner record, the counties it is paired with (each an
``AdminArea`` whose ``employmentCoverage`` and ``incomeLinkageSummary`` come small-cell suppressed),
its projects and funds per year. Admins see every partner and record partners, pairings and
projects; every such write is audited. ``auditLog`` is for admins.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

if TYPE_CHECKING:
    from schema.targets import PlanTarget

from resolvers import partners
from resolvers.query import check_text_arg, check_year, optional_id, parse_id, require_id
from resolvers.rows import AuditRow, PartnerRow, ProjectRow, YearFundsRow
from schema.enums import PartnerKind, ViewerRole
from schema.permissions import IsAdmin, PartnerRecords, allow
from schema.scalars import JSON
from schema.types import (
    AdminArea,
    AfterArg,
    Connection,
    Ctx,
    Facility,
    FirstArg,
    RelocationSite,
    _facility,
    _required_area,
    _site,
    connection_args,
    from_row_fields,
    load_found,
    load_optional,
)


@strawberry.type(description="A project a cooperation partner (co-)funds in a paired county.")
class CooperationProject:
    id: strawberry.ID = strawberry.field(description="Project id.")
    name: str = strawberry.field(description="Project name.")
    year: int = strawberry.field(description="Year the funds were given.")
    funds: Decimal = strawberry.field(description="Yuan the partner put in.")
    households_benefited: int | None = strawberry.field(description="Households the project benefits (受益户数), as recorded.")
    self_raised_share: Decimal | None = strawberry.field(
        description="Share of the cost the households raised themselves (0.700 = 70 %); the rest is co-funding."
    )
    _county_code: strawberry.Private[str]
    _facility_id: strawberry.Private[int | None]
    _site_id: strawberry.Private[int | None]

    @classmethod
    def from_row(cls, r: ProjectRow) -> CooperationProject:
        return from_row_fields(cls, r)

    @strawberry.field(description="The paired county the project is in.")
    async def county(self, info: Ctx) -> AdminArea:
        return await _required_area(info, self._county_code)

    @strawberry.field(description="The facility the project built or supports, if any.")
    async def facility(self, info: Ctx) -> Facility | None:
        return await _facility(info, self._facility_id)

    @strawberry.field(description="The relocation site the project serves, if any.")
    async def site(self, info: Ctx) -> RelocationSite | None:
        return await _site(info, self._site_id)

    @strawberry.field(
        description="The project's targets (households benefited, jobs), each with `progress(asOf)` computed from the rows "
        "— for partner viewers small-cell suppressed, nothing personal."
    )
    async def targets(self, info: Ctx) -> list[Annotated[PlanTarget, strawberry.lazy("schema.targets")]]:
        from schema.targets import PlanTarget

        return [PlanTarget.of(r) for r in await info.context.loaders.project_targets.load(int(self.id))]


@strawberry.type(description="A partner's project funds in one year.")
class YearFunds:
    year: int = strawberry.field(description="Calendar year.")
    funds: Decimal = strawberry.field(description="Yuan, summed over the year's projects.")
    projects: int = strawberry.field(description="Projects of the year.")
    households_benefited: int = strawberry.field(description="Sum of the projects' householdsBenefited.")

    @classmethod
    def from_row(cls, r: YearFundsRow) -> YearFunds:
        return from_row_fields(cls, r, projects=int(r.projects), households_benefited=int(r.households_benefited))


@strawberry.type(description="东西部协作 partner: a donor government, enterprise or social organisation.")
class CooperationPartner:
    id: strawberry.ID = strawberry.field(description="Partner id (the `--partner` of `anju user add`).")
    name: str = strawberry.field(description="Partner name.")
    region: str | None = strawberry.field(description="Home region of the partner (e.g. the donor province), if recorded.")
    kind: PartnerKind = strawberry.field(description="Government, enterprise or social organisation.")
    _id: strawberry.Private[int]

    @classmethod
    def from_row(cls, r: PartnerRow) -> CooperationPartner:
        return from_row_fields(cls, r)

    @strawberry.field(
        description="Counties the partner is paired with; their employmentCoverage and "
        "incomeLinkageSummary are what a partner may see (small cells suppressed)."
    )
    async def paired_counties(self, info: Ctx) -> list[AdminArea]:
        codes = await info.context.loaders.paired_counties.load(self._id)
        rows = await info.context.loaders.admin_area.load_many(codes)
        return [AdminArea.from_row(r) for r in rows if r]

    @strawberry.field(description="The partner's projects of `year` (every year when omitted), by year then id.")
    async def projects(
        self,
        info: Ctx,
        year: Annotated[int | None, strawberry.argument(description="Calendar year; every year when omitted.")] = None,
    ) -> list[CooperationProject]:
        key = (self._id, check_year(year) if year is not None else None)
        return [CooperationProject.from_row(r) for r in await info.context.loaders.partner_projects.load(key)]

    @strawberry.field(description="Project funds per year, by year.")
    async def funds_by_year(self, info: Ctx) -> list[YearFunds]:
        rows = await info.context.loaders.partner_funds.load(self._id)
        return [YearFunds.from_row(r) for r in rows]


@strawberry.type(description="The caller: who the token names and what that role may see.")
class Me:
    name: str = strawberry.field(description="Your user name (the token's `sub` claim).")
    role: ViewerRole = strawberry.field(description="Your role: what you may see and write.")
    area_codes: list[str] = strawberry.field(description="Areas a county officer keeps (empty for other roles).")
    _partner_id: strawberry.Private[int | None]

    @strawberry.field(description="The partner organisation of a partner viewer.")
    async def partner(self, info: Ctx) -> CooperationPartner | None:
        return await load_optional(info.context.loaders.partner, self._partner_id, CooperationPartner.from_row)


@strawberry.type(
    description="One audited mutation: who, when, what, and the record before and after (personal "
    "fields masked, ID numbers and geometries left out)."
)
class AuditEntry:
    id: strawberry.ID = strawberry.field(description="Audit entry id.")
    at: dt.datetime = strawberry.field(description="When the change was committed (timestamp with time zone).")
    user_name: str = strawberry.field(description="Who made the change.")
    role: str = strawberry.field(description="The user's role then (admin, county_officer …).")
    action: str = strawberry.field(description="The mutation, e.g. recordEmployment.")
    entity: str = strawberry.field(description="Table of the record: employment, member, household …")
    entity_id: str = strawberry.field(description="Id of the record (or its key, e.g. partner and county of a pairing).")
    before: JSON | None = strawberry.field(description="The record before the change; null for a new record.")
    after: JSON | None = strawberry.field(description="The record after the change; null when it was removed.")

    @classmethod
    def from_row(cls, r: AuditRow) -> AuditEntry:
        return from_row_fields(cls, r, before=_json(r.before), after=_json(r.after))


def _json(v: Any) -> Any:
    return json.loads(v) if isinstance(v, str) else v


@strawberry.type
class PartnerQuery:
    @strawberry.field(description="The caller.")
    def me(self, info: Ctx) -> Me:
        v = info.context.viewer
        return Me(name=v.name, role=v.role, area_codes=list(v.area_codes), _partner_id=v.partner_id)

    @strawberry.field(
        description="Cooperation partners (admins: all; a partner: itself; other roles: FORBIDDEN), by id.",
        extensions=allow(PartnerRecords),
    )
    async def cooperation_partners(
        self,
        info: Ctx,
        first: FirstArg = None,
        after: AfterArg = None,
    ) -> Connection[CooperationPartner]:
        args = connection_args(info, first, after, kind="cooperation_partner")
        page = await partners.partners_page(info.context.sessionmaker, args)
        return Connection.of(page, CooperationPartner.from_row)

    @strawberry.field(
        description="One cooperation partner; null when unknown or not yours to see.", extensions=allow(PartnerRecords)
    )
    async def cooperation_partner(
        self, info: Ctx, id: Annotated[strawberry.ID, strawberry.argument(description="Partner id.")]
    ) -> CooperationPartner | None:
        return await load_optional(info.context.loaders.partner, parse_id(id), CooperationPartner.from_row)

    @strawberry.field(
        description="Audited mutations (admins), oldest first; optionally of one entity kind "
        "(employment, member, household, income_linkage, household_income, "
        "cooperation_partner, partner_county, cooperation_project, relocation_site, facility) and record id.",
        extensions=allow(IsAdmin),
    )
    async def audit_log(
        self,
        info: Ctx,
        entity: Annotated[
            str | None, strawberry.argument(description="Only entries of this entity kind (a table name, e.g. employment).")
        ] = None,
        entity_id: Annotated[strawberry.ID | None, strawberry.argument(description="Only entries of this record id.")] = None,
        first: FirstArg = None,
        after: AfterArg = None,
    ) -> Connection[AuditEntry]:
        args = connection_args(info, first, after, kind="audit_log")
        if entity is not None:
            check_text_arg(entity, "entity")
        if entity_id is not None:
            check_text_arg(str(entity_id), "entityId")
        page = await partners.audit_page(
            info.context.sessionmaker, args, entity=entity, entity_id=str(entity_id) if entity_id is not None else None
        )
        return Connection.of(page, AuditEntry.from_row)


@strawberry.input(description="A new cooperation partner.")
class RecordCooperationPartnerInput:
    name: str = strawberry.field(description="Partner name, unique, 1..200 characters.")
    kind: PartnerKind = strawberry.field(description="Government, enterprise or social organisation.")
    region: str | None = strawberry.field(default=None, description="Home region, e.g. the donor province.")


@strawberry.input(description="A partner–county pairing.")
class PartnerCountyInput:
    partner_id: strawberry.ID = strawberry.field(description="Cooperation partner id.")
    county_code: str = strawberry.field(description="County code (6 digits), e.g. 513432.")


@strawberry.input(description="A project a partner funds in one of its paired counties.")
class RecordCooperationProjectInput:
    partner_id: strawberry.ID = strawberry.field(description="Cooperation partner id.")
    name: str = strawberry.field(description="Project name, 1..200 characters.")
    county_code: str = strawberry.field(description="A county paired with the partner (6 digits).")
    year: int = strawberry.field(description="Year of the funds.")
    funds: Decimal = strawberry.field(description="Yuan, >= 0, <= 2 decimals.")
    households_benefited: int | None = strawberry.field(default=None, description="Households benefited, >= 0.")
    facility_id: strawberry.ID | None = strawberry.field(
        default=None, description="A facility in that county the project builds or supports."
    )
    site_id: strawberry.ID | None = strawberry.field(
        default=None, description="A relocation site in that county the project serves."
    )
    self_raised_share: Decimal | None = strawberry.field(default=None, description="0..1 (0.7 = 70 % self-raised).")


@strawberry.type(description="What a partner mutation wrote.")
class CooperationPartnerPayload:
    cooperation_partner: CooperationPartner = strawberry.field(description="The partner as it is now (with its paired counties).")


@strawberry.type(description="What recordCooperationProject wrote.")
class CooperationProjectPayload:
    cooperation_project: CooperationProject = strawberry.field(description="The project recorded.")


async def _partner_payload(info: Ctx, pid: int) -> CooperationPartnerPayload:
    info.context.fresh_loaders()
    partner = await load_found(info.context.loaders.partner, pid, CooperationPartner.from_row, "cooperation partner")
    return CooperationPartnerPayload(cooperation_partner=partner)


@strawberry.type
class PartnerMutation:
    @strawberry.mutation(description="Record a cooperation partner (admins).", extensions=allow(IsAdmin))
    async def record_cooperation_partner(
        self, info: Ctx, input: Annotated[RecordCooperationPartnerInput, strawberry.argument(description="What to record.")]
    ) -> CooperationPartnerPayload | None:
        pid = await partners.record_partner(info.context.sessionmaker, name=input.name, region=input.region, kind=input.kind)
        return await _partner_payload(info, pid)

    @strawberry.mutation(
        description="Pair a partner with a county (admins); pairing twice changes nothing.", extensions=allow(IsAdmin)
    )
    async def pair_partner_county(
        self, info: Ctx, input: Annotated[PartnerCountyInput, strawberry.argument(description="What to record.")]
    ) -> CooperationPartnerPayload | None:
        pid = require_id(input.partner_id, "partnerId")
        await partners.pair_county(info.context.sessionmaker, partner_id=pid, county_code=input.county_code, paired=True)
        return await _partner_payload(info, pid)

    @strawberry.mutation(description="End a partner–county pairing (admins).", extensions=allow(IsAdmin))
    async def unpair_partner_county(
        self, info: Ctx, input: Annotated[PartnerCountyInput, strawberry.argument(description="What to record.")]
    ) -> CooperationPartnerPayload | None:
        pid = require_id(input.partner_id, "partnerId")
        await partners.pair_county(info.context.sessionmaker, partner_id=pid, county_code=input.county_code, paired=False)
        return await _partner_payload(info, pid)

    @strawberry.mutation(
        description="Record a project a partner funds (admins): funds in yuan, households "
        "benefited, optionally a facility or site in the county.",
        extensions=allow(IsAdmin),
    )
    async def record_cooperation_project(
        self, info: Ctx, input: Annotated[RecordCooperationProjectInput, strawberry.argument(description="What to record.")]
    ) -> CooperationProjectPayload | None:
        pid = require_id(input.partner_id, "partnerId")
        project_id = await partners.record_project(
            info.context.sessionmaker,
            partner_id=pid,
            name=input.name,
            county_code=input.county_code,
            year=input.year,
            funds=input.funds,
            households_benefited=input.households_benefited,
            facility_id=optional_id(input.facility_id, "facilityId"),
            site_id=optional_id(input.site_id, "siteId"),
            self_raised_share=input.self_raised_share,
        )
        info.context.fresh_loaders()
        rows = await info.context.loaders.partner_projects.load((pid, None))
        return CooperationProjectPayload(
            cooperation_project=CooperationProject.from_row(next(r for r in rows if r.id == project_id))
        )
