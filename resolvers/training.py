"""Training to stable jobs (精培计划): training records, follow-up visits, trainee lists and outcome shares.

A trainee is placed in work by the first employment starting on or after the training's start; every trainee placed
is visited for ``follow_up_years`` (a setting, 3: the report's "at least three years") every ``follow_up_interval_days``.
Lists and shares are true on the date asked (``resolvers/sql/trainees.sql``, ``training_outcomes.sql``: one statement
each). Writes are the household registry's: one transaction, audited, county officers within their areas (row-level
security, migrations/sql/planning.sql → FORBIDDEN).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Integer, column, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

import models as m
from resolvers import sql as sql_files
from resolvers.access import audit_row
from resolvers.errors import InvalidInput, NotFound
from resolvers.mutations import check_facility, check_not_future, check_text, in_transaction, member_household
from resolvers.paging import Page, PageArgs
from resolvers.query import SessionMaker, area_code_prefix, check_period, fetch_page

OUTCOME_MONTHS = (6, 12, 24, 36)
"""Months after training at which the share of trainees in stable employment is reported."""


class TraineeStatus(enum.Enum):
    """Which trainees a list holds."""

    NOT_EMPLOYED = "not_employed"  # training completed by the date, no employment active on it
    FOLLOW_UP_DUE = "follow_up_due"  # a visit falls due within the next days asked
    FOLLOW_UP_OVERDUE = "follow_up_overdue"  # a visit was due before the date and none was made


@dataclass(frozen=True, slots=True)
class Trainee:
    """A training record on a date, with its placement and follow-up state (dates; None where not applicable)."""

    id: int
    member_id: int
    household_id: int
    course: str
    provider_facility_id: int | None
    provider_name: str | None
    started_on: dt.date
    ended_on: dt.date | None
    completed: bool
    certificate: str | None
    version: int
    placed_on: dt.date | None
    employed_now: bool
    last_visit: dt.date | None
    follow_up_until: dt.date | None
    next_visit_due: dt.date | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """Trainees whose training ended at least ``months`` before the date, and those stably employed ``months`` after it."""

    months: int
    trainees: int
    stably_employed: int

    @property
    def share(self) -> float | None:
        """stably_employed ÷ trainees (0..1); None without trainees."""
        return self.stably_employed / self.trainees if self.trainees else None


def _sql(name: str) -> Any:
    return text(sql_files.read(name))


def _scope(area_code: str | None, site_id: int | None) -> dict[str, Any]:
    return {"prefix": area_code_prefix(area_code, "areaCode") if area_code is not None else None, "site": site_id}


async def trainees(
    sm: SessionMaker,
    args: PageArgs,
    *,
    as_of: dt.date,
    status: TraineeStatus | None,
    follow_up_years: int,
    interval_days: int,
    due_within_days: int,
    area_code: str | None = None,
    site_id: int | None = None,
) -> Page[Trainee]:
    """A page (the shared keyset paging, by training record id) of the records started by ``as_of``, of ``status``.

    Raises:
        InvalidInput: malformed ``areaCode``; ``dueWithinDays`` outside 0..366.
    """
    if not 0 <= due_within_days <= 366:
        raise InvalidInput(f"dueWithinDays: {due_within_days} outside 0..366", field="dueWithinDays")
    params = {
        **_scope(area_code, site_id),
        "as_of": as_of,
        "status": status.value if status else None,
        "years": follow_up_years,
        "interval": interval_days,
        "due_within": due_within_days,
    }
    columns = [column(f.name, Integer) if f.name == "id" else column(f.name) for f in fields(Trainee)]
    rows = _sql("trainees.sql").bindparams(**params).columns(*columns).subquery("t")
    return await fetch_page(sm, select(rows), rows.c.id, args, kind="training_record", build=lambda r: Trainee(**r._mapping))  # type: ignore[arg-type]


async def outcomes(
    sm: SessionMaker, *, as_of: dt.date, area_code: str | None = None, site_id: int | None = None
) -> list[Outcome]:
    """The share of trainees in stable employment 6, 12, 24 and 36 months after their training, on ``as_of``.

    One grouped statement (resolvers/sql/training_outcomes.sql).

    Raises:
        InvalidInput: malformed ``areaCode``.
    """
    params = {**_scope(area_code, site_id), "as_of": as_of, "months": list(OUTCOME_MONTHS)}
    async with sm() as s:
        return [
            Outcome(int(r.months), int(r.trainees), int(r.stably_employed))
            for r in await s.execute(_sql("training_outcomes.sql"), params)
        ]


TR = m.TrainingRecord


async def record_training(
    sm: SessionMaker,
    *,
    member_id: int,
    course: str,
    provider_facility_id: int | None,
    provider_name: str | None,
    started_on: dt.date,
    ended_on: dt.date | None,
    completed: bool,
    certificate: str | None,
    today: dt.date,
) -> int:
    """Record a member's training; audited (entity ``training_record``). Its id.

    Raises:
        InvalidInput: course or names empty or too long; startedOn in the future; endedOn before startedOn; completed
            without endedOn; neither provider nor providerName.
        NotFound: no such member or facility. OutOfScope: the member's household is outside the viewer's areas.
    """
    course_ = check_text(course, "course", required=True)
    name = check_text(provider_name, "providerName")
    cert = check_text(certificate, "certificate")
    check_not_future(started_on, "startedOn", today)
    check_period(started_on, ended_on, "startedOn", "endedOn")
    if completed and ended_on is None:
        raise InvalidInput("endedOn: a completed training has an end date", field="endedOn")
    if provider_facility_id is None and name is None:
        raise InvalidInput("providerName: give the provider (providerId or providerName)", field="providerName")

    async def work(s: AsyncSession) -> int:
        hid = await member_household(s, member_id)
        await check_facility(s, provider_facility_id, "providerId")
        values = {
            "member_id": member_id,
            "household_id": hid,
            "course": course_,
            "provider_facility_id": provider_facility_id,
            "provider_name": name,
            "started_on": started_on,
            "ended_on": ended_on,
            "completed": completed,
            "certificate": cert,
        }
        tid = int(await s.scalar(insert(TR).values(**values).returning(TR.id)) or 0)
        await audit_row(s, "record_training", "training_record", tid, None)
        return tid

    return await in_transaction(sm, work)


async def record_follow_up(sm: SessionMaker, *, training_id: int, visited_on: dt.date, note: str | None, today: dt.date) -> int:
    """Record a follow-up visit to a trainee; audited (entity ``training_follow_up``). Its id.

    Raises:
        InvalidInput: visitedOn in the future or before the training started; note too long.
        NotFound: no such training record (or outside the viewer's areas: officers see only theirs).
    """
    note_ = check_text(note, "note", max_len=1000)
    check_not_future(visited_on, "visitedOn", today)

    async def work(s: AsyncSession) -> int:
        row = (await s.execute(select(TR.household_id, TR.started_on).where(TR.id == training_id))).first()
        if row is None:
            raise NotFound(f"trainingId: training record {training_id} does not exist", field="trainingId")
        if visited_on < row.started_on:
            raise InvalidInput(f"visitedOn: {visited_on} is before the training started ({row.started_on})", field="visitedOn")
        values = {"training_id": training_id, "household_id": row.household_id, "visited_on": visited_on, "note": note_}
        vid = int(await s.scalar(insert(m.TrainingFollowUp).values(**values).returning(m.TrainingFollowUp.id)) or 0)
        await audit_row(s, "record_training_follow_up", "training_follow_up", vid, None)
        return vid

    return await in_transaction(sm, work)
