"""Plan targets (目标任务) against actuals (完成情况): set per area, facility or cooperation project and year.

The actual of a target is never typed in: it is computed from the rows on the date asked
(``resolvers/sql/target_actuals.sql``, one grouped statement per batch), and progress = actual ÷ target.
Writes (``set_target``, ``delete_target``) run in one transaction with an audit row (entity ``plan_target``) and
optimistic locking on ``version``; county officers write only the area and facility targets of their areas
(row-level security, migrations/sql/planning.sql → FORBIDDEN).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NoReturn, cast

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

import models as m
from resolvers import sql as sql_files
from resolvers.access import audit_row
from resolvers.errors import InvalidInput, NotFound, OutOfScope, StaleVersion
from resolvers.mutations import check_text, claim_version, claimed_image, in_transaction
from resolvers.query import SessionMaker, area_code_prefix, check_year, under_area

T = m.PlanTarget
COLUMNS = (
    T.id,
    T.subject,
    T.admin_code,
    T.facility_id,
    T.project_id,
    T.county_code,
    T.year,
    T.metric,
    T.target,
    T.source,
    T.version,
)
MAX_TARGET = Decimal("9999999999")
"""Largest target accepted (numeric(14, 4))."""


@dataclass(frozen=True, slots=True)
class TargetRow:
    """A plan_target row."""

    id: int
    subject: m.TargetSubject
    admin_code: str | None
    facility_id: int | None
    project_id: int | None
    county_code: str
    year: int
    metric: m.TargetMetric
    target: Decimal
    source: str | None
    version: int

    @classmethod
    def of(cls, r: Any) -> TargetRow:
        """From a row of ``COLUMNS``."""
        return cls(*(getattr(r, c.key) for c in COLUMNS))


@dataclass(frozen=True, slots=True)
class Actual:
    """A target's actual on a date: the value (None: nothing measures it) and the households behind it."""

    value: Decimal | None
    households: int


async def targets(
    sm: SessionMaker,
    *,
    year: int | None = None,
    subject: m.TargetSubject | None = None,
    area_code: str | None = None,
    facility_id: int | None = None,
    project_id: int | None = None,
) -> list[TargetRow]:
    """The targets the viewer sees matching every given filter, by id.

    ``area_code``: targets of areas under it, and of facilities and projects in counties under it.

    Raises:
        InvalidInput: year outside 2000..2100; malformed ``areaCode``.
    """
    q = select(*COLUMNS).order_by(T.id)
    if year is not None:
        q = q.where(T.year == check_year(year))
    if subject is not None:
        q = q.where(T.subject == subject)
    if area_code is not None:
        prefix = area_code_prefix(area_code, "areaCode")
        if len(prefix) >= 6:  # an area at or below a county: its targets and its county's facilities and projects
            q = q.where(
                (T.subject != m.TargetSubject.AREA) & (T.county_code == prefix[:6])
                | under_area(cast(Any, T.admin_code), area_code)
            )
        else:
            q = q.where(T.county_code.like(prefix + "%") | under_area(cast(Any, T.admin_code), area_code))
    if facility_id is not None:
        q = q.where(T.facility_id == facility_id)
    if project_id is not None:
        q = q.where(T.project_id == project_id)
    async with sm() as s:
        return [TargetRow.of(r) for r in await s.execute(q)]


async def targets_by_project_ids(sm: SessionMaker, ids: Sequence[int]) -> list[list[TargetRow]]:
    """Batch: each cooperation project's targets, by id."""
    by: dict[int, list[TargetRow]] = {}
    async with sm() as s:
        for r in await s.execute(select(*COLUMNS).where(T.project_id.in_(list(set(ids)))).order_by(T.id)):
            by.setdefault(r.project_id, []).append(TargetRow.of(r))
    return [by.get(i, []) for i in ids]


async def actuals(sm: SessionMaker, keys: Sequence[tuple[int, str | None, dt.date]]) -> list[Actual]:
    """Batch: each (target id, its admin code or None, date) → the actual on the date, from rows.

    One statement per distinct date (resolvers/sql/target_actuals.sql). Run through the viewer's aggregate scope: the
    rows it counts are those the viewer may aggregate.
    """
    sql = text(sql_files.read("target_actuals.sql"))
    by_date: dict[dt.date, dict[int, str | None]] = {}
    for tid, code, d in keys:
        by_date.setdefault(d, {})[tid] = area_code_prefix(code) if code else None
    out: dict[tuple[int, dt.date], Actual] = {}
    async with sm() as s:
        for d, ids in by_date.items():
            rows = await s.execute(sql, {"ids": list(ids), "prefixes": list(ids.values()), "as_of": d})
            for r in rows:
                out[(r.id, d)] = Actual(r.actual, int(r.basis))
    return [out.get((tid, d), Actual(None, 0)) for tid, _, d in keys]


def check_target(metric: m.TargetMetric, value: Decimal) -> Decimal:
    """A target value: finite, >= 0, at most 9,999,999,999; a coverage rate at most 1.

    Raises:
        InvalidInput: naming ``target``.
    """
    if not value.is_finite() or value < 0 or value > MAX_TARGET:
        raise InvalidInput(f"target: {value} outside 0..{MAX_TARGET}", field="target")
    if metric is m.TargetMetric.COVERAGE_RATE and value > 1:
        raise InvalidInput(f"target: a coverage rate is 0..1, got {value}", field="target")
    return value


