"""Plan targets (目标任务) against actuals: ``planTargets``, ``setPlanTarget``, ``deletePlanTarget``.

Everyone reads the targets row-level security shows them (planners and admins all; county officers every area and
facility target; partners their projects' and their paired counties' targets, actuals small-cell suppressed). Admins
and planners set any target; county officers the area and facility targets of their areas (FORBIDDEN otherwise).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

import strawberry

import models as m
from resolvers import targets
from resolvers.access import PLANNING, Role
from resolvers.errors import OutOfScope
from resolvers.query import optional_id, require_id
from schema.enums import describe_values
from schema.permissions import RolesOnly, allow
from schema.types import AdminArea, AsOfArg, Ctx, Facility, _area, _facility

strawberry.enum(m.TargetSubject, name="TargetSubject", description="What a plan target is set for.")
describe_values(
    m.TargetSubject,
    {
        "AREA": "An admin area (areaCode).",
        "FACILITY": "A facility (facilityId).",
        "PROJECT": "A cooperation project (projectId).",
    },
)
strawberry.enum(
    m.TargetMetric,
    name="TargetMetric",
    description='目标指标: what a plan target measures (its actual is computed from rows; docs/api.md "Plan targets").',
)


describe_values(
    m.TargetMetric,
    {
        "PERSONS_EMPLOYED": "AREA: members of 脱贫户 under the area employed on the date, 人.",
        "COVERAGE_RATE": "AREA: employment coverage on the date, 0..1.",
        "HOUSEHOLDS_LINKED": "AREA: households under it at the year's end with a linkage of the year; FACILITY: "
        "households with a linkage from it in the year, 户.",
        "AVERAGE_LINKED_INCOME": "AREA: linkage yuan of the year ÷ households linked, yuan.",
        "YUAN_PER_HOUSEHOLD": "FACILITY: its linkage yuan of the year ÷ its households linked, yuan.",
        "JOBS": "FACILITY / PROJECT (its facility): members employed there on the date, 人.",
        "HOUSEHOLDS_BENEFITED": "PROJECT: households linked to its facility in the year (without one: at its site), 户.",
    },
)


class WritesTargets(RolesOnly):
    """Plan targets: admins, planners, and county officers (their areas, by row-level security)."""

    message = "only admins, planners and county officers set plan targets"
    roles = PLANNING


@strawberry.type(description="A target's actual on a date, computed from the rows (never typed in).")
class TargetProgress:
    as_of: dt.date = strawberry.field(description="The date of the employment and job figures.")
    actual: float | None = strawberry.field(
        description="The actual, in the metric's unit (persons, households, 0..1, yuan); null when nothing measures "
        "it (e.g. a project without facility or site) or, for partner viewers, when fewer than k households stand "
        "behind it (`suppressed`)."
    )
    ratio: float | None = strawberry.field(
        description="actual ÷ target (1.0 = met exactly); null with actual or for a target of 0."
    )
    met: bool | None = strawberry.field(description="actual >= target; null with actual.")
    suppressed: bool = strawberry.field(description="True when the actual was withheld (small cell, partner viewers).")


@strawberry.type(description="目标任务: a target set for an area, facility or cooperation project in a year.")
class PlanTarget:
    id: strawberry.ID = strawberry.field(description="Target id.")
    subject: m.TargetSubject = strawberry.field(description="AREA, FACILITY or PROJECT.")
    metric: m.TargetMetric = strawberry.field(description="What it measures.")
    year: int = strawberry.field(description="The year the target is for (linkage metrics count this year's linkages).")
    target: float = strawberry.field(description="The target, in the metric's unit.")
    source: str | None = strawberry.field(description="Where the figure comes from (e.g. a report and its fact key).")
    version: int = strawberry.field(description="Row version; setPlanTarget and deletePlanTarget carry it.")
    project_id: strawberry.ID | None = strawberry.field(description="The cooperation project (subject PROJECT).")
    _row: strawberry.Private[targets.TargetRow]

    @classmethod
    def of(cls, r: targets.TargetRow) -> PlanTarget:
        return cls(
            id=strawberry.ID(str(r.id)),
            subject=r.subject,
            metric=r.metric,
            year=r.year,
            target=float(r.target),
            source=r.source,
            version=r.version,
            project_id=strawberry.ID(str(r.project_id)) if r.project_id is not None else None,
            _row=r,
        )

    @strawberry.field(description="The admin area (subject AREA).")
    async def area(self, info: Ctx) -> AdminArea | None:
        return await _area(info, self._row.admin_code)

    @strawberry.field(description="The facility (subject FACILITY).")
    async def facility(self, info: Ctx) -> Facility | None:
        return await _facility(info, self._row.facility_id)

    @strawberry.field(description="The actual on `asOf` and how far the target is met (default date: today, Asia/Shanghai).")
    async def progress(self, info: Ctx, as_of: AsOfArg = None) -> TargetProgress:
        d = info.context.as_of(as_of)
        a = await info.context.loaders.target_actual.load((self._row.id, self._row.admin_code, d))
        k = info.context.suppression_k
        hidden = k is not None and a.households < k
        value = None if hidden else a.value
        return TargetProgress(
            as_of=d,
            actual=float(value) if value is not None else None,
            ratio=targets.progress(value, self._row.target),
            met=(value >= self._row.target) if value is not None else None,
            suppressed=hidden,
        )


@strawberry.input(description="A target to set: creates it, or replaces it at `version`.")
class SetPlanTargetInput:
    subject: m.TargetSubject = strawberry.field(description="AREA (give areaCode), FACILITY (facilityId) or PROJECT (projectId).")
    area_code: str | None = strawberry.field(default=None, description="Admin area code (subject AREA).")
    facility_id: strawberry.ID | None = strawberry.field(default=None, description="Facility id (subject FACILITY).")
    project_id: strawberry.ID | None = strawberry.field(default=None, description="Cooperation project id (subject PROJECT).")
    year: int = strawberry.field(description="Calendar year, 2000..2100.")
    metric: m.TargetMetric = strawberry.field(
        description="AREA: PERSONS_EMPLOYED, COVERAGE_RATE, HOUSEHOLDS_LINKED, AVERAGE_LINKED_INCOME; FACILITY: "
        "HOUSEHOLDS_LINKED, YUAN_PER_HOUSEHOLD, JOBS; PROJECT: HOUSEHOLDS_BENEFITED, JOBS."
    )
    target: Decimal = strawberry.field(description="The target in the metric's unit, >= 0 (a coverage rate 0..1).")
    source: str | None = strawberry.field(default=None, description="Where the figure comes from, at most 500 characters.")
    version: int | None = strawberry.field(
        default=None, description="The target's version when replacing one; omit to create (CONFLICT if already set)."
    )


@strawberry.input(description="A target to delete.")
class DeletePlanTargetInput:
    id: strawberry.ID = strawberry.field(description="Target id.")
    version: int = strawberry.field(description="Its version (CONFLICT when changed meanwhile).")


@strawberry.type
class TargetQuery:
    @strawberry.field(
        description="Plan targets you may see matching every given filter, by id; each with `progress(asOf)` computed "
        "from the rows."
    )
    async def plan_targets(
        self,
        info: Ctx,
        year: Annotated[int | None, strawberry.argument(description="Only targets of this year.")] = None,
        subject: Annotated[m.TargetSubject | None, strawberry.argument(description="Only of this subject.")] = None,
        area_code: Annotated[
            str | None,
            strawberry.argument(description="Targets of areas under it, and of facilities and projects in its counties."),
        ] = None,
        facility_id: Annotated[strawberry.ID | None, strawberry.argument(description="Only of this facility.")] = None,
        project_id: Annotated[strawberry.ID | None, strawberry.argument(description="Only of this project.")] = None,
    ) -> list[PlanTarget]:
        rows = await targets.targets(
            info.context.sessionmaker,
            year=year,
            subject=subject,
            area_code=area_code,
            facility_id=optional_id(facility_id, "facilityId"),
            project_id=optional_id(project_id, "projectId"),
        )
        return [PlanTarget.of(r) for r in rows]


@strawberry.type
class TargetMutation:
    @strawberry.mutation(
        description="Set a plan target (admins, planners; county officers for the areas and facilities of their areas); audited.",
        extensions=allow(WritesTargets),
    )
    async def set_plan_target(
        self, info: Ctx, input: Annotated[SetPlanTargetInput, strawberry.argument(description="What to set.")]
    ) -> PlanTarget:
        if input.subject is m.TargetSubject.PROJECT and info.context.viewer.role is Role.COUNTY_OFFICER:
            raise OutOfScope("cooperation project targets are set by admins and planners", field="projectId")
        row = await targets.set_target(
            info.context.sessionmaker,
            subject=input.subject,
            area_code=input.area_code,
            facility_id=optional_id(input.facility_id, "facilityId"),
            project_id=optional_id(input.project_id, "projectId"),
            year=input.year,
            metric=input.metric,
            target=input.target,
            source=input.source,
            version=input.version,
        )
        info.context.fresh_loaders()
        return PlanTarget.of(row)

    @strawberry.mutation(description="Delete a plan target; audited.", extensions=allow(WritesTargets))
    async def delete_plan_target(
        self, info: Ctx, input: Annotated[DeletePlanTargetInput, strawberry.argument(description="What to delete.")]
    ) -> strawberry.ID:
        tid = await targets.delete_target(info.context.sessionmaker, target_id=require_id(input.id, "id"), version=input.version)
        return strawberry.ID(str(tid))
