"""Monitoring casework (issue #17): grids, cases and their stages, measures, visits, missed monitoring, ledgers, inspections.

Grids (三级网格), monitoring cases (监测对象), assistance measures (帮扶措施), follow-up visits, the three guarantees and
drinking water (三保障和饮水安全), missed monitoring (防止漏测) and risk rebound (风险反弹), ledgers (台账), inspections
and rectification (巡回指导、督导暗访、问题整改).

Every write runs in one transaction under the viewer's row-level security (grid workers: their grids' households;
county officers: their areas), validates before writing, and leaves one ``audit_log`` row (the registry's audit:
``resolvers.access.audit``). A case step locks the case (``SELECT … FOR UPDATE``) and claims its ``version``: of two
concurrent approvals of the same stage exactly one is written, the other answers CONFLICT.

Stage order: the table ``case_transition`` (migrations/sql/casework.sql), also enforced by a trigger on ``case_step``.

Definitions (docs/api.md "Monitoring casework"):

- A case is open on D: ``anju_case_open_on(opened_on, closed_on, D)`` (``case_open_on`` here), opened on or before D and
  not closed by D. Its stage on D: the stage after its last step acted on by D.
- Missed monitoring on D (income year Y): a household under no open case on D meeting a criterion: per-capita net
  income of Y under the monitoring line of Y and its province (``casework.monitoring_lines``, else
  ``monitoring.per_capita_threshold``); per-capita income of Y lower than Y − 1's by more than
  ``casework.income_drop_share``; its latest guarantee check on or before D failing; a sudden hardship reported in the
  ``casework.hardship_days`` up to D. Rebound (风险反弹): such a household one of whose cases was eliminated by D.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NoReturn, cast

from geoalchemy2.shape import from_shape
from sqlalchemy import (
    ColumnElement,
    Integer,
    Numeric,
    String,
    and_,
    case,
    false,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    text,
    tuple_,
    union_all,
    update,
)
from sqlalchemy import cast as sa_cast
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import array as pg_array
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

import models as m
from resolvers.access import Role, Viewer, audit, audit_row, audit_who, row_json, viewer_of
from resolvers.errors import InvalidInput, NotFound, OutOfScope, StaleVersion
from resolvers.geometry import parse_geometry
from resolvers.households import household_select
from resolvers.mutations import (
    check_county,
    check_facility,
    check_money,
    check_not_future,
    check_text,
    claim_version,
    claimed_image,
    in_transaction,
)
from resolvers.paging import Page, PageArgs
from resolvers.query import AnyRow, AnySelect, SessionMaker, area_code_prefix, check_period, fetch_page, geojson
from resolvers.rows import HouseholdRow

H, C, S, G = m.Household, m.MonitoringCase, m.CaseStep, m.Grid
Stage = m.CaseStage
IDENTIFICATION = (
    Stage.APPLICATION,
    Stage.HOME_VERIFICATION,
    Stage.VILLAGE_APPRAISAL,
    Stage.PUBLIC_NOTICE,
    Stage.TOWNSHIP_REVIEW,
    Stage.COUNTY_APPROVAL,
)
"""The identification stages (识别), in order; the rest up to ELIMINATION_CONFIRMATION are risk elimination (风险消除)."""
NOTICES = {Stage.PUBLIC_NOTICE: "public_notice_days", Stage.ELIMINATION_NOTICE: "elimination_notice_days"}
"""The public-notice stages (公示) and the setting of their least number of days (N, M)."""


def case_open_on(d: Any, cases: Any = C) -> ColumnElement[bool]:
    """SQL: the case row ``cases`` is open on ``d`` (the database's ``anju_case_open_on``: the one definition).

    The site scorecard (issue #15) counts open cases with it: ``select(func.count()).where(case_open_on(D))``.
    """
    return cast(ColumnElement[bool], func.anju_case_open_on(cases.opened_on, cases.closed_on, d))


def stage_on(d: Any, cases: Any = C) -> Any:
    """SQL: the stage of the case row ``cases`` on ``d`` (``anju_case_stage_on``; NULL before its application)."""
    return func.anju_case_stage_on(cases.id, d).cast(m.Base.metadata.tables["case_step"].c.stage.type)


def outcome_of(stage: Any) -> Any:
    """SQL: a stage's outcome: identifying, monitored, risk_eliminated or not_included (台账's 结果)."""
    ident = [s.value for s in IDENTIFICATION[:-1]]
    return case(
        (stage.in_(ident), "identifying"),
        (stage == Stage.ELIMINATION_CONFIRMATION.value, "risk_eliminated"),
        (stage == Stage.NOT_INCLUDED.value, "not_included"),
        else_="monitored",
    )


# --------------------------------------------------------------------------- who acts


def actor_level(viewer: Viewer | None, household_admin_code: str) -> str:
    """What level the viewer acts at on a household: grid_worker, village, township, county or admin.

    A county officer's level is that of its most specific area code covering the household (12 digits: village,
    9: township, 6: county). Internal sessions (seed, CLI) act as admin.
    """
    if viewer is None or viewer.role is Role.ADMIN:
        return "admin"
    if viewer.role is Role.GRID_WORKER:
        return "grid_worker"
    if viewer.role is Role.COUNTY_OFFICER:
        covering = [area_code_prefix(c) for c in viewer.area_codes if household_admin_code.startswith(area_code_prefix(c))]
        longest = max((len(p) for p in covering), default=0)
        return {12: "village", 9: "township"}.get(longest, "county")
    return viewer.role.value


def check_actor(viewer: Viewer | None, stage: m.CaseStage, admin_code: str, actors: dict[str, list[str]]) -> str:
    """The viewer's level, when it may act on ``stage`` (``casework.stage_actors``). Raises OutOfScope (FORBIDDEN)."""
    level = actor_level(viewer, admin_code)
    allowed = actors.get(stage.value, [])
    if level not in allowed:
        raise OutOfScope(
            f"stage: {stage.name} is acted on by {', '.join(allowed)}, not by a {level.replace('_', ' ')}; nothing was written",
            field="stage",
        )
    return level


async def _missing(s: AsyncSession, kind: str, key: int, field: str) -> Exception:
    """FORBIDDEN when the record exists outside the viewer's scope, NOT_FOUND when it does not exist."""
    if await s.scalar(text("SELECT anju_casework_exists(:k, :id)"), {"k": kind, "id": key}):
        return OutOfScope(f"{field}: {kind.replace('_', ' ')} {key} is outside your scope; nothing was written", field=field)
    return NotFound(f"{field}: {kind.replace('_', ' ')} {key} does not exist", field=field)


