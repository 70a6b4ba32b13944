"""The household registry's mutations (``RegistryMutation``, a base of ``Mutation``).

registerHousehold, updateHousehold, moveHousehold, memberLeaves, correct/delete employments and income
linkages. Same contract as schema/mutations.py: the household's ``version`` in every input (stale →
CONFLICT, nothing written), one transaction and one audit row per mutation, county officers only in
their areas (FORBIDDEN). Corrections distinguish an omitted field (unchanged) from an explicit null
(cleared, where the field may be empty).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

import strawberry

from resolvers import registry as rg
from resolvers.mutations import WrittenRecord
from resolvers.query import optional_id, require_id
from schema.enums import EmploymentChannel, Gender, JoinReason, LeaveReason, LinkageMechanism, PovertyStatus, Relation
from schema.idempotency import idempotency_key_field, once
from schema.payloads import EmploymentPayload, HouseholdPayload, IncomeLinkagePayload, MemberPayload
from schema.permissions import WritesHouseholds, allow
from schema.scalars import GeoJSON
from schema.types import Ctx, Employment, Household, IncomeLinkage, given_fields, load_found, member_by_id, written_household

WRITES = allow(WritesHouseholds)
VERSION = "The household's `version` as you last read it (optimistic locking)."
VILLAGE = "12-digit code of the village/community (村/社区) the household lives in (an admin area of level VILLAGE)."
DWELLING = "GeoJSON Point of the dwelling, WGS84; within registry.location_tolerance_meters (default 2,000 m) of its admin area."
UNSET_NOTE = " Omitted: unchanged; null: cleared."


@strawberry.input(description="A member recorded with a new household.")
class MemberInput:
    name: str = strawberry.field(description="Name, 1..50 characters.")
    gender: Gender = strawberry.field(description="Gender (性别).")
    birth_year: int = strawberry.field(description="Year of birth, 1900..this year.")
    relation: Relation = strawberry.field(description="Relation to the head of household (与户主关系).")
    labor_force: bool = strawberry.field(description="Recorded as labor force (劳动力): able to work.")
    skills: list[str] | None = strawberry.field(default=None, description="Skills, at most 20 of 1..50 characters each.")
    id_number: str | None = strawberry.field(
        default=None, description="Resident identity card number (18 characters, checked): stored only as a keyed hash."
    )
    phone: str | None = strawberry.field(default=None, description="Chinese mobile or landline number.")
    joined_on: dt.date | None = strawberry.field(
        default=None, description="First day in the household, not in the future; null: a member since before the records begin."
    )
    join_reason: JoinReason = strawberry.field(
        default=JoinReason.REGISTERED, description="Why the member is in the household (入户原因); default REGISTERED."
    )


@strawberry.input(description="A household (搬迁户) registered with its members in one call.")
class RegisterHouseholdInput:
    code: str = strawberry.field(description="Household code (户编号), unique; a code already used answers CONFLICT.")
    admin_code: str = strawberry.field(description=VILLAGE)
    poverty_status: PovertyStatus = strawberry.field(description="脱贫户 or 一般户.")
    members: list[MemberInput] = strawberry.field(description="Its members, 1..50.")
    site_id: strawberry.ID | None = strawberry.field(
        default=None, description="The relocation site it lives at (give relocatedOn with it); null: never relocated."
    )
    origin_admin_code: str | None = strawberry.field(
        default=None, description="The village or township it left (迁出地), relocated households."
    )
    dwelling: GeoJSON | None = strawberry.field(default=None, description=DWELLING)
    relocated_on: dt.date | None = strawberry.field(
        default=None, description="Date it moved to the site (not in the future, the site open then); with siteId."
    )
    idempotency_key: str | None = idempotency_key_field()


@strawberry.input(description="Corrections of a household in place (not a move: see moveHousehold)." + UNSET_NOTE)
class UpdateHouseholdInput:
    id: strawberry.ID = strawberry.field(description="The household.")
    version: int = strawberry.field(description=VERSION)
    code: str | None = strawberry.field(default=strawberry.UNSET, description="Household code (户编号), unique.")
    admin_code: str | None = strawberry.field(default=strawberry.UNSET, description=VILLAGE + " Corrects the current residence.")
    site_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="Relocation site of the current residence; null: none." + UNSET_NOTE
    )
    dwelling: GeoJSON | None = strawberry.field(
        default=strawberry.UNSET, description=DWELLING + " Corrects the current residence." + UNSET_NOTE
    )
    origin_admin_code: str | None = strawberry.field(
        default=strawberry.UNSET, description="Village or township it left (迁出地)." + UNSET_NOTE
    )
    relocated_on: dt.date | None = strawberry.field(
        default=strawberry.UNSET, description="Corrects the date it moved to its (first) site; cannot be cleared."
    )
    poverty_status: PovertyStatus | None = strawberry.field(default=strawberry.UNSET, description="脱贫户 or 一般户.")


@strawberry.input(description="A household moving on a date (a new dated residence).")
class MoveHouseholdInput:
    id: strawberry.ID = strawberry.field(description="The household.")
    version: int = strawberry.field(description=VERSION)
    moved_on: dt.date = strawberry.field(
        description="First day at the new residence: after the current residence began, not in the future."
    )
    admin_code: str = strawberry.field(description=VILLAGE)
    site_id: strawberry.ID | None = strawberry.field(
        default=None, description="Relocation site moved to (open on movedOn); null: not at a site."
    )
    dwelling: GeoJSON | None = strawberry.field(default=None, description=DWELLING)


@strawberry.input(description="A member leaving the household (减员).")
class MemberLeavesInput:
    member_id: strawberry.ID = strawberry.field(description="The member.")
    version: int = strawberry.field(description=VERSION)
    left_on: dt.date = strawberry.field(description="First day no longer a member: after joinedOn, not in the future.")
    reason: LeaveReason = strawberry.field(description="Why (减员原因).")


@strawberry.input(description="Corrections of a wrongly entered employment (checked whole as recordEmployment)." + UNSET_NOTE)
class CorrectEmploymentInput:
    id: strawberry.ID = strawberry.field(description="The employment.")
    version: int = strawberry.field(description=VERSION)
    channel: EmploymentChannel | None = strawberry.field(default=strawberry.UNSET, description="Employment channel (就业渠道).")
    start_on: dt.date | None = strawberry.field(default=strawberry.UNSET, description="First day (not in the future).")
    end_on: dt.date | None = strawberry.field(default=strawberry.UNSET, description="Last day; null: still lasting.")
    stable: bool | None = strawberry.field(default=strawberry.UNSET, description="Stable employment (稳定就业).")
    facility_id: strawberry.ID | None = strawberry.field(default=strawberry.UNSET, description="The employing facility.")
    employer_name: str | None = strawberry.field(default=strawberry.UNSET, description="Employer, where not a facility.")
    workplace: GeoJSON | None = strawberry.field(default=strawberry.UNSET, description="GeoJSON Point, WGS84.")
    outbound_region: str | None = strawberry.field(default=strawberry.UNSET, description="Where a LABOR_EXPORT job is.")
    monthly_wage: Decimal | None = strawberry.field(default=strawberry.UNSET, description="Yuan per month, >= 0, <= 2 decimals.")


@strawberry.input(description="Deletes a record that should never have existed (an ended spell: endEmployment).")
class DeleteRecordInput:
    id: strawberry.ID = strawberry.field(description="The employment or income linkage.")
    version: int = strawberry.field(description=VERSION)


@strawberry.input(description="Corrections of a wrongly entered income linkage." + UNSET_NOTE)
class CorrectIncomeLinkageInput:
    id: strawberry.ID = strawberry.field(description="The income linkage.")
    version: int = strawberry.field(description=VERSION)
    mechanism: LinkageMechanism | None = strawberry.field(default=strawberry.UNSET, description="How (利益联结方式).")
    year: int | None = strawberry.field(default=strawberry.UNSET, description="Calendar year of the amount.")
    amount: Decimal | None = strawberry.field(default=strawberry.UNSET, description="Yuan, >= 0, <= 2 decimals.")
    facility_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="The facility or enterprise paying it." + UNSET_NOTE
    )


@strawberry.type(description="What a deletion wrote.")
class DeletedPayload:
    deleted_id: strawberry.ID = strawberry.field(description="Id of the deleted record.")
    household: Household = strawberry.field(description="The household, with its new `version`.")


def _tolerance(info: Ctx) -> float:
    return float(info.context.settings.registry.location_tolerance_meters)


def _max_vertices(info: Ctx) -> int:
    return int(info.context.settings.features.max_vertices)


@strawberry.type(description="The registry's writes (record keepers).")
class RegistryMutation:
    @strawberry.mutation(description="Register a household with its members (one transaction).", extensions=WRITES)
    async def register_household(
        self, info: Ctx, input: Annotated[RegisterHouseholdInput, strawberry.argument(description="What to record.")]
    ) -> HouseholdPayload | None:
        members = [
            {
                "name": x.name,
                "gender": x.gender,
                "birth_year": x.birth_year,
                "relation": x.relation,
                "labor_force": x.labor_force,
                "skills": x.skills,
                "id_number": x.id_number,
                "phone": x.phone,
                "joined_on": x.joined_on,
                "join_reason": x.join_reason,
            }
            for x in input.members
        ]
        w = await once(
            info,
            "registerHousehold",
            input,
            lambda: rg.register_household(
                info.context.sessionmaker,
                code=input.code,
                admin_code=input.admin_code,
                poverty_status=input.poverty_status,
                members=members,
                today=info.context.today(),
                site_id=optional_id(input.site_id, "siteId"),
                origin_admin_code=input.origin_admin_code,
                dwelling=input.dwelling,
                relocated_on=input.relocated_on,
                tolerance_meters=_tolerance(info),
                id_number_key=info.context.id_number_key,
                max_vertices=_max_vertices(info),
            ),
        )
        return HouseholdPayload(household=await written_household(info, w))

    @strawberry.mutation(description="Correct a household in place (omitted: unchanged; null: cleared).", extensions=WRITES)
    async def update_household(
        self, info: Ctx, input: Annotated[UpdateHouseholdInput, strawberry.argument(description="What to correct.")]
    ) -> HouseholdPayload | None:
        values = given_fields(input, rg.HOUSEHOLD_FIELDS)
        if values.get("site_id") is not None:
            values["site_id"] = require_id(values["site_id"], "siteId")
        w = await rg.update_household(
            info.context.sessionmaker,
            household_id=require_id(input.id, "id"),
            version=input.version,
            values=values,
            today=info.context.today(),
            tolerance_meters=_tolerance(info),
            max_vertices=_max_vertices(info),
        )
        return HouseholdPayload(household=await written_household(info, w))

    @strawberry.mutation(description="A household moves on `movedOn` (a new dated residence).", extensions=WRITES)
    async def move_household(
        self, info: Ctx, input: Annotated[MoveHouseholdInput, strawberry.argument(description="What to record.")]
    ) -> HouseholdPayload | None:
        w = await rg.move_household(
            info.context.sessionmaker,
            household_id=require_id(input.id, "id"),
            version=input.version,
            moved_on=input.moved_on,
            admin_code=input.admin_code,
            site_id=optional_id(input.site_id, "siteId"),
            dwelling=input.dwelling,
            today=info.context.today(),
            tolerance_meters=_tolerance(info),
            max_vertices=_max_vertices(info),
        )
        return HouseholdPayload(household=await written_household(info, w))

    @strawberry.mutation(description="A member leaves the household on `leftOn` (减员).", extensions=WRITES)
    async def member_leaves(
        self, info: Ctx, input: Annotated[MemberLeavesInput, strawberry.argument(description="What to record.")]
    ) -> MemberPayload | None:
        w: WrittenRecord = await rg.member_leaves(
            info.context.sessionmaker,
            member_id=require_id(input.member_id, "memberId"),
            version=input.version,
            left_on=input.left_on,
            reason=input.reason,
            today=info.context.today(),
        )
        household = await written_household(info, w)
        return MemberPayload(member=await member_by_id(info, w.record_id), household=household)

    @strawberry.mutation(description="Fix a wrongly entered employment in place (audited before/after).", extensions=WRITES)
    async def correct_employment(
        self, info: Ctx, input: Annotated[CorrectEmploymentInput, strawberry.argument(description="What to correct.")]
    ) -> EmploymentPayload | None:
        values = given_fields(input, rg.EMPLOYMENT_FIELDS)
        if "facility_id" in values:
            values["facility_id"] = optional_id(values["facility_id"], "facilityId")
        eid = require_id(input.id, "id")
        w = await rg.correct_employment(
            info.context.sessionmaker,
            employment_id=eid,
            version=input.version,
            values=values,
            today=info.context.today(),
            max_vertices=_max_vertices(info),
        )
        household = await written_household(info, w)
        employment = await load_found(info.context.loaders.employment, eid, Employment.from_row, "employment")
        return EmploymentPayload(employment=employment, household=household)

    @strawberry.mutation(description="Delete an employment that should never have been recorded.", extensions=WRITES)
    async def delete_employment(
        self, info: Ctx, input: Annotated[DeleteRecordInput, strawberry.argument(description="What to delete.")]
    ) -> DeletedPayload | None:
        eid = require_id(input.id, "id")
        w = await rg.delete_employment(info.context.sessionmaker, employment_id=eid, version=input.version)
        return DeletedPayload(deleted_id=strawberry.ID(str(eid)), household=await written_household(info, w))

    @strawberry.mutation(description="Fix a wrongly entered income linkage in place (audited).", extensions=WRITES)
    async def correct_income_linkage(
        self, info: Ctx, input: Annotated[CorrectIncomeLinkageInput, strawberry.argument(description="What to correct.")]
    ) -> IncomeLinkagePayload | None:
        values = given_fields(input, rg.LINKAGE_FIELDS)
        if "facility_id" in values:
            values["facility_id"] = optional_id(values["facility_id"], "facilityId")
        lid = require_id(input.id, "id")
        w = await rg.correct_income_linkage(
            info.context.sessionmaker, income_linkage_id=lid, version=input.version, values=values
        )
        household = await written_household(info, w)
        rows = await info.context.loaders.income_linkages.load((w.household_id, None))
        return IncomeLinkagePayload(
            income_linkage=IncomeLinkage.from_row(next(r for r in rows if r.id == lid)), household=household
        )

    @strawberry.mutation(description="Delete an income linkage that should never have been recorded.", extensions=WRITES)
    async def delete_income_linkage(
        self, info: Ctx, input: Annotated[DeleteRecordInput, strawberry.argument(description="What to delete.")]
    ) -> DeletedPayload | None:
        lid = require_id(input.id, "id")
        w = await rg.delete_income_linkage(info.context.sessionmaker, income_linkage_id=lid, version=input.version)
        return DeletedPayload(deleted_id=strawberry.ID(str(lid)), household=await written_household(info, w))
