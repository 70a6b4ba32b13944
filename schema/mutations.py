"""Root ``Mutation``: the writes of county officers and grid workers (issue: linkages & coverage).

Every input carries the household's ``version`` (as last read); a stale version answers
``CONFLICT`` and writes nothing. Payloads are nullable, so in a document with several mutations a
failed one answers null with its error while the others show what they wrote. Each mutation runs
in one transaction and answers with the written record and the household (whose ``version`` is
the new one).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Annotated, Any

import strawberry

from resolvers import mutations as mu
from resolvers.mutations import Written, WrittenRecord
from resolvers.query import optional_id, require_id
from schema.casework import CaseworkMutation
from schema.enums import EmploymentChannel, Gender, JoinReason, LinkageMechanism, MonitoringCategory, Relation
from schema.idempotency import idempotency_key_field, once
from schema.partners import PartnerMutation
from schema.payloads import EmploymentPayload, HouseholdPayload, IncomeLinkagePayload, MemberPayload
from schema.permissions import WritesHouseholds, allow
from schema.places import PlaceMutation
from schema.registry import RegistryMutation
from schema.scalars import GeoJSON
from schema.targets import TargetMutation
from schema.training import TrainingMutation
from schema.types import Ctx, Employment, IncomeLinkage, given_fields, load_found, member_by_id, written_household

WRITES = allow(WritesHouseholds)
"""Admins and county officers (officers under their areas only: row-level security, FORBIDDEN)."""
VERSION = "The household's `version` as you last read it (optimistic locking)."
ID_NUMBER = (
    "Resident identity card number (18 characters, checked): stored only as a keyed hash plus the last 4 "
    "characters, never read back."
)
PHONE = "Chinese mobile or landline number; shown masked (138****5678) to roles without the right."


@strawberry.input(description="A member's employment spell (就业).")
class RecordEmploymentInput:
    member_id: strawberry.ID = strawberry.field(description="The member employed.")
    version: int = strawberry.field(description=VERSION)
    channel: EmploymentChannel = strawberry.field(description="Employment channel (就业渠道).")
    start_on: dt.date = strawberry.field(description="First day of the spell (1950-01-01..2100-12-31).")
    stable: bool = strawberry.field(description="Stable employment: contract or >= 6 months a year.")
    end_on: dt.date | None = strawberry.field(default=None, description="Last day, if the spell has ended (not before startOn).")
    facility_id: strawberry.ID | None = strawberry.field(default=None, description="Required for WORKSHOP.")
    employer_name: str | None = strawberry.field(
        default=None, description="Required for LABOR_EXPORT, LOCAL_ENTERPRISE, PUBLIC_WELFARE_POST without facilityId."
    )
    workplace: GeoJSON | None = strawberry.field(default=None, description="GeoJSON Point, WGS84.")
    outbound_region: str | None = strawberry.field(
        default=None, description="Where a LABOR_EXPORT job is (劳务输出地), e.g. 浙江省."
    )
    monthly_wage: Decimal | None = strawberry.field(default=None, description="Yuan per month, >= 0, <= 2 decimals.")
    idempotency_key: str | None = idempotency_key_field()


@strawberry.input(description="Ends an open employment spell.")
class EndEmploymentInput:
    employment_id: strawberry.ID = strawberry.field(description="The employment to end.")
    version: int = strawberry.field(description=VERSION)
    end_on: dt.date = strawberry.field(description="Last day of the spell (not before its startOn).")


@strawberry.input(description="An income linkage (利益联结): yuan a household draws in a year.")
class RecordIncomeLinkageInput:
    household_id: strawberry.ID = strawberry.field(description="The household receiving the amount.")
    version: int = strawberry.field(description=VERSION)
    mechanism: LinkageMechanism = strawberry.field(description="How the household benefits (利益联结方式).")
    year: int = strawberry.field(description="Calendar year of the amount.")
    amount: Decimal = strawberry.field(description="Yuan, >= 0, <= 2 decimals.")
    facility_id: strawberry.ID | None = strawberry.field(
        default=None, description="The facility or enterprise paying it, if recorded."
    )
    idempotency_key: str | None = idempotency_key_field()


@strawberry.input(description="A household's surveyed net income (家庭纯收入) of a year; replaces an earlier record.")
class RecordHouseholdIncomeInput:
    household_id: strawberry.ID = strawberry.field(description="The household surveyed.")
    version: int = strawberry.field(description=VERSION)
    year: int = strawberry.field(description="Calendar year of the survey.")
    net_income: Decimal = strawberry.field(description="Yuan, >= 0, <= 2 decimals.")
    household_size: int | None = strawberry.field(
        default=None,
        description="Persons the year's per-capita figures divide by, 1..99; omitted: the members present on surveyedOn "
        "(else the year's end) for a new record, the recorded size for a correction.",
    )
    surveyed_on: dt.date | None = strawberry.field(
        default=None, description="Date of the survey, in `year` or the year after, not in the future."
    )


@strawberry.input(description="Monitoring status (防返贫监测); both null = not monitored.")
class SetMonitoringStatusInput:
    household_id: strawberry.ID = strawberry.field(description="The household.")
    version: int = strawberry.field(description=VERSION)
    category: MonitoringCategory | None = strawberry.field(
        default=None, description="Monitoring category (监测对象类别); null together with riskEliminated to end monitoring."
    )
    risk_eliminated: bool | None = strawberry.field(
        default=None, description="Whether the risk is eliminated (风险已消除); give it together with category."
    )


@strawberry.input(description="A new member (家庭成员) of a household.")
class AddMemberInput:
    household_id: strawberry.ID = strawberry.field(description="The household the member joins.")
    version: int = strawberry.field(description=VERSION)
    name: str = strawberry.field(description="Name, 1..50 characters.")
    gender: Gender = strawberry.field(description="Gender (性别).")
    birth_year: int = strawberry.field(description="Year of birth, 1900..this year.")
    relation: Relation = strawberry.field(description="Relation to the head of household (与户主关系).")
    labor_force: bool = strawberry.field(description="Recorded as labor force (劳动力): able to work.")
    skills: list[str] | None = strawberry.field(default=None, description="Skills, at most 20 of 1..50 characters each.")
    id_number: str | None = strawberry.field(default=None, description=ID_NUMBER)
    phone: str | None = strawberry.field(default=None, description=PHONE)
    joined_on: dt.date | None = strawberry.field(
        default=None,
        description="First day in the household (入户日期), not in the future; default today. BIRTH: the birth date.",
    )
    join_reason: JoinReason = strawberry.field(
        default=JoinReason.REGISTERED, description="Why the member joins (入户原因); a newborn is BIRTH. Default REGISTERED."
    )
    idempotency_key: str | None = idempotency_key_field()


@strawberry.input(description="Fields to change; omitted fields stay, an explicit null clears phone, idNumber or skills.")
class UpdateMemberInput:
    member_id: strawberry.ID = strawberry.field(description="The member to change.")
    version: int = strawberry.field(description=VERSION)
    name: str | None = strawberry.field(default=strawberry.UNSET, description="Name, 1..50 characters.")
    gender: Gender | None = strawberry.field(default=strawberry.UNSET, description="Gender (性别).")
    birth_year: int | None = strawberry.field(default=strawberry.UNSET, description="Year of birth, 1900..this year.")
    relation: Relation | None = strawberry.field(
        default=strawberry.UNSET, description="Relation to the head of household (与户主关系)."
    )
    labor_force: bool | None = strawberry.field(
        default=strawberry.UNSET, description="Recorded as labor force (劳动力): able to work."
    )
    skills: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description="Skills (replacing the recorded list), at most 20 of 1..50 characters each."
    )
    id_number: str | None = strawberry.field(default=strawberry.UNSET, description=ID_NUMBER)
    phone: str | None = strawberry.field(default=strawberry.UNSET, description=PHONE)


async def _employment(info: Ctx, employment_id: int) -> Employment:
    return await load_found(info.context.loaders.employment, employment_id, Employment.from_row, "employment")


async def _household_write(
    info: Ctx, write: Callable[..., Awaitable[Written]], household_id: strawberry.ID, version: int, **values: Any
) -> HouseholdPayload:
    """Run a resolver write on a household (``householdId`` at ``version``) and answer with the household written."""
    w = await write(info.context.sessionmaker, household_id=require_id(household_id, "householdId"), version=version, **values)
    return HouseholdPayload(household=await written_household(info, w))


async def _member_payload(info: Ctx, w: WrittenRecord) -> MemberPayload:
    household = await written_household(info, w)
    return MemberPayload(member=await member_by_id(info, w.record_id), household=household)


@strawberry.type(
    description="Writes: the record keepers' (admins, and county officers in their areas) and the admins' partner "
    "records. Each runs in one transaction and is audited."
)
class Mutation(RegistryMutation, PartnerMutation, PlaceMutation, CaseworkMutation, TargetMutation, TrainingMutation):
    @strawberry.mutation(description="Record a member's employment spell.", extensions=WRITES)
    async def record_employment(
        self, info: Ctx, input: Annotated[RecordEmploymentInput, strawberry.argument(description="What to record.")]
    ) -> EmploymentPayload | None:
        w = await once(
            info,
            "recordEmployment",
            input,
            lambda: mu.record_employment(
                info.context.sessionmaker,
                member_id=require_id(input.member_id, "memberId"),
                version=input.version,
                channel=input.channel,
                start_on=input.start_on,
                end_on=input.end_on,
                stable=input.stable,
                facility_id=optional_id(input.facility_id, "facilityId"),
                employer_name=input.employer_name,
                workplace=input.workplace,
                outbound_region=input.outbound_region,
                monthly_wage=input.monthly_wage,
                max_vertices=info.context.settings.features.max_vertices,
                today=info.context.today(),
            ),
        )
        household = await written_household(info, w)
        return EmploymentPayload(employment=await _employment(info, w.record_id), household=household)

    @strawberry.mutation(description="End an open employment spell on `endOn`.", extensions=WRITES)
    async def end_employment(
        self, info: Ctx, input: Annotated[EndEmploymentInput, strawberry.argument(description="What to record.")]
    ) -> EmploymentPayload | None:
        eid = require_id(input.employment_id, "employmentId")
        w = await mu.end_employment(info.context.sessionmaker, employment_id=eid, version=input.version, end_on=input.end_on)
        household = await written_household(info, w)
        return EmploymentPayload(employment=await _employment(info, eid), household=household)

    @strawberry.mutation(description="Record an income linkage of a household.", extensions=WRITES)
    async def record_income_linkage(
        self, info: Ctx, input: Annotated[RecordIncomeLinkageInput, strawberry.argument(description="What to record.")]
    ) -> IncomeLinkagePayload | None:
        w = await once(
            info,
            "recordIncomeLinkage",
            input,
            lambda: mu.record_income_linkage(
                info.context.sessionmaker,
                household_id=require_id(input.household_id, "householdId"),
                version=input.version,
                mechanism=input.mechanism,
                year=input.year,
                amount=input.amount,
                facility_id=optional_id(input.facility_id, "facilityId"),
            ),
        )
        household = await written_household(info, w)
        rows = await info.context.loaders.income_linkages.load((w.household_id, input.year))
        return IncomeLinkagePayload(
            income_linkage=IncomeLinkage.from_row(next(r for r in rows if r.id == w.record_id)), household=household
        )

    @strawberry.mutation(
        description="Record a household's net income of a year (replacing an earlier record).", extensions=WRITES
    )
    async def record_household_income(
        self, info: Ctx, input: Annotated[RecordHouseholdIncomeInput, strawberry.argument(description="What to record.")]
    ) -> HouseholdPayload | None:
        return await _household_write(
            info,
            mu.record_household_income,
            input.household_id,
            input.version,
            year=input.year,
            net_income=input.net_income,
            household_size=input.household_size,
            surveyed_on=input.surveyed_on,
            today=info.context.today(),
        )

    @strawberry.mutation(description="Set or clear a household's monitoring category and risk status.", extensions=WRITES)
    async def set_monitoring_status(
        self, info: Ctx, input: Annotated[SetMonitoringStatusInput, strawberry.argument(description="What to record.")]
    ) -> HouseholdPayload | None:
        return await _household_write(
            info,
            mu.set_monitoring_status,
            input.household_id,
            input.version,
            category=input.category,
            risk_eliminated=input.risk_eliminated,
        )

    @strawberry.mutation(description="Add a member to a household.", extensions=WRITES)
    async def add_member(
        self, info: Ctx, input: Annotated[AddMemberInput, strawberry.argument(description="What to record.")]
    ) -> MemberPayload | None:
        w = await once(
            info,
            "addMember",
            input,
            lambda: mu.add_member(
                info.context.sessionmaker,
                household_id=require_id(input.household_id, "householdId"),
                version=input.version,
                name=input.name,
                gender=input.gender,
                birth_year=input.birth_year,
                relation=input.relation,
                labor_force=input.labor_force,
                skills=input.skills,
                id_number=input.id_number,
                phone=input.phone,
                joined_on=input.joined_on,
                join_reason=input.join_reason,
                id_number_key=info.context.id_number_key,
                this_year=info.context.today().year,
                today=info.context.today(),
            ),
        )
        return await _member_payload(info, w)

    @strawberry.mutation(
        description="Change a member's given fields (omitted: unchanged; null clears phone, idNumber or skills).",
        extensions=WRITES,
    )
    async def update_member(
        self, info: Ctx, input: Annotated[UpdateMemberInput, strawberry.argument(description="What to record.")]
    ) -> MemberPayload | None:
        values = given_fields(input, ("name", "gender", "birth_year", "relation", "labor_force", "skills", "id_number", "phone"))
        w = await mu.update_member(
            info.context.sessionmaker,
            member_id=require_id(input.member_id, "memberId"),
            version=input.version,
            this_year=info.context.today().year,
            id_number_key=info.context.id_number_key,
            **values,
        )
        return await _member_payload(info, w)
