"""精培 (precision training): ``trainees``, ``trainingOutcomes``, ``recordTraining``, ``recordTrainingFollowUp``.

Trainee lists are household records (admins, planners, county officers in their areas; partners FORBIDDEN). The outcome
shares are aggregates below the county's, also not for partners. Records are written by admins and county officers,
as employments are.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import strawberry

from resolvers import training
from resolvers.paging import Page, PageArgs
from resolvers.query import optional_id, require_id
from schema.enums import describe_values
from schema.permissions import NotPartner, ReadsHouseholds, WritesHouseholds, allow
from schema.types import (
    AfterArg,
    AsOfArg,
    Connection,
    Ctx,
    Facility,
    FirstArg,
    Household,
    Member,
    _facility,
    connection_args,
    household_by_id,
    member_by_id,
)

TraineeStatus = training.TraineeStatus
strawberry.enum(TraineeStatus, name="TraineeStatus", description="Which trainees a list holds (精培跟踪).")
describe_values(
    TraineeStatus,
    {
        "NOT_EMPLOYED": "Training completed by asOf and no employment active on it.",
        "FOLLOW_UP_DUE": "A follow-up visit falls due from asOf to asOf + dueWithinDays.",
        "FOLLOW_UP_OVERDUE": "A follow-up visit was due before asOf and none was made since.",
    },
)


@strawberry.type(description="A member's training (精培) on a date: the record, placement in work and follow-up duty.")
class Trainee:
    id: strawberry.ID = strawberry.field(description="Training record id (the cursor of `after`).")
    course: str = strawberry.field(description="Course (培训项目), e.g. 彝绣 embroidery.")
    provider_name: str | None = strawberry.field(description="Provider's name when it is not a facility in the registry.")
    started_on: dt.date = strawberry.field(description="First day of the training.")
    ended_on: dt.date | None = strawberry.field(description="Last day of the training, when over.")
    completed: bool = strawberry.field(description="Whether the trainee completed it (结业).")
    certificate: str | None = strawberry.field(description="Certificate obtained (证书), if any.")
    placed_on: dt.date | None = strawberry.field(
        description="Placed in work: start of the member's first employment on or after the training's start, by asOf."
    )
    employed_on_date: bool = strawberry.field(description="The member has an employment active on asOf.")
    last_visit_on: dt.date | None = strawberry.field(description="The latest follow-up visit by asOf.")
    follow_up_until: dt.date | None = strawberry.field(
        description="End of the follow-up duty: placedOn + the setting ANJU_PLANNING__FOLLOW_UP_YEARS (3) years."
    )
    next_visit_due: dt.date | None = strawberry.field(
        description="While the duty runs: (lastVisitOn, else placedOn) + ANJU_PLANNING__FOLLOW_UP_INTERVAL_DAYS (90) days."
    )
    _member_id: strawberry.Private[int]
    _household_id: strawberry.Private[int]
    _provider_id: strawberry.Private[int | None]

    @strawberry.field(description="The trainee.")
    async def member(self, info: Ctx) -> Member:
        return await member_by_id(info, self._member_id)

    @strawberry.field(description="The trainee's household.")
    async def household(self, info: Ctx) -> Household:
        return await household_by_id(info, self._household_id)

    @strawberry.field(description="The provider when it is a facility (often a training base, 培训基地).")
    async def provider(self, info: Ctx) -> Facility | None:
        return await _facility(info, self._provider_id)

    @classmethod
    def of(cls, t: training.Trainee) -> Trainee:
        return cls(
            id=strawberry.ID(str(t.id)),
            course=t.course,
            provider_name=t.provider_name,
            started_on=t.started_on,
            ended_on=t.ended_on,
            completed=t.completed,
            certificate=t.certificate,
            placed_on=t.placed_on,
            employed_on_date=t.employed_now,
            last_visit_on=t.last_visit,
            follow_up_until=t.follow_up_until,
            next_visit_due=t.next_visit_due,
            _member_id=t.member_id,
            _household_id=t.household_id,
            _provider_id=t.provider_facility_id,
        )


@strawberry.type(description="Trainees in stable employment some months after their training (精培 outcome).")
class TrainingOutcome:
    months_after: int = strawberry.field(description="6, 12, 24 or 36.")
    trainees: int = strawberry.field(
        description="Completed trainings that ended at least that many months before asOf (a member trained twice counts twice)."
    )
    stably_employed: int = strawberry.field(description="Of them, the member stably employed on end + monthsAfter.")
    share: float | None = strawberry.field(description="stablyEmployed ÷ trainees, 0..1; null without trainees.")


@strawberry.input(description="A member's training (精培).")
class RecordTrainingInput:
    member_id: strawberry.ID = strawberry.field(description="The trainee.")
    course: str = strawberry.field(description="Course, 1..200 characters.")
    provider_id: strawberry.ID | None = strawberry.field(default=None, description="The provider facility (a training base).")
    provider_name: str | None = strawberry.field(default=None, description="The provider's name when not a facility.")
    started_on: dt.date = strawberry.field(description="First day; not in the future.")
    ended_on: dt.date | None = strawberry.field(default=None, description="Last day; not before startedOn.")
    completed: bool = strawberry.field(default=False, description="Completed (requires endedOn).")
    certificate: str | None = strawberry.field(default=None, description="Certificate obtained, if any.")


@strawberry.input(description="A follow-up visit (跟踪回访) to a trainee.")
class RecordTrainingFollowUpInput:
    training_id: strawberry.ID = strawberry.field(description="The training record.")
    visited_on: dt.date = strawberry.field(description="Day of the visit; not in the future, not before the training.")
    note: str | None = strawberry.field(default=None, description="What was found, at most 1,000 characters.")


AreaArg = Annotated[str | None, strawberry.argument(description="Only trainees of households under this admin area.")]
SiteArg = Annotated[strawberry.ID | None, strawberry.argument(description="Only trainees of households at this site.")]


@strawberry.type
class TrainingQuery:
    @strawberry.field(
        description="Trainees (精培) on `asOf`, by training record id: all, or those NOT_EMPLOYED, FOLLOW_UP_DUE (a visit "
        "due within `dueWithinDays`) or FOLLOW_UP_OVERDUE. Paged as every list (`first`, `after`: pageInfo.endCursor).",
        extensions=allow(ReadsHouseholds),
    )
    async def trainees(
        self,
        info: Ctx,
        status: Annotated[TraineeStatus | None, strawberry.argument(description="Which trainees; all when omitted.")] = None,
        area_code: AreaArg = None,
        site_id: SiteArg = None,
        as_of: AsOfArg = None,
        due_within_days: Annotated[
            int, strawberry.argument(description="FOLLOW_UP_DUE: visits due from asOf to asOf + this many days, 0..366.")
        ] = 14,
        first: FirstArg = None,
        after: AfterArg = None,
    ) -> Connection[Trainee]:
        args = connection_args(info, first, after, kind="training_record")
        page = await _trainees(info, args, as_of=info.context.as_of(as_of), status=status, due_within_days=due_within_days,
                               area_code=area_code, site_id=optional_id(site_id, "siteId"))  # fmt: skip
        return Connection.of(page, Trainee.of)

    @strawberry.field(
        description="The share of trainees in stable employment 6, 12, 24 and 36 months after their training, true on "
        "`asOf` (one grouped statement). Not for partner viewers.",
        extensions=allow(NotPartner),
    )
    async def training_outcomes(
        self, info: Ctx, area_code: AreaArg = None, site_id: SiteArg = None, as_of: AsOfArg = None
    ) -> list[TrainingOutcome]:
        rows = await training.outcomes(
            info.context.sessionmaker,
            as_of=info.context.as_of(as_of),
            area_code=area_code,
            site_id=optional_id(site_id, "siteId"),
        )
        return [
            TrainingOutcome(months_after=o.months, trainees=o.trainees, stably_employed=o.stably_employed, share=o.share)
            for o in rows
        ]


@strawberry.type
class TrainingMutation:
    @strawberry.mutation(
        description="Record a member's training (admins; county officers in their areas); audited. Answers the record on "
        "its start date.",
        extensions=allow(WritesHouseholds),
    )
    async def record_training(
        self, info: Ctx, input: Annotated[RecordTrainingInput, strawberry.argument(description="What to record.")]
    ) -> Trainee:
        tid = await training.record_training(
            info.context.sessionmaker,
            member_id=require_id(input.member_id, "memberId"),
            course=input.course,
            provider_facility_id=optional_id(input.provider_id, "providerId"),
            provider_name=input.provider_name,
            started_on=input.started_on,
            ended_on=input.ended_on,
            completed=input.completed,
            certificate=input.certificate,
            today=info.context.today(),
        )
        return await _one(info, tid)

    @strawberry.mutation(
        description="Record a follow-up visit to a trainee (admins; county officers in their areas); audited. Answers the "
        "trainee as of today.",
        extensions=allow(WritesHouseholds),
    )
    async def record_training_follow_up(
        self, info: Ctx, input: Annotated[RecordTrainingFollowUpInput, strawberry.argument(description="What to record.")]
    ) -> Trainee:
        tid = require_id(input.training_id, "trainingId")
        await training.record_follow_up(
            info.context.sessionmaker, training_id=tid, visited_on=input.visited_on, note=input.note, today=info.context.today()
        )
        return await _one(info, tid)


async def _trainees(info: Ctx, args: PageArgs, **filters: Any) -> Page[training.Trainee]:
    """``training.trainees`` with the settings' follow-up duty (``planning``)."""
    cfg = info.context.settings.planning
    return await training.trainees(
        info.context.sessionmaker,
        args,
        follow_up_years=cfg.follow_up_years,
        interval_days=cfg.follow_up_interval_days,
        **filters,
    )


async def _one(info: Ctx, tid: int) -> Trainee:
    """The trainee of record ``tid`` as of today (the record was just written in the viewer's scope)."""
    page = await _trainees(info, PageArgs(1, tid - 1), as_of=info.context.today(), status=None, due_within_days=0)
    assert page.nodes and page.nodes[0].id == tid
    return Trainee.of(page.nodes[0])