async def _refuse_missing(s: AsyncSession, kind: str, key: int, field: str) -> NoReturn:
    """``_missing`` raised: the ``claim_version`` refusal of a casework record the viewer cannot write."""
    raise await _missing(s, kind, key, field)


async def _household(s: AsyncSession, household_id: int, field: str = "householdId", *, lock: bool = False) -> AnyRow:
    """The household (id, admin_code, county_code) as the viewer may write it; FORBIDDEN / NOT_FOUND otherwise."""
    q = select(H.id, H.admin_code, H.county_code, H.grid_id).where(H.id == household_id)
    row = (await s.execute(q.with_for_update(of=H) if lock else q)).first()
    if row is None:
        raise await _missing(s, "household", household_id, field)
    return row


async def _one(s: AsyncSession, statement: Any) -> int:
    """The id an ``INSERT … RETURNING id`` wrote."""
    return int((await s.execute(statement)).scalar_one())


# --------------------------------------------------------------------------- grids


@dataclass(frozen=True, slots=True)
class GridRow:
    """A grid: id, county, parent, level (1..3), code, name, area (GeoJSON MultiPolygon or None), worker's user name."""

    id: int
    county_code: str
    parent_id: int | None
    level: int
    code: str
    name: str
    area: str | None
    worker: str | None
    households: int

    @classmethod
    def of(cls, r: AnyRow) -> GridRow:
        """From a ``grid_select`` row."""
        return cls(r.id, r.county_code, r.parent_id, r.level, r.code, r.name, r.area, r.worker, int(r.households))


def grid_select() -> AnySelect:
    """Every read of grids (the viewer's row scope applies): the grid, its worker's name, its households (level 3)."""
    n = select(func.count()).where(H.grid_id == G.id).correlate(G).scalar_subquery()
    worker = func.anju_user_name(G.worker_user_id)
    return select(
        G.id,
        G.county_code,
        G.parent_id,
        G.level,
        G.code,
        G.name,
        geojson(G.area, polygon=True).label("area"),
        worker.label("worker"),
        n.label("households"),
    )


async def grids(sm: SessionMaker, *, county_code: str | None, parent_id: int | None, level: int | None) -> list[GridRow]:
    """The grids the viewer may see, by code; filtered by county, parent and level."""
    q = grid_select()
    if county_code is not None:
        q = q.where(G.county_code == area_code_prefix(county_code, "countyCode"))
    if parent_id is not None:
        q = q.where(G.parent_id == parent_id)
    if level is not None:
        q = q.where(G.level == level)
    async with sm() as s:
        return [GridRow.of(r) for r in await s.execute(q.order_by(G.county_code, G.code))]


async def grids_by_ids(sm: SessionMaker, ids: Sequence[int]) -> list[GridRow | None]:
    """Batch load of grids by id (None where missing or not the viewer's)."""
    async with sm() as s:
        found = {r.id: GridRow.of(r) for r in await s.execute(grid_select().where(G.id.in_(list(set(ids)))))}
    return [found.get(i) for i in ids]


async def _worker_id(s: AsyncSession, name: str | None) -> int | None:
    if name is None:
        return None
    row = (await s.execute(text("SELECT id, role FROM anju_user_by_name(:n)"), {"n": name})).first()
    if row is None or row.id is None:
        raise NotFound(f"workerName: no user {name!r}", field="workerName")
    if row.role != Role.GRID_WORKER.value:
        raise InvalidInput(f"workerName: {name} is a {row.role}, not a grid_worker", field="workerName")
    return int(row.id)


async def create_grid(
    sm: SessionMaker,
    *,
    county_code: str | None,
    parent_id: int | None,
    code: str,
    name: str,
    area: Any,
    worker_name: str | None,
    max_vertices: int,
) -> int:
    """A new grid: top level under ``county_code`` or one level below ``parent_id`` (at most 3 levels).

    Raises:
        InvalidInput (naming the field: code taken, a fourth level, no county or parent), NotFound, OutOfScope.
    """
    code_ = check_text(code, "code", required=True, max_len=40)
    name_ = check_text(name, "name", required=True, max_len=100)
    geom = parse_geometry(area, "area", allowed=("Polygon", "MultiPolygon"), max_vertices=max_vertices) if area else None
    if (county_code is None) == (parent_id is None):
        raise InvalidInput("countyCode: give a county code for a top-level grid, or parentId for one below", field="countyCode")

    async def work(s: AsyncSession) -> int:
        if parent_id is not None:
            parent = (await s.execute(select(G.county_code, G.level).where(G.id == parent_id))).first()
            if parent is None:
                raise await _missing(s, "grid", parent_id, "parentId")
            if parent.level >= 3:
                raise InvalidInput(
                    f"parentId: grid {parent_id} is of the bottom level (3); grids have three levels", field="parentId"
                )
            county, level = parent.county_code, parent.level + 1
        else:
            county, level = await check_county(s, cast(str, county_code)), 1
        if await s.scalar(text("SELECT 1 FROM grid WHERE county_code = :c AND code = :k"), {"c": county, "k": code_}):
            raise InvalidInput(f"code: grid code {code_} is taken in county {county}", field="code")
        wid = await _worker_id(s, worker_name)
        gid = await _one(
            s,
            insert(m.Grid)
            .values(
                county_code=county,
                parent_id=parent_id,
                level=level,
                code=code_,
                name=name_,
                area=from_shape(geom, srid=m.SRID) if geom is not None else None,
                worker_user_id=wid,
            )
            .returning(G.id),
        )
        await audit_row(s, "createGrid", "grid", int(gid), None)
        return int(gid)

    return await in_transaction(sm, work)


async def assign_households(sm: SessionMaker, *, grid_id: int, household_ids: Sequence[int], worker_name: str | None) -> int:
    """Put households into a bottom-level grid (and optionally set its worker); answers how many moved in.

    Raises:
        InvalidInput (not a level-3 grid, a household of another county), NotFound / OutOfScope (grid or household).
    """

    async def work(s: AsyncSession) -> int:
        g = (await s.execute(select(G.county_code, G.level).where(G.id == grid_id))).first()
        if g is None:
            raise await _missing(s, "grid", grid_id, "gridId")
        if g.level != 3:
            raise InvalidInput(
                f"gridId: grid {grid_id} is of level {g.level}; households belong to bottom-level grids (3)", field="gridId"
            )
        if worker_name is not None:
            before = await row_json(s, "grid", {"id": grid_id})
            await s.execute(update(G).where(G.id == grid_id).values(worker_user_id=await _worker_id(s, worker_name)))
            await audit_row(s, "setGridWorker", "grid", grid_id, before)
        ids = list(dict.fromkeys(household_ids))
        rows = (await s.execute(select(H.id, H.county_code, H.grid_id).where(H.id.in_(ids)).with_for_update(of=H))).all()
        seen = {r.id: r for r in rows}
        for i, hid in enumerate(ids):
            if hid not in seen:
                raise await _missing(s, "household", hid, f"householdIds[{i}]")
            if seen[hid].county_code != g.county_code:
                raise InvalidInput(
                    f"householdIds[{i}]: household {hid} is not in county {g.county_code}", field=f"householdIds[{i}]"
                )
        moved = [h for h in ids if seen[h].grid_id != grid_id]
        if moved:
            await s.execute(
                update(H)
                .where(H.id.in_(moved))
                .values(grid_id=grid_id, version=H.version + 1)
                .execution_options(synchronize_session=False)
            )
            await audit(s, "assignHouseholdsToGrid", "grid", grid_id, None, {"households": moved})
        return len(moved)

    return await in_transaction(sm, work)