async def _county_of(s: AsyncSession, subject: m.TargetSubject, key: str | int) -> str:
    """The county of a target's subject (an area's own code's first 6 digits). Raises NotFound naming the key field."""
    if subject is m.TargetSubject.AREA:
        found = await s.scalar(select(m.AdminArea.code).where(m.AdminArea.code == key))
        field, what = "areaCode", "admin area"
    elif subject is m.TargetSubject.FACILITY:
        found = await s.scalar(select(m.Facility.admin_code).where(m.Facility.id == key))
        field, what = "facilityId", "facility"
    else:
        found = await s.scalar(select(m.CooperationProject.county_code).where(m.CooperationProject.id == key))
        field, what = "projectId", "cooperation project"
    if found is None:
        raise NotFound(f"{field}: {what} {key} does not exist", field=field)
    return str(found)[:6]


def subject_key(
    subject: m.TargetSubject, area_code: str | None, facility_id: int | None, project_id: int | None
) -> dict[str, Any]:
    """The one key column of ``subject`` (the others None).

    Raises:
        InvalidInput: the subject's key missing, or another subject's given.
    """
    keys = {"admin_code": area_code, "facility_id": facility_id, "project_id": project_id}
    field = {"admin_code": "areaCode", "facility_id": "facilityId", "project_id": "projectId"}
    own = {m.TargetSubject.AREA: "admin_code", m.TargetSubject.FACILITY: "facility_id", m.TargetSubject.PROJECT: "project_id"}[
        subject
    ]
    if keys[own] is None:
        raise InvalidInput(f"{field[own]}: required for a target of subject {subject.name}", field=field[own])
    for col, v in keys.items():
        if col != own and v is not None:
            raise InvalidInput(f"{field[col]}: not for a target of subject {subject.name}", field=field[col])
    if subject is m.TargetSubject.AREA:
        area_code_prefix(str(area_code), "areaCode")
    return keys


async def set_target(
    sm: SessionMaker,
    *,
    subject: m.TargetSubject,
    area_code: str | None,
    facility_id: int | None,
    project_id: int | None,
    year: int,
    metric: m.TargetMetric,
    target: Decimal,
    source: str | None,
    version: int | None,
) -> TargetRow:
    """Set (create, or replace at ``version``) the target of a subject, year and metric; audited.

    Raises:
        InvalidInput: a metric the subject does not take (``metric``), a bad key, year, target or source.
        NotFound: no such area, facility or project. OutOfScope: outside the viewer's areas (officers).
        StaleVersion: the target exists and ``version`` is not its version (null: it was set meanwhile).
    """
    if metric not in m.TARGET_METRICS[subject]:
        allowed = ", ".join(x.name for x in m.TARGET_METRICS[subject])
        raise InvalidInput(f"metric: {metric.name} is not a metric of subject {subject.name} ({allowed})", field="metric")
    keys = subject_key(subject, area_code, facility_id, project_id)
    check_year(year)
    check_target(metric, target)
    source = check_text(source, "source", max_len=500)
    own = next(v for v in keys.values() if v is not None)

    async def work(s: AsyncSession) -> TargetRow:
        county = await _county_of(s, subject, own)
        match = [T.subject == subject, T.year == year, T.metric == metric] + [
            getattr(T, c).is_(None) if v is None else getattr(T, c) == v for c, v in keys.items()
        ]
        before = (await s.execute(select(*COLUMNS).where(*match))).first()
        values = {"target": target, "source": source}
        if before is None:
            if version is not None:
                raise StaleVersion("version: no such target is set; omit version to create it", field="version")
            new = (
                await s.execute(
                    insert(T)
                    .values(subject=subject, **keys, county_code=county, year=year, metric=metric, **values)
                    .returning(*COLUMNS)
                )
            ).one()
            row = TargetRow.of(new)
            await audit_row(s, "set_plan_target", "plan_target", row.id, None)
            return row
        old = TargetRow.of(before)
        if version is None:
            raise StaleVersion(
                f"version: the target is set (version {old.version}); give its version to replace it", field="version"
            )
        await claim_version(s, T, old.id, version, "id", missing=_not_yours)
        old_json = await claimed_image(s, "plan_target", old.id, version)
        updated = await s.execute(
            update(T).where(T.id == old.id).values(**values).returning(*COLUMNS).execution_options(synchronize_session=False)
        )
        row = TargetRow.of(updated.one())
        await audit_row(s, "set_plan_target", "plan_target", row.id, old_json)
        return row

    return await in_transaction(sm, work)


async def delete_target(sm: SessionMaker, *, target_id: int, version: int) -> int:
    """Delete a target at ``version``; audited. Its id.

    Raises:
        NotFound, OutOfScope (officers outside their areas), StaleVersion.
    """

    async def work(s: AsyncSession) -> int:
        before = (await s.execute(select(*COLUMNS).where(T.id == target_id))).first()
        if before is None:
            raise NotFound(f"id: plan target {target_id} does not exist", field="id")
        await claim_version(s, T, target_id, version, "id", missing=_not_yours)
        old_json = await claimed_image(s, "plan_target", target_id, version)
        await s.execute(delete(T).where(T.id == target_id).execution_options(synchronize_session=False))
        await audit_row(s, "delete_plan_target", "plan_target", target_id, old_json)
        return target_id

    return await in_transaction(sm, work)


async def _not_yours(s: AsyncSession, table: str, key: int, field: str) -> NoReturn:
    """A visible target ``claim_version`` could not write: not the viewer's (row-level security) or gone meanwhile."""
    if await s.scalar(select(T.id).where(T.id == key)) is None:
        raise NotFound(f"id: plan target {key} does not exist", field="id")
    raise OutOfScope("the target is outside your areas; nothing was written")


def progress(actual: Decimal | None, target: Decimal) -> float | None:
    """Actual ÷ target (1.0 = met exactly); None without an actual or for a target of 0."""
    if actual is None or target == 0:
        return None
    p = float(actual / target)
    return p if math.isfinite(p) else None