# --------------------------------------------------------------------------- cases


@dataclass(frozen=True, slots=True)
class CaseRow:
    """A monitoring case as read: its columns and its household's admin code."""

    id: int
    household_id: int
    category: m.MonitoringCategory
    risk_types: list[m.RiskType]
    source: m.CaseSource
    opened_on: dt.date
    stage: m.CaseStage
    stage_on: dt.date
    included_on: dt.date | None
    closed_on: dt.date | None
    notes: str | None
    version: int

    @classmethod
    def of(cls, r: AnyRow) -> CaseRow:
        """From a ``case_select`` row."""
        return cls(*(r._mapping[f] for f in cls.__slots__))  # type: ignore[attr-defined]


def case_select() -> AnySelect:
    """Every read of monitoring cases (scoped with their households)."""
    return select(
        C.id, C.household_id, C.category, C.risk_types, C.source, C.opened_on, C.stage, C.stage_on, C.included_on,
        C.closed_on, C.notes, C.version,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class StepRow:
    """One step of a case's history."""

    id: int
    stage: m.CaseStage
    approved: bool
    stage_after: m.CaseStage
    acted_on: dt.date
    user_name: str
    actor_level: str
    participants: list[str]
    notice_from: dt.date | None
    notice_to: dt.date | None
    notes: str | None
    at: dt.datetime


async def cases_by_ids(sm: SessionMaker, ids: Sequence[int]) -> list[CaseRow | None]:
    """Batch load of cases by id (None where missing or outside the viewer's scope)."""
    async with sm() as s:
        found = {r.id: CaseRow.of(r) for r in await s.execute(case_select().where(C.id.in_(list(set(ids)))))}
    return [found.get(i) for i in ids]


async def steps_by_case_ids(sm: SessionMaker, ids: Sequence[int]) -> list[list[StepRow]]:
    """Each case's steps in the order they were acted on (its history)."""
    cols = [S.case_id, *(getattr(S, f) for f in StepRow.__slots__)]  # type: ignore[attr-defined]
    out: dict[int, list[StepRow]] = {i: [] for i in ids}
    async with sm() as s:
        for r in await s.execute(select(*cols).where(S.case_id.in_(list(set(ids)))).order_by(S.acted_on, S.id)):
            out[r.case_id].append(StepRow(*r[1:]))
    return [out[i] for i in ids]


async def cases_by_household_ids(sm: SessionMaker, ids: Sequence[int]) -> list[list[CaseRow]]:
    """Each household's cases, oldest first."""
    out: dict[int, list[CaseRow]] = {i: [] for i in ids}
    async with sm() as s:
        for r in await s.execute(case_select().where(C.household_id.in_(list(set(ids)))).order_by(C.opened_on, C.id)):
            out[r.household_id].append(CaseRow.of(r))
    return [out[i] for i in ids]


def _scope(q: AnySelect, household: Any, area_code: str | None, grid_id: int | None) -> AnySelect:
    """Households under an admin area (code prefix) and/or in a grid or any grid below it."""
    if area_code is not None:
        prefix = area_code_prefix(area_code)
        if len(prefix) >= 6:  # the county index first (the officers' predicate)
            q = q.where(household.county_code == prefix[:6])
        q = q.where(household.admin_code.like(prefix + "%"))
    if grid_id is not None:
        q = q.where(household.grid_id.in_(grid_leaves(grid_id)))
    return q


def grid_leaves(grid_id: int) -> AnySelect:
    """SQL: the bottom-level grids at or below ``grid_id`` (three levels: at most two steps down)."""
    g2, g3 = aliased(G), aliased(G)
    return (
        select(g3.id)
        .outerjoin(g2, g2.id == g3.parent_id)
        .where(g3.level == 3, or_(g3.id == grid_id, g3.parent_id == grid_id, g2.parent_id == grid_id))
    )


async def list_cases(
    sm: SessionMaker,
    args: PageArgs,
    *,
    area_code: str | None,
    grid_id: int | None,
    open_on: dt.date | None,
    stage: m.CaseStage | None,
) -> Page[CaseRow]:
    """Cases by id, filtered by area, grid, open on a date and current stage."""
    q = case_select().join(H, H.id == C.household_id)
    q = _scope(q, H, area_code, grid_id)
    if open_on is not None:
        q = q.where(case_open_on(open_on))
    if stage is not None:
        q = q.where(C.stage == stage)
    return await fetch_page(sm, q, C.id, args, kind="case", build=CaseRow.of)


async def open_case(
    sm: SessionMaker,
    *,
    household_id: int,
    category: m.MonitoringCategory,
    risk_types: Sequence[m.RiskType],
    source: m.CaseSource,
    opened_on: dt.date,
    notes: str | None,
    today: dt.date,
    actors: dict[str, list[str]],
) -> int:
    """A new case at stage APPLICATION (申请 / 发现), its first step written with it.

    Raises:
        InvalidInput (no risk type, a date in the future), OutOfScope (household outside the viewer's scope, or the viewer
        may not open cases), NotFound, Duplicate-like CONFLICT (the household has a case open on ``openedOn``).
    """
    if not risk_types:
        raise InvalidInput("riskTypes: at least one risk type", field="riskTypes")
    check_not_future(opened_on, "openedOn", today)
    notes_ = check_text(notes, "notes", max_len=2000)

    async def work(s: AsyncSession) -> int:
        hh = await _household(s, household_id, lock=True)
        level = check_actor(viewer_of(s), Stage.APPLICATION, hh.admin_code, actors)
        clash = await s.scalar(
            select(C.id).where(C.household_id == household_id, or_(C.closed_on.is_(None), C.closed_on > opened_on))
        )
        if clash is not None:
            raise StaleVersion(
                f"householdId: household {household_id} has case {clash} open; act on it instead of opening another",
                field="householdId",
            )
        cid = await _one(
            s,
            insert(C)
            .values(
                household_id=household_id,
                county_code=hh.county_code,
                category=category,
                risk_types=list(dict.fromkeys(risk_types)),
                source=source,
                opened_on=opened_on,
                stage=Stage.APPLICATION,
                stage_on=opened_on,
                notes=notes_,
            )
            .returning(C.id),
        )
        await _step(s, int(cid), Stage.APPLICATION, True, Stage.APPLICATION, opened_on, level, [], None, None, notes_)
        await audit_row(s, "openMonitoringCase", "monitoring_case", int(cid), None)
        return int(cid)

    return await in_transaction(sm, work)


async def _step(
    s: AsyncSession,
    case_id: int,
    stage: m.CaseStage,
    approved: bool,
    after: m.CaseStage,
    on: dt.date,
    level: str,
    participants: list[str],
    notice_from: dt.date | None,
    notice_to: dt.date | None,
    notes: str | None,
) -> None:
    who = audit_who(s)
    await s.execute(
        insert(S).values(
            case_id=case_id,
            stage=stage,
            approved=approved,
            stage_after=after,
            acted_on=on,
            user_id=who["user_id"],
            user_name=who["user_name"],
            actor_level=level,
            participants=participants,
            notice_from=notice_from,
            notice_to=notice_to,
            notes=notes,
        )
    )


async def act_on_case(
    sm: SessionMaker,
    *,
    case_id: int,
    version: int,
    stage: m.CaseStage,
    approved: bool,
    acted_on: dt.date,
    notes: str | None,
    participants: Sequence[str],
    notice_from: dt.date | None,
    notice_to: dt.date | None,
    today: dt.date,
    actors: dict[str, list[str]],
    notice_days: dict[m.CaseStage, int],
) -> int:
    """Act on the next stage of a case: approve it (the case moves on) or refuse it.

    A refused identification stage closes the case as NOT_INCLUDED; a refused elimination stage puts it back to
    monitored (COUNTY_APPROVAL). County approval includes the household in monitoring (``household.monitoring_category``,
    ``risk_eliminated`` false); the county's confirmation of elimination closes the case (``risk_eliminated`` true).

    Rules: ``stage`` is the one after the case's current stage (``case_transition``); the viewer's level may act on it
    (``casework.stage_actors``); ``actedOn`` is not before the current stage's date nor in the future; a public notice
    gives its dates and lasts at least N (M) days, and the stage after it is acted on after it ended; elimination's home
    verification names at least two people.

    Returns:
        The case's new version.

    Raises:
        InvalidInput (out of order, dates, participants), OutOfScope (the viewer's level, or a case outside its scope),
        NotFound, StaleVersion (CONFLICT: someone acted first; nothing written).
    """
    check_not_future(acted_on, "actedOn", today)
    notes_ = check_text(notes, "notes", max_len=2000)
    people = [p for p in (check_text(x, f"participants[{i}]", max_len=50) for i, x in enumerate(participants)) if p]

    async def work(s: AsyncSession) -> int:
        new_version = await claim_version(s, C, case_id, version, "caseId", missing=_refuse_missing)
        row = (
            await s.execute(
                select(C.id, C.stage, C.stage_on, C.household_id, C.category, H.admin_code)
                .join(H, H.id == C.household_id)
                .where(C.id == case_id)
            )
        ).one()
        nxt = await s.scalar(select(m.CaseTransition.to_stage).where(m.CaseTransition.from_stage == row.stage))
        if nxt is None:
            raise InvalidInput(f"stage: case {case_id} is closed at {row.stage.name}; no stage follows", field="stage")
        if stage is not nxt:
            raise InvalidInput(
                f"stage: case {case_id} is at {row.stage.name}; the next stage is {nxt.name}, not {stage.name} "
                "(no stage is skipped); nothing was written",
                field="stage",
            )
        level = check_actor(viewer_of(s), stage, row.admin_code, actors)
        if acted_on < row.stage_on:
            raise InvalidInput(f"actedOn: {acted_on} is before the case's last step ({row.stage_on})", field="actedOn")
        if stage in NOTICES:
            if notice_from is None or notice_to is None:
                raise InvalidInput(
                    f"noticeFrom: a public notice ({stage.name}) gives noticeFrom and noticeTo", field="noticeFrom"
                )
            days = (notice_to - notice_from).days + 1
            if notice_from < row.stage_on or notice_to > acted_on:
                raise InvalidInput(
                    f"noticeFrom: the notice runs between the last step ({row.stage_on}) and actedOn ({acted_on})",
                    field="noticeFrom",
                )
            if days < notice_days[stage]:
                raise InvalidInput(
                    f"noticeTo: the public notice lasted {days} days; at least {notice_days[stage]} are required",
                    field="noticeTo",
                )
        elif notice_from is not None or notice_to is not None:
            raise InvalidInput(f"noticeFrom: only public notices have notice dates, not {stage.name}", field="noticeFrom")
        if row.stage in NOTICES:
            notice_end = await s.scalar(
                select(S.notice_to).where(S.case_id == case_id, S.stage == row.stage).order_by(S.id.desc()).limit(1)
            )
            if notice_end is not None and acted_on <= notice_end:
                raise InvalidInput(f"actedOn: the public notice runs until {notice_end}; act after it", field="actedOn")
        if stage is Stage.ELIMINATION_VERIFICATION and len(set(people)) < 2:
            raise InvalidInput(
                "participants: a home verification for risk elimination names at least two people", field="participants"
            )
        if approved:
            after = stage
        else:
            after = Stage.NOT_INCLUDED if stage in IDENTIFICATION else Stage.COUNTY_APPROVAL
        before = await claimed_image(s, "monitoring_case", case_id, version)
        await _step(s, case_id, stage, approved, after, acted_on, level, people, notice_from, notice_to, notes_)
        values: dict[str, Any] = {"stage": after, "stage_on": acted_on}
        if approved and stage is Stage.COUNTY_APPROVAL:
            values["included_on"] = acted_on
        if after in (Stage.NOT_INCLUDED, Stage.ELIMINATION_CONFIRMATION):
            values["closed_on"] = acted_on
        await s.execute(update(C).where(C.id == case_id).values(**values))
        flag = {Stage.COUNTY_APPROVAL: False, Stage.ELIMINATION_CONFIRMATION: True}.get(stage) if approved else None
        if flag is not None:  # the household's monitoring flags follow its case (householdsAtRisk, coverage read them)
            await s.execute(
                update(H)
                .where(H.id == row.household_id)
                .values(monitoring_category=row.category, risk_eliminated=flag, version=H.version + 1)
                .execution_options(synchronize_session=False)
            )
        await audit_row(s, f"case.{stage.value}" + ("" if approved else ".refused"), "monitoring_case", case_id, before)
        return int(new_version)

    return await in_transaction(sm, work)


# --------------------------------------------------------------------------- measures, visits, guarantees, hardship


async def _case_household(s: AsyncSession, case_id: int | None, household_id: int | None) -> tuple[int, int | None]:
    """(household, case) of a record given either; the case must be the household's. Raises NotFound / OutOfScope."""
    if case_id is not None:
        hid = await s.scalar(select(C.household_id).where(C.id == case_id))
        if hid is None:
            raise await _missing(s, "monitoring_case", case_id, "caseId")
        if household_id is not None and household_id != hid:
            raise InvalidInput(f"caseId: case {case_id} is not of household {household_id}", field="caseId")
        await _household(s, hid)
        return int(hid), case_id
    if household_id is None:
        raise InvalidInput("householdId: give householdId or caseId", field="householdId")
    await _household(s, household_id)
    return household_id, None


async def record_measure(sm: SessionMaker, *, case_id: int, values: dict[str, Any], today: dt.date) -> int:
    """A 帮扶措施 of a case: type, responsible, funds (yuan), start/end, status, facility or project. Answers its id.

    Raises:
        InvalidInput (dates, funds, text), NotFound (case, facility, project), OutOfScope.
    """
    responsible = check_text(values.get("responsible"), "responsible", required=True, max_len=200)
    funds = check_money(values.get("funds"), "funds", required=False)
    start, end = values["start_on"], values.get("end_on")
    check_not_future(start, "startOn", today + dt.timedelta(days=3660))
    check_period(start, end)

    async def work(s: AsyncSession) -> int:
        hid, cid = await _case_household(s, case_id, None)
        await check_facility(s, values.get("facility_id"))
        project = values.get("project_id")
        if (
            project is not None
            and await s.scalar(select(m.CooperationProject.id).where(m.CooperationProject.id == project)) is None
        ):
            raise NotFound(f"projectId: cooperation project {project} does not exist", field="projectId")
        mid = await _one(
            s,
            insert(m.AssistanceMeasure)
            .values(
                household_id=hid,
                case_id=cid,
                type=values["type"],
                responsible=responsible,
                funds=funds,
                start_on=start,
                end_on=end,
                status=values["status"],
                facility_id=values.get("facility_id"),
                project_id=values.get("project_id"),
                notes=check_text(values.get("notes"), "notes", max_len=2000),
            )
            .returning(m.AssistanceMeasure.id),
        )
        await audit_row(s, "recordAssistanceMeasure", "assistance_measure", int(mid), None)
        return int(mid)

    return await in_transaction(sm, work)


GUARANTEES = ("education", "medical", "housing", "drinking_water")
"""三保障和饮水安全: compulsory education, basic medical insurance, safe housing, safe drinking water."""


async def record_visit(
    sm: SessionMaker,
    *,
    household_id: int | None,
    case_id: int | None,
    visited_on: dt.date,
    findings: str,
    per_capita_income: Decimal | None,
    guarantees: dict[str, bool | None] | None,
    today: dt.date,
) -> int:
    """A follow-up visit (走访) by the viewer; with ``guarantees``, the household's guarantee check of that day too.

    Raises:
        InvalidInput, NotFound, OutOfScope (a household outside the viewer's grids or areas).
    """
    check_not_future(visited_on, "visitedOn", today)
    text_ = check_text(findings, "findings", required=True, max_len=4000)
    pc = check_money(per_capita_income, "perCapitaIncome", required=False)

    async def work(s: AsyncSession) -> int:
        hid, cid = await _case_household(s, case_id, household_id)
        who = audit_who(s)
        vid = await _one(
            s,
            insert(m.FollowUpVisit)
            .values(
                household_id=hid, case_id=cid, visited_on=visited_on, user_id=who["user_id"], user_name=who["user_name"],
                findings=text_, per_capita_income=pc,
            )
            .returning(m.FollowUpVisit.id)
        )  # fmt: skip
        await audit_row(s, "recordFollowUpVisit", "follow_up_visit", int(vid), None)
        if guarantees is not None:
            await _guarantee(s, hid, visited_on, guarantees, int(vid))
        return int(vid)

    return await in_transaction(sm, work)


async def _guarantee(s: AsyncSession, hid: int, on: dt.date, values: dict[str, bool | None], visit_id: int | None) -> int:
    gid = await _one(
        s,
        insert(m.GuaranteeCheck)
        .values(household_id=hid, checked_on=on, visit_id=visit_id, **{k: values.get(k) for k in GUARANTEES})
        .returning(m.GuaranteeCheck.id),
    )
    await audit_row(s, "recordGuaranteeCheck", "guarantee_check", int(gid), None)
    return int(gid)


async def record_guarantee_check(
    sm: SessionMaker, *, household_id: int, checked_on: dt.date, values: dict[str, bool | None], today: dt.date
) -> int:
    """三保障和饮水安全 of a household checked on a date (null: not applicable). Answers the check's id."""
    check_not_future(checked_on, "checkedOn", today)

    async def work(s: AsyncSession) -> int:
        await _household(s, household_id)
        return await _guarantee(s, household_id, checked_on, values, None)

    return await in_transaction(sm, work)


async def report_hardship(
    sm: SessionMaker, *, household_id: int, reported_on: dt.date, risk_type: m.RiskType, notes: str | None, today: dt.date
) -> int:
    """A sudden hardship (突发严重困难) reported for a household. Answers the report's id."""
    check_not_future(reported_on, "reportedOn", today)
    notes_ = check_text(notes, "notes", max_len=2000)

    async def work(s: AsyncSession) -> int:
        await _household(s, household_id)
        rid = await _one(
            s,
            insert(m.HardshipReport)
            .values(household_id=household_id, reported_on=reported_on, risk_type=risk_type, notes=notes_)
            .returning(m.HardshipReport.id),
        )
        await audit_row(s, "reportHardship", "hardship_report", int(rid), None)
        return int(rid)

    return await in_transaction(sm, work)


async def rows_of(sm: SessionMaker, table: str, key: str, ids: Sequence[int], order: str) -> list[list[dict[str, Any]]]:
    """Batch load: each id's rows of a casework ``table`` (measures, visits, guarantee checks) by ``key``, in ``order``."""
    t = m.Base.metadata.tables[table]
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    async with sm() as s:
        for r in (await s.execute(select(t).where(t.c[key].in_(list(set(ids)))).order_by(t.c[order], t.c.id))).mappings():
            out[r[key]].append(dict(r))
    return [out[i] for i in ids]


# --------------------------------------------------------------------------- missed monitoring (防止漏测), rebound


@dataclass(frozen=True)
class Criteria:
    """The monitoring criteria of a date: line per province of the income year (yuan), drop share, hardship window."""

    on: dt.date
    income_year: int
    lines: dict[str, Decimal]
    default_line: Decimal
    drop_share: Decimal
    hardship_days: int


def criteria(settings: Any, on: dt.date, income_year: int | None) -> Criteria:
    """The criteria of ``on`` from the settings (``casework``, ``monitoring``); income year default: the year before ``on``."""
    year = income_year if income_year is not None else on.year - 1
    cw = settings.casework
    lines = {p: Decimal(by_year[year]) for p, by_year in cw.monitoring_lines.items() if year in by_year}
    return Criteria(on, year, lines, settings.monitoring.per_capita_threshold, cw.income_drop_share, cw.hardship_days)


def missed_monitoring_select(c: Criteria, *, area_code: str | None = None, grid_id: int | None = None) -> AnySelect:
    """The missed-monitoring rows (one per household meeting a criterion on ``c.on``, not under a case open then).

    Columns: the household's (``household_select``) plus per_capita, previous_per_capita, line (yuan),
    below_line, income_drop, guarantees_failing (text[] of GUARANTEES), hardship, rebound (a case of it eliminated by
    ``c.on``). A reusable row source (exports, the scorecard): order and page it as needed.
    """
    # the two years' incomes joined once (at most one row each: the key is household and year), not subqueries per use
    hi, hp = aliased(m.HouseholdIncome), aliased(m.HouseholdIncome)
    cur = hi.net_income / hi.household_size
    prev = hp.net_income / hp.household_size
    lines = sa_cast(literal(json.dumps({k: str(v) for k, v in c.lines.items()})), JSONB)
    line = func.coalesce(lines.op("->>")(func.left(H.county_code, 2)).cast(Numeric), literal(c.default_line, Numeric()))
    # the latest check by c.on (by date, then id) as a join with no later one, not a LATERAL per household: a hash join
    # over every household counts the province, an index probe per household pages
    gc, g2 = aliased(m.GuaranteeCheck), aliased(m.GuaranteeCheck)
    later = (
        select(g2.id)
        .where(
            g2.household_id == gc.household_id,
            g2.checked_on <= c.on,
            tuple_(g2.checked_on, g2.id) > tuple_(gc.checked_on, gc.id),
        )
        .exists()
    )
    failing = func.array_remove(
        sa_cast(pg_array([case((getattr(gc, k).is_(False), k), else_=None) for k in GUARANTEES]), ARRAY(String)), None
    )
    hr = m.HardshipReport
    hardship = (
        select(hr.id)
        .where(hr.household_id == H.id, hr.reported_on <= c.on, hr.reported_on > c.on - dt.timedelta(days=c.hardship_days))
        .correlate(H)
        .exists()
    )
    c2 = aliased(C)
    under_case = select(c2.id).where(c2.household_id == H.id, case_open_on(c.on, c2)).correlate(H).exists()
    eliminated = (
        select(c2.id)
        .where(c2.household_id == H.id, c2.stage == Stage.ELIMINATION_CONFIRMATION, c2.closed_on <= c.on)
        .correlate(H)
        .exists()
    )
    below = cur < line
    drop = and_(prev > 0, cur < prev * (1 - literal(c.drop_share, Numeric())))
    inner = (
        _scope(household_select(), H, None, None)
        .add_columns(
            cur.label("per_capita"),
            prev.label("previous_per_capita"),
            line.label("line"),
            func.coalesce(below, false()).label("below_line"),
            func.coalesce(drop, false()).label("income_drop"),
            failing.label("guarantees_failing"),
            hardship.label("hardship"),
            eliminated.label("rebound"),
        )
        .outerjoin(hi, and_(hi.household_id == H.id, hi.year == c.income_year, hi.household_size > 0))
        .outerjoin(hp, and_(hp.household_id == H.id, hp.year == c.income_year - 1, hp.household_size > 0))
        .outerjoin(gc, and_(gc.household_id == H.id, gc.checked_on <= c.on, not_(later)))
        .where(not_(under_case))
    )
    inner = _scope(inner, H, area_code, grid_id)
    sub = inner.subquery("missed")
    return select(sub).where(
        or_(sub.c.below_line, sub.c.income_drop, func.cardinality(sub.c.guarantees_failing) > 0, sub.c.hardship)
    )


@dataclass(frozen=True, slots=True)
class MissedRow:
    """One household missed by monitoring on a date, with its reasons (yuan per person per year)."""

    household: HouseholdRow
    per_capita_income: Decimal | None
    previous_per_capita_income: Decimal | None
    monitoring_line: Decimal
    below_line: bool
    income_drop: bool
    guarantees_failing: list[str]
    hardship: bool
    rebound: bool

    @classmethod
    def of(cls, r: AnyRow) -> MissedRow:
        """From a ``missed_monitoring_select`` row."""

        def yuan(x: Decimal | None) -> Decimal | None:
            return None if x is None else x.quantize(Decimal("0.01"))

        return cls(
            HouseholdRow.of(r),
            yuan(r.per_capita),
            yuan(r.previous_per_capita),
            cast(Decimal, yuan(r.line)),
            bool(r.below_line),
            bool(r.income_drop),
            list(r.guarantees_failing or []),
            bool(r.hardship),
            bool(r.rebound),
        )


async def missed_monitoring(
    sm: SessionMaker, args: PageArgs, c: Criteria, *, area_code: str | None, grid_id: int | None, rebound: bool | None
) -> Page[MissedRow]:
    """A page of the missed-monitoring list by household id (``rebound``: only rebounds / only never-eliminated)."""
    sub = missed_monitoring_select(c, area_code=area_code, grid_id=grid_id).subquery("m")
    q = select(sub)
    if rebound is not None:
        q = q.where(sub.c.rebound.is_(rebound))
    return await fetch_page(sm, q, sub.c.id, args, kind="household", build=MissedRow.of)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- ledgers (台账)

DIMENSIONS = ("category", "risk_type", "stage", "outcome", "measure_type")
"""The ledger's breakdowns: 监测对象类别, 风险类型, 环节, 结果 (identifying, monitored, risk_eliminated, not_included),
帮扶措施类型 (measures started by the date)."""


def ledger_population(on: dt.date, *, area_code: str | None = None, grid_id: int | None = None) -> Any:
    """SQL (CTE ``p``, materialized: computed once for every breakdown): one row per case opened by ``on`` in scope.

    Columns: case, household, persons present on ``on``, category, risk types, stage on ``on``.
    """
    st = m.HouseholdStatus
    persons = (
        select(st.members).where(st.household_id == H.id, st.valid_from <= on, st.valid_to > on).correlate(H).scalar_subquery()
    )
    stg = stage_on(on)
    q = (
        select(
            C.id.label("case_id"),
            C.household_id,
            func.coalesce(persons, 0).label("persons"),
            C.category,
            C.risk_types,
            stg.label("stage"),
        )
        .join(H, H.id == C.household_id)
        .where(C.opened_on <= on)
    )
    return _scope(q, H, area_code, grid_id).cte("p").prefix_with("MATERIALIZED")


def ledger_select(on: dt.date, *, area_code: str | None = None, grid_id: int | None = None) -> AnySelect:
    """台账 rows on ``on``: (dimension, key, households, persons), grouped in SQL; a reusable row source (exports).

    Households count distinct households; persons the members present on ``on`` of those households (each once).
    ``measure_type`` counts the households of the population with a measure of that type started by ``on``.
    """
    p = ledger_population(on, area_code=area_code, grid_id=grid_id)
    am = m.AssistanceMeasure
    parts = [
        select(literal("category").label("dimension"), sa_cast(p.c.category, String).label("key"), p.c.household_id, p.c.persons),
        select(literal("risk_type"), sa_cast(func.unnest(p.c.risk_types), String), p.c.household_id, p.c.persons),
        select(literal("stage"), sa_cast(p.c.stage, String), p.c.household_id, p.c.persons),
        select(literal("outcome"), outcome_of(sa_cast(p.c.stage, String)), p.c.household_id, p.c.persons),
        select(literal("measure_type"), sa_cast(am.type, String), p.c.household_id, p.c.persons).join(
            am, and_(am.case_id == p.c.case_id, am.start_on <= on)
        ),
    ]
    u = union_all(*parts).subquery("u")
    d = select(u.c.dimension, u.c.key, u.c.household_id, u.c.persons).distinct().subquery("d")
    return (
        select(
            d.c.dimension,
            d.c.key,
            func.count().label("households"),
            sa_cast(func.sum(d.c.persons), Integer).label("persons"),
        )
        .group_by(d.c.dimension, d.c.key)
        .order_by(d.c.dimension, d.c.key)
    )


def two_group_select(
    on: dt.date, year: int, line: Decimal, *, area_code: str | None = None, grid_id: int | None = None
) -> AnySelect:
    """The Beichuan-style two-group view (两类户: 脱贫不稳定户 and 边缘易致贫户 under a case open on ``on``).

    One row: households, persons (present on ``on``), income_down (per-capita income of ``year`` below ``year − 1``'s),
    below_line (per-capita income of ``year`` under ``line`` yuan), with_measures (a measure started by ``on``).
    """
    st, hi, hp, am = m.HouseholdStatus, aliased(m.HouseholdIncome), aliased(m.HouseholdIncome), m.AssistanceMeasure
    persons = (
        select(st.members).where(st.household_id == H.id, st.valid_from <= on, st.valid_to > on).correlate(H).scalar_subquery()
    )
    cur = (
        select(hi.net_income / hi.household_size)
        .where(hi.household_id == H.id, hi.year == year, hi.household_size > 0)
        .correlate(H)
        .scalar_subquery()
    )
    prev = (
        select(hp.net_income / hp.household_size)
        .where(hp.household_id == H.id, hp.year == year - 1, hp.household_size > 0)
        .correlate(H)
        .scalar_subquery()
    )
    measured = select(am.id).where(am.household_id == H.id, am.start_on <= on).correlate(H).exists()
    hh = select(
        H.id,
        func.coalesce(persons, 0).label("persons"),
        (cur < prev).label("down"),
        (cur < literal(line, Numeric())).label("below"),
        measured.label("measured"),
    ).where(
        select(C.id)
        .where(
            C.household_id == H.id,
            case_open_on(on),
            C.category.in_([m.MonitoringCategory.UNSTABLE_OUT_OF_POVERTY, m.MonitoringCategory.MARGINAL]),
        )
        .correlate(H)
        .exists()
    )
    sub = _scope(hh, H, area_code, grid_id).subquery("t")
    return select(
        func.count().label("households"),
        sa_cast(func.coalesce(func.sum(sub.c.persons), 0), Integer).label("persons"),
        func.count().filter(sub.c.down.is_(True)).label("income_down"),
        func.count().filter(sub.c.below.is_(True)).label("below_line"),
        func.count().filter(sub.c.measured).label("with_measures"),
    )


@dataclass(frozen=True, slots=True)
class LedgerCell:
    """One cell of a ledger: dimension, key, households, persons."""

    dimension: str
    key: str
    households: int
    persons: int


async def ledger(
    sm: SessionMaker, on: dt.date, year: int, line: Decimal, *, area_code: str | None, grid_id: int | None, k: int | None
) -> tuple[list[LedgerCell], dict[str, int | None], bool]:
    """The ledger's cells, the two-group view and whether anything was suppressed (``k``: partners' small cells)."""
    from resolvers.suppression import cell, shown_cells

    async with sm() as s:
        cells = [LedgerCell(*r) for r in await s.execute(ledger_select(on, area_code=area_code, grid_id=grid_id))]
        two = dict((await s.execute(two_group_select(on, year, line, area_code=area_code, grid_id=grid_id))).mappings().one())
    suppressed = False
    if k is not None:
        shown: list[LedgerCell] = []
        for dim in DIMENSIONS:
            kept, hidden = shown_cells([c for c in cells if c.dimension == dim], lambda c: c.households, k)
            shown += kept
            suppressed |= hidden
        cells = shown
        base = two["households"]
        two = {key: cell(v, v if key != "persons" else base, k) for key, v in two.items()}
        suppressed |= any(v is None for v in two.values())
    return cells, two, suppressed


# --------------------------------------------------------------------------- inspections and rectification

F = m.Finding
FINDING_ORDER = (m.FindingState.OPEN, m.FindingState.RECTIFYING, m.FindingState.RECTIFIED, m.FindingState.VERIFIED)
STATE_DATE = {
    m.FindingState.RECTIFYING: "rectifying_on",
    m.FindingState.RECTIFIED: "rectified_on",
    m.FindingState.VERIFIED: "verified_on",
}


async def create_inspection(
    sm: SessionMaker, *, values: dict[str, Any], spot_checks: list[dict[str, Any]], findings: list[dict[str, Any]]
) -> int:
    """An inspection of a county (admins: the province) with its spot checks and findings (state OPEN). Answers its id.

    Raises:
        InvalidInput naming the field (dates, team, a deadline before the finding, a spot check of another county).
    """
    check_period(values["starts_on"], values["ends_on"], "startsOn", "endsOn")
    team = [check_text(x, f"team[{i}]", required=True, max_len=50) for i, x in enumerate(values["team"])]
    if not team:
        raise InvalidInput("team: at least one member", field="team")
    for i, f in enumerate(findings):
        check_text(f["description"], f"findings[{i}].description", required=True, max_len=2000)
        check_text(f["unit"], f"findings[{i}].unit", required=True, max_len=200)
        check_period(f["found_on"], f["deadline"], "foundOn", f"findings[{i}].deadline")

    async def work(s: AsyncSession) -> int:
        county = await check_county(s, values["county_code"])
        iid = await _one(
            s,
            insert(m.Inspection)
            .values(
                county_code=county,
                kind=values["kind"],
                starts_on=values["starts_on"],
                ends_on=values["ends_on"],
                team=team,
                notes=values.get("notes"),
            )
            .returning(m.Inspection.id),
        )
        for i, sc in enumerate(spot_checks):
            field = f"spotChecks[{i}]"
            if (sc.get("household_id") is None) == (sc.get("site_id") is None):
                raise InvalidInput(f"{field}: a household or a site", field=field)
            if sc.get("household_id") is not None:
                code = await s.scalar(select(H.county_code).where(H.id == sc["household_id"]))
            else:
                code = await s.scalar(
                    select(func.left(m.RelocationSite.admin_code, 6)).where(m.RelocationSite.id == sc["site_id"])
                )
            if code is None:
                raise NotFound(f"{field}: no such household or site", field=field)
            if code != county:
                raise InvalidInput(f"{field}: not in county {county}", field=field)
            await s.execute(insert(m.SpotCheck).values(inspection_id=iid, **sc))
        for f in findings:
            fid = await _one(
                s, insert(F).values(inspection_id=iid, county_code=county, state=m.FindingState.OPEN, **f).returning(F.id)
            )
            await audit_row(s, "recordFinding", "finding", int(fid), None)
        await audit_row(s, "createInspection", "inspection", int(iid), None)
        return int(iid)

    return await in_transaction(sm, work)


async def advance_finding(
    sm: SessionMaker, *, finding_id: int, version: int, state: m.FindingState, on: dt.date, notes: str | None, today: dt.date
) -> int:
    """Move a finding one state on (open → rectifying → rectified by the county; → verified by the province: admins).

    Returns:
        The finding's new version.

    Raises:
        InvalidInput (out of order, a date before the previous state's), OutOfScope (a county officer verifying, or a
        finding of another county), NotFound, StaleVersion (CONFLICT).
    """
    check_not_future(on, "on", today)
    notes_ = check_text(notes, "notes", max_len=2000)

    async def work(s: AsyncSession) -> int:
        new = await claim_version(s, F, finding_id, version, "findingId", missing=_refuse_missing)
        row = (await s.execute(select(F).where(F.id == finding_id))).scalar_one()
        i = FINDING_ORDER.index(row.state)
        if i + 1 >= len(FINDING_ORDER) or FINDING_ORDER[i + 1] is not state:
            nxt = FINDING_ORDER[i + 1].name if i + 1 < len(FINDING_ORDER) else "none (verified)"
            raise InvalidInput(f"state: finding {finding_id} is {row.state.name}; the next state is {nxt}", field="state")
        viewer = viewer_of(s)
        if state is m.FindingState.VERIFIED and viewer is not None and viewer.role is not Role.ADMIN:
            raise OutOfScope("state: VERIFIED is the province's (admins') verification", field="state")
        last = max(d for d in (row.found_on, row.rectifying_on, row.rectified_on) if d is not None)
        if on < last:
            raise InvalidInput(f"on: {on} is before the finding's previous state ({last})", field="on")
        before = await claimed_image(s, "finding", finding_id, version)
        values = {"state": state, STATE_DATE[state]: on}
        if notes_:
            values["notes"] = notes_
        await s.execute(update(F).where(F.id == finding_id).values(**values).execution_options(synchronize_session=False))
        await audit_row(s, f"finding.{state.value}", "finding", finding_id, before)
        return int(new)

    return await in_transaction(sm, work)


def finding_state_on(on: Any) -> Any:
    """SQL: a finding's state on ``on`` (from its dated state changes)."""
    return case(
        (F.verified_on <= on, "verified"),
        (F.rectified_on <= on, "rectified"),
        (F.rectifying_on <= on, "rectifying"),
        else_="open",
    )


def overdue_select(on: dt.date, county_code: str | None = None) -> AnySelect:
    """Findings overdue on ``on``: found by then, deadline before ``on``, not rectified by ``on`` (a reusable row source)."""
    q = select(F.id).where(F.found_on <= on, F.deadline < on, or_(F.rectified_on.is_(None), F.rectified_on > on))
    if county_code is not None:
        q = q.where(F.county_code == area_code_prefix(county_code, "countyCode")[:6])
    return q


def overdue_counts_select(on: dt.date, county_code: str | None = None) -> AnySelect:
    """Overdue findings on ``on`` per county and kind (county_code, kind, findings), grouped in SQL."""
    ids = overdue_select(on, county_code).subquery()
    return (
        select(F.county_code, sa_cast(F.kind, String).label("kind"), func.count().label("findings"))
        .where(F.id.in_(select(ids.c.id)))
        .group_by(F.county_code, F.kind)
        .order_by(F.county_code, F.kind)
    )


async def findings(sm: SessionMaker, *, on: dt.date, county_code: str | None, overdue: bool) -> list[dict[str, Any]]:
    """Findings (the viewer's counties for officers) with their state on ``on``; ``overdue``: only the overdue ones."""
    q = select(*F.__table__.c, finding_state_on(on).label("state_on")).where(F.found_on <= on)
    if county_code is not None:
        q = q.where(F.county_code == area_code_prefix(county_code, "countyCode")[:6])
    if overdue:
        q = q.where(F.id.in_(overdue_select(on, county_code)))
    async with sm() as s:
        return [dict(r) for r in (await s.execute(q.order_by(F.deadline, F.id))).mappings()]


async def overdue_counts(sm: SessionMaker, *, on: dt.date, county_code: str | None) -> list[dict[str, Any]]:
    """``overdue_counts_select`` rows."""
    async with sm() as s:
        return [dict(r) for r in (await s.execute(overdue_counts_select(on, county_code))).mappings()]
