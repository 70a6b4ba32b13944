"""Monitoring casework in GraphQL (issue #17): grids, cases, measures, visits, missed monitoring, ledgers, inspections.

Grids (三级网格), monitoring cases (监测对象) and their stages, assistance measures (帮扶措施), follow-up visits,
三保障和饮水安全, missed monitoring (防止漏测) and rebound (风险反弹), ledgers (台账), inspections and rectification
(巡回指导、督导暗访、问题整改).

``CaseworkQuery`` and ``CaseworkMutation`` are bases of ``Query`` / ``Mutation``. Same contract as the registry: inputs
validated before anything is written, errors naming the field, one transaction and one audit row per write, row-level
security for county officers (areas) and grid workers (grids).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, cast

import strawberry

import models as m
from resolvers import casework as cw
from resolvers.access import KEEPERS, PLANNING, Role
from resolvers.errors import InvalidInput, NotFound
from resolvers.query import check_year, optional_id, require_id
from schema.enums import describe_values
from schema.permissions import IsAdmin, ReadsHouseholds, RolesOnly, WritesHouseholds, allow
from schema.scalars import GeoJSON
from schema.types import (
    AfterArg,
    Connection,
    Ctx,
    FirstArg,
    Household,
    connection_args,
    household_by_id,
    load_found,
)

for _enum, _name, _desc in (
    (
        m.RiskType,
        "RiskType",
        "风险类型 of a monitoring case (因病, 因残, 因学, 因灾, 因意外事故, 产业项目失败, 务工就业不稳, 缺劳动力, "
        "住房安全, 饮水安全, 其他)",
    ),
    (
        m.CaseSource,
        "CaseSource",
        "监测对象来源: household application (农户自主申报), grid visit (网格员排查), "
        "department data comparison (部门数据比对), hotline (热线)",
    ),
    (
        m.CaseStage,
        "CaseStage",
        "监测对象 stage: identification (申请 → 入户核实 → 村级评议 → 公示 → 乡镇审核 → 县级审定), monitored, "
        "then 风险消除 (提出 → 入户核实 → 村级评议 → 公示 → 乡镇审核 → 县级确认); NOT_INCLUDED: identification refused",
    ),
    (m.MeasureType, "MeasureType", "帮扶措施 type"),
    (m.MeasureStatus, "MeasureStatus", "帮扶措施 status (落实情况)"),
    (m.InspectionKind, "InspectionKind", "巡回指导 (TOUR) or 督导暗访 (UNANNOUNCED)"),
    (m.FindingKind, "FindingKind", "问题类型 of an inspection finding"),
    (m.FindingState, "FindingState", "问题整改: OPEN → RECTIFYING → RECTIFIED → VERIFIED"),
):
    strawberry.enum(_enum, name=_name, description=_desc)

RiskType = m.RiskType
CaseSource = m.CaseSource
CaseStage = m.CaseStage
MeasureType = m.MeasureType
MeasureStatus = m.MeasureStatus
InspectionKind = m.InspectionKind
FindingKind = m.FindingKind
FindingState = m.FindingState

describe_values(
    RiskType,
    {
        "ILLNESS": "因病: illness",
        "DISABILITY": "因残: disability",
        "SCHOOLING_COSTS": "因学: schooling costs",
        "DISASTER": "因灾: natural disaster",
        "ACCIDENT": "因意外事故: accident",
        "FAILED_INDUSTRY": "产业项目失败: failed industry project",
        "UNSTABLE_EMPLOYMENT": "务工就业不稳: unstable employment",
        "LACK_OF_LABOR": "缺劳动力: lack of labor",
        "UNSAFE_HOUSING": "住房出现安全问题: unsafe housing",
        "UNSAFE_DRINKING_WATER": "饮水安全问题: unsafe drinking water",
        "OTHER": "其他: other",
    },
)
describe_values(
    CaseSource,
    {
        "APPLICATION": "农户自主申报: the household applied",
        "GRID_VISIT": "网格员走访排查: found on a grid visit",
        "DATA_COMPARISON": "部门数据比对: department data comparison",
        "HOTLINE": "热线: hotline or petition",
    },
)
describe_values(
    CaseStage,
    {
        "APPLICATION": "申请/发现: application or finding (the case opened)",
        "HOME_VERIFICATION": "入户核实: home verification",
        "VILLAGE_APPRAISAL": "村级民主评议: village appraisal",
        "PUBLIC_NOTICE": "公示: public notice of at least N days",
        "TOWNSHIP_REVIEW": "乡镇审核: township review",
        "COUNTY_APPROVAL": "县级审定: county approval (纳入监测, monitored)",
        "ELIMINATION_PROPOSAL": "风险消除 提出: elimination proposed",
        "ELIMINATION_VERIFICATION": "风险消除 入户核实: home verification by two or more people",
        "ELIMINATION_APPRAISAL": "风险消除 村级评议: village appraisal",
        "ELIMINATION_NOTICE": "风险消除 公示: public notice of at least M days",
        "ELIMINATION_REVIEW": "风险消除 乡镇审核: township review",
        "ELIMINATION_CONFIRMATION": "风险消除 县级确认: county confirmation (closed, risk eliminated)",
        "NOT_INCLUDED": "未纳入: identification refused (closed)",
    },
)
describe_values(
    MeasureType,
    {
        "INDUSTRY": "产业帮扶: industry",
        "EMPLOYMENT": "就业帮扶: employment",
        "SKILLS_TRAINING": "技能培训: skills training",
        "PUBLIC_WELFARE_POST": "公益性岗位: public-welfare post",
        "EDUCATION": "教育帮扶: education",
        "MEDICAL": "医疗帮扶: medical",
        "HOUSING": "住房安全: housing",
        "DRINKING_WATER": "饮水安全: drinking water",
        "SOCIAL_ASSISTANCE": "低保/特困/临时救助: minimum living or social assistance",
        "MICRO_CREDIT": "小额信贷: micro-credit",
        "OTHER": "其他: other",
    },
)
describe_values(
    MeasureStatus,
    {
        "PLANNED": "计划: planned",
        "IN_PROGRESS": "实施中: in progress",
        "COMPLETED": "已完成: completed",
        "CANCELLED": "取消: cancelled",
    },
)
describe_values(InspectionKind, {"TOUR": "巡回指导: announced tour", "UNANNOUNCED": "督导暗访: unannounced visit"})
describe_values(
    FindingKind,
    {
        "MISSED_MONITORING": "漏测: a household missed by monitoring",
        "MEASURES_NOT_IN_PLACE": "帮扶措施不落实: measures not in place",
        "GUARANTEE_GAP": "三保障和饮水安全问题: a guarantee not met",
        "INCOME_NOT_STABLE": "收入不稳定: income not stable",
        "DATA_QUALITY": "信息不准: data quality",
        "FUNDS": "资金使用: use of funds",
        "OTHER": "其他: other",
    },
)
describe_values(
    FindingState,
    {
        "OPEN": "待整改: open",
        "RECTIFYING": "整改中: rectifying",
        "RECTIFIED": "已整改: rectified (by the county)",
        "VERIFIED": "已验收: verified (by the province)",
    },
)


class KeepsGrids(RolesOnly):
    """Grids and households' grids: admins, and county officers (their counties, by row-level security)."""

    message = "only admins and county officers keep grids"
    roles = KEEPERS


class ReadsInspections(RolesOnly):
    """Inspections and findings: admins and planners (all), county officers (their counties)."""

    message = "inspections are for admins, planners and county officers"
    roles = PLANNING


class RectifiesFindings(RolesOnly):
    """Moving findings on: county officers (rectification, their counties) and admins (the province's verification)."""

    message = "findings are moved on by county officers and admins"
    roles = KEEPERS


WRITES = allow(WritesHouseholds)
DATE_ON = "The date the figures are true on (default today, Asia/Shanghai)."


# --------------------------------------------------------------------------- types


@strawberry.type(
    description="网格: a cell of a county's three-level grid (1 township, 2 village or community, 3 group or building)."
)
class Grid:
    id: strawberry.ID = strawberry.field(description="Grid id.")
    county_code: str = strawberry.field(description="6-digit county code.")
    parent_id: strawberry.ID | None = strawberry.field(description="The grid one level up (null at level 1).")
    level: int = strawberry.field(description="1, 2 or 3 (bottom: households belong to level-3 grids).")
    level_name: str = strawberry.field(description="The level's name (setting casework.grid_level_names).")
    code: str = strawberry.field(description="Grid code, unique in its county.")
    name: str = strawberry.field(description="Grid name.")
    area: GeoJSON | None = strawberry.field(description="GeoJSON MultiPolygon, WGS84; null when not drawn.")
    worker: str | None = strawberry.field(description="User name of the responsible grid worker (网格员).")
    household_count: int = strawberry.field(description="Households in the grid (level 3) that you may see.")

    @classmethod
    def of(cls, r: cw.GridRow, names: list[str]) -> Grid:
        return cls(
            id=strawberry.ID(str(r.id)),
            county_code=r.county_code,
            parent_id=strawberry.ID(str(r.parent_id)) if r.parent_id else None,
            level=r.level,
            level_name=names[r.level - 1],
            code=r.code,
            name=r.name,
            area=cast(GeoJSON | None, r.area),
            worker=r.worker,
            household_count=r.households,
        )


@strawberry.type(description="One stage of a monitoring case acted on: who, when, the decision (the case's history).")
class CaseStep:
    stage: CaseStage = strawberry.field(description="The stage acted on.")
    approved: bool = strawberry.field(description="Approved (the case moved on) or refused.")
    stage_after: CaseStage = strawberry.field(description="The case's stage after this step.")
    acted_on: dt.date = strawberry.field(description="Date of the step.")
    user_name: str = strawberry.field(description="Who acted.")
    actor_level: str = strawberry.field(description="At what level: grid_worker, village, township, county or admin.")
    participants: list[str] = strawberry.field(description="People present (a home verification's verifiers).")
    notice_from: dt.date | None = strawberry.field(description="A public notice's first day (公示).")
    notice_to: dt.date | None = strawberry.field(description="A public notice's last day.")
    notes: str | None = strawberry.field(description="Notes.")
    at: dt.datetime = strawberry.field(description="When it was recorded.")


@strawberry.type(description="帮扶措施: an assistance measure of a monitoring case.")
class AssistanceMeasure:
    id: strawberry.ID = strawberry.field(description="Measure id.")
    type: MeasureType = strawberry.field(description="Type.")
    responsible: str = strawberry.field(description="Responsible unit or person (责任单位/帮扶责任人).")
    funds: Decimal | None = strawberry.field(description="Funds, yuan.")
    start_on: dt.date = strawberry.field(description="Start.")
    end_on: dt.date | None = strawberry.field(description="End.")
    status: MeasureStatus = strawberry.field(description="Status.")
    facility_id: strawberry.ID | None = strawberry.field(description="The facility behind it, if any.")
    project_id: strawberry.ID | None = strawberry.field(description="The cooperation project behind it, if any.")
    notes: str | None = strawberry.field(description="Notes.")


@strawberry.type(description="走访: a follow-up visit to a household.")
class FollowUpVisit:
    id: strawberry.ID = strawberry.field(description="Visit id.")
    visited_on: dt.date = strawberry.field(description="Date.")
    user_name: str = strawberry.field(description="The grid worker (or officer) who visited.")
    findings: str = strawberry.field(description="What was found.")
    per_capita_income: Decimal | None = strawberry.field(description="Per-capita income checked, yuan per person-year.")


def _pick(cls: Any, row: dict[str, Any]) -> Any:
    values = {k: row[k] for k in cls.__annotations__ if k in row}
    for k in ("id", "facility_id", "project_id"):
        if k in values and values[k] is not None:
            values[k] = strawberry.ID(str(values[k]))
    return cls(**values)


@strawberry.type(description="监测对象: a household's monitoring case, from identification to risk elimination (风险消除).")
class MonitoringCase:
    id: strawberry.ID = strawberry.field(description="Case id.")
    category: m.MonitoringCategory = strawberry.field(description="监测对象类别.")
    risk_types: list[RiskType] = strawberry.field(description="风险类型, one or more.")
    source: CaseSource = strawberry.field(description="How the case came to be.")
    opened_on: dt.date = strawberry.field(description="Date of the application or finding.")
    stage: CaseStage = strawberry.field(description="Its current stage (the last one completed).")
    stage_on: dt.date = strawberry.field(description="Date of its current stage.")
    included_on: dt.date | None = strawberry.field(description="Date of the county's approval (纳入监测).")
    closed_on: dt.date | None = strawberry.field(description="Date it closed: risk eliminated, or not included.")
    notes: str | None = strawberry.field(description="Notes.")
    version: int = strawberry.field(description="Row version; every step carries it (optimistic locking).")
    _household_id: strawberry.Private[int]

    @classmethod
    def of(cls, r: cw.CaseRow) -> MonitoringCase:
        return cls(
            id=strawberry.ID(str(r.id)),
            category=r.category,
            risk_types=list(r.risk_types),
            source=r.source,
            opened_on=r.opened_on,
            stage=r.stage,
            stage_on=r.stage_on,
            included_on=r.included_on,
            closed_on=r.closed_on,
            notes=r.notes,
            version=r.version,
            _household_id=r.household_id,
        )

    @strawberry.field(description="The household.")
    async def household(self, info: Ctx) -> Household:
        return await household_by_id(info, self._household_id)

    @strawberry.field(description="The stage to act on next (null when closed).")
    def next_stage(self) -> CaseStage | None:
        order = list(m.CaseStage)[:12]
        if self.stage in (m.CaseStage.ELIMINATION_CONFIRMATION, m.CaseStage.NOT_INCLUDED):
            return None
        return order[order.index(self.stage) + 1]

    @strawberry.field(description="Every step, in the order acted on (the history; never deleted).")
    async def steps(self, info: Ctx) -> list[CaseStep]:
        rows = await info.context.loaders.case_steps.load(int(self.id))
        return [CaseStep(**{f: getattr(r, f) for f in CaseStep.__annotations__}) for r in rows]

    @strawberry.field(description="帮扶措施 of the case, by start date.")
    async def measures(self, info: Ctx) -> list[AssistanceMeasure]:
        return [_pick(AssistanceMeasure, r) for r in await info.context.loaders.case_measures.load(int(self.id))]

    @strawberry.field(description="Follow-up visits recorded under the case, by date.")
    async def visits(self, info: Ctx) -> list[FollowUpVisit]:
        return [_pick(FollowUpVisit, r) for r in await info.context.loaders.case_visits.load(int(self.id))]


@strawberry.type(
    description="A household meeting a monitoring criterion on the date but under no open case (防止漏测), with its reasons."
)
class MissedHousehold:
    household: Household = strawberry.field(description="The household.")
    per_capita_income: Decimal | None = strawberry.field(description="Per-capita net income of the income year, yuan.")
    previous_per_capita_income: Decimal | None = strawberry.field(description="Of the year before, yuan.")
    monitoring_line: Decimal = strawberry.field(description="监测线 of the income year and the household's province, yuan.")
    below_line: bool = strawberry.field(description="Per-capita income under the monitoring line.")
    income_drop: bool = strawberry.field(description="Per-capita income down by more than casework.income_drop_share.")
    guarantees_failing: list[str] = strawberry.field(
        description="三保障和饮水安全 failing at its latest check: education, medical, housing, drinking_water."
    )
    hardship: bool = strawberry.field(description="A sudden hardship (突发严重困难) reported within casework.hardship_days.")
    rebound: bool = strawberry.field(description="风险反弹: a case of the household had its risk eliminated before.")

    @classmethod
    def of(cls, r: cw.MissedRow) -> MissedHousehold:
        return cls(
            household=Household.from_row(r.household),
            **{f: getattr(r, f) for f in cw.MissedRow.__slots__ if f not in ("household", "monitoring_line")},  # type: ignore[attr-defined]
            monitoring_line=r.monitoring_line,
        )


@strawberry.type(description="One cell of a ledger: households and persons of one key of one breakdown.")
class LedgerCell:
    dimension: str = strawberry.field(description="category, risk_type, stage, outcome or measure_type.")
    key: str = strawberry.field(
        description="The value (e.g. illness; outcome: identifying, monitored, risk_eliminated, not_included)."
    )
    households: int = strawberry.field(description="Households.")
    persons: int = strawberry.field(description="Their members present on the date.")


@strawberry.type(description="The Beichuan-style two-group view: 脱贫不稳定户 and 边缘易致贫户 under an open case.")
class TwoGroupView:
    households: int | None = strawberry.field(description="Households.")
    persons: int | None = strawberry.field(description="Members present on the date.")
    income_down: int | None = strawberry.field(
        description="Households whose per-capita income of the year fell below the year before's."
    )
    below_line: int | None = strawberry.field(
        description="Households under the per-capita line (monitoring.per_capita_threshold, 10,000 yuan)."
    )
    with_measures: int | None = strawberry.field(description="Households with an assistance measure started by the date.")


@strawberry.type(
    description="台账: monitoring cases of an area or grid on a date, by category, risk type, stage, outcome and measure type."
)
class MonitoringLedger:
    on: dt.date = strawberry.field(description="The date.")
    year: int = strawberry.field(description="The income year of the two-group view.")
    cells: list[LedgerCell] = strawberry.field(description="The breakdowns' cells.")
    two_groups: TwoGroupView = strawberry.field(description="The two-group view.")
    suppressed: bool = strawberry.field(description="Partner viewers: cells of fewer than k households left out or null.")


@strawberry.type(description="问题: an inspection finding and its rectification (整改), with dated states.")
class Finding:
    id: strawberry.ID = strawberry.field(description="Finding id.")
    inspection_id: strawberry.ID = strawberry.field(description="The inspection.")
    county_code: str = strawberry.field(description="County.")
    kind: FindingKind = strawberry.field(description="Kind.")
    description: str = strawberry.field(description="What was found.")
    unit: str = strawberry.field(description="The county unit responsible for rectification.")
    found_on: dt.date = strawberry.field(description="Date found.")
    deadline: dt.date = strawberry.field(description="Rectification deadline.")
    state: FindingState = strawberry.field(description="Its state now.")
    state_on: FindingState = strawberry.field(description="Its state on the date asked.")
    rectifying_on: dt.date | None = strawberry.field(description="Rectification began.")
    rectified_on: dt.date | None = strawberry.field(description="Rectified.")
    verified_on: dt.date | None = strawberry.field(description="Verified by the province.")
    version: int = strawberry.field(description="Row version (optimistic locking).")

    @classmethod
    def of(cls, r: dict[str, Any]) -> Finding:
        fields = {k: r[k] for k in cls.__annotations__ if k in r and k not in ("id", "inspection_id", "state_on")}
        return cls(
            id=strawberry.ID(str(r["id"])),
            inspection_id=strawberry.ID(str(r["inspection_id"])),
            state_on=m.FindingState(r["state_on"]),
            **fields,
        )


@strawberry.type(description="Overdue findings of one county and kind.")
class OverdueCount:
    county_code: str = strawberry.field(description="County.")
    kind: FindingKind = strawberry.field(description="Kind.")
    findings: int = strawberry.field(description="Findings overdue on the date.")


# --------------------------------------------------------------------------- query


def _grid_names(info: Ctx) -> list[str]:
    return list(info.context.settings.casework.grid_level_names)


@strawberry.type
class CaseworkQuery:
    @strawberry.field(description="Grids (三级网格) you may see, by county and code.", extensions=allow(ReadsHouseholds))
    async def grids(
        self,
        info: Ctx,
        county_code: Annotated[str | None, strawberry.argument(description="6-digit county code.")] = None,
        parent_id: Annotated[strawberry.ID | None, strawberry.argument(description="Only the grids under this one.")] = None,
        level: Annotated[int | None, strawberry.argument(description="Only grids of this level (1..3).")] = None,
    ) -> list[Grid]:
        if level is not None and level not in (1, 2, 3):
            raise InvalidInput("level: 1, 2 or 3", field="level")
        rows = await cw.grids(
            info.context.sessionmaker, county_code=county_code, parent_id=optional_id(parent_id, "parentId"), level=level
        )
        return [Grid.of(r, _grid_names(info)) for r in rows]

    @strawberry.field(
        description="A monitoring case (监测对象) by id; null when it does not exist or is not yours.",
        extensions=allow(ReadsHouseholds),
    )
    async def monitoring_case(
        self, info: Ctx, id: Annotated[strawberry.ID, strawberry.argument(description="Case id.")]
    ) -> MonitoringCase | None:
        row = await info.context.loaders.case.load(require_id(id, "id"))
        return MonitoringCase.of(row) if row else None

    @strawberry.field(
        description="Monitoring cases by id: under an area or grid, of a household, open on a date, at a stage.",
        extensions=allow(ReadsHouseholds),
    )
    async def monitoring_cases(
        self,
        info: Ctx,
        area_code: Annotated[str | None, strawberry.argument(description="Admin area code (prefix).")] = None,
        grid_id: Annotated[strawberry.ID | None, strawberry.argument(description="A grid and every grid below it.")] = None,
        open_on: Annotated[dt.date | None, strawberry.argument(description="Only cases open on this date.")] = None,
        stage: Annotated[CaseStage | None, strawberry.argument(description="Only cases at this stage now.")] = None,
        first: FirstArg = None,
        after: AfterArg = None,
    ) -> Connection[MonitoringCase]:
        args = connection_args(info, first, after, kind="case")
        page = await cw.list_cases(
            info.context.sessionmaker, args, area_code=area_code, grid_id=optional_id(grid_id, "gridId"),
            open_on=info.context.as_of(open_on, "openOn") if open_on else None, stage=stage,
        )  # fmt: skip
        return Connection.of(page, MonitoringCase.of)

    @strawberry.field(
        description="防止漏测: households under no case open on `on` that meet a monitoring criterion (income under the "
        "monitoring line of `incomeYear`, income drop, a failing guarantee, a sudden hardship), each with its reasons; "
        "`rebound`: 风险反弹 (a case of the household was eliminated before). By household id.",
        extensions=allow(ReadsHouseholds),
    )
    async def missed_monitoring(
        self,
        info: Ctx,
        on: Annotated[dt.date | None, strawberry.argument(description=DATE_ON)] = None,
        income_year: Annotated[
            int | None, strawberry.argument(description="Income year (default: the year before `on`).")
        ] = None,
        area_code: Annotated[str | None, strawberry.argument(description="Admin area code (prefix).")] = None,
        grid_id: Annotated[strawberry.ID | None, strawberry.argument(description="A grid and every grid below it.")] = None,
        rebound: Annotated[bool | None, strawberry.argument(description="true: only rebounds; false: only the others.")] = None,
        first: FirstArg = None,
        after: AfterArg = None,
    ) -> Connection[MissedHousehold]:
        args = connection_args(info, first, after, kind="household")
        if income_year is not None:
            check_year(income_year, "incomeYear")
        c = cw.criteria(info.context.settings, info.context.as_of(on, "on"), income_year)
        page = await cw.missed_monitoring(
            info.context.sessionmaker, args, c, area_code=area_code, grid_id=optional_id(grid_id, "gridId"), rebound=rebound
        )
        return Connection.of(page, MissedHousehold.of)

    @strawberry.field(
        description="台账 of an area or a grid on `on`: households and persons by category, risk type, stage, outcome and "
        "measure type, and the two-group view. Partners: their paired counties only, small cells suppressed."
    )
    async def monitoring_ledger(
        self,
        info: Ctx,
        on: Annotated[dt.date | None, strawberry.argument(description=DATE_ON)] = None,
        year: Annotated[
            int | None, strawberry.argument(description="Income year of the two-group view (default: the year before `on`).")
        ] = None,
        area_code: Annotated[str | None, strawberry.argument(description="Admin area code.")] = None,
        grid_id: Annotated[strawberry.ID | None, strawberry.argument(description="A grid (with every grid below it).")] = None,
    ) -> MonitoringLedger:
        v = info.context.viewer
        gid = optional_id(grid_id, "gridId")
        if (area_code is None) == (gid is None):
            raise InvalidInput("areaCode: give areaCode or gridId", field="areaCode")
        if v.role is Role.PARTNER and (gid is not None or area_code not in v.paired_counties):
            from resolvers.errors import OutOfScope

            raise OutOfScope("areaCode: partner viewers get the ledgers of their paired counties only", field="areaCode")
        d = info.context.as_of(on, "on")
        y = year if year is not None else d.year - 1
        check_year(y)
        cells, two, suppressed = await cw.ledger(
            info.context.aggregate_sessionmaker, d, y, info.context.settings.monitoring.per_capita_threshold,
            area_code=area_code, grid_id=gid, k=info.context.suppression_k,
        )  # fmt: skip
        return MonitoringLedger(
            on=d, year=y,
            cells=[LedgerCell(dimension=c.dimension, key=c.key, households=c.households, persons=c.persons) for c in cells],
            two_groups=TwoGroupView(**two), suppressed=suppressed,
        )  # fmt: skip

    @strawberry.field(
        description="Inspection findings found by `on`, with their state on `on`; `overdue`: only those overdue then.",
        extensions=allow(ReadsInspections),
    )
    async def findings(
        self,
        info: Ctx,
        on: Annotated[dt.date | None, strawberry.argument(description=DATE_ON)] = None,
        county_code: Annotated[str | None, strawberry.argument(description="6-digit county code.")] = None,
        overdue: Annotated[
            bool, strawberry.argument(description="Only findings past their deadline and not rectified on `on`.")
        ] = False,
    ) -> list[Finding]:
        rows = await cw.findings(
            info.context.sessionmaker, on=info.context.as_of(on, "on"), county_code=county_code, overdue=overdue
        )
        return [Finding.of(r) for r in rows]

    @strawberry.field(description="Overdue findings on `on` per county and kind.", extensions=allow(ReadsInspections))
    async def overdue_finding_counts(
        self,
        info: Ctx,
        on: Annotated[dt.date | None, strawberry.argument(description=DATE_ON)] = None,
        county_code: Annotated[str | None, strawberry.argument(description="6-digit county code.")] = None,
    ) -> list[OverdueCount]:
        rows = await cw.overdue_counts(info.context.sessionmaker, on=info.context.as_of(on, "on"), county_code=county_code)
        return [OverdueCount(county_code=r["county_code"], kind=m.FindingKind(r["kind"]), findings=r["findings"]) for r in rows]


# --------------------------------------------------------------------------- mutations


@strawberry.input(description="A new grid: top level under a county, or one level below a parent (three levels).")
class CreateGridInput:
    code: str = strawberry.field(description="Grid code, unique in its county (1..40 characters).")
    name: str = strawberry.field(description="Name (1..100 characters).")
    county_code: str | None = strawberry.field(default=None, description="County (6 digits), for a level-1 grid.")
    parent_id: strawberry.ID | None = strawberry.field(default=None, description="The grid one level up.")
    area: GeoJSON | None = strawberry.field(default=None, description="GeoJSON Polygon or MultiPolygon, WGS84.")
    worker_name: str | None = strawberry.field(
        default=None, description="User name of the responsible grid worker (role GRID_WORKER)."
    )


@strawberry.input(description="A monitoring case opened on an application or a finding (stage APPLICATION).")
class OpenMonitoringCaseInput:
    household_id: strawberry.ID = strawberry.field(description="The household.")
    category: m.MonitoringCategory = strawberry.field(description="监测对象类别.")
    risk_types: list[RiskType] = strawberry.field(description="风险类型, at least one.")
    source: CaseSource = strawberry.field(description="Source.")
    opened_on: dt.date = strawberry.field(description="Date of the application or finding (not in the future).")
    notes: str | None = strawberry.field(default=None, description="Notes (<= 2000 characters).")


@strawberry.input(description="Acting on a case's next stage (approve or refuse).")
class ActOnCaseInput:
    case_id: strawberry.ID = strawberry.field(description="The case.")
    version: int = strawberry.field(description="The case's `version` as you last read it; stale → CONFLICT, nothing written.")
    stage: CaseStage = strawberry.field(description="The stage acted on: must be the case's `nextStage`.")
    acted_on: dt.date = strawberry.field(description="Date (not before the case's last step, not in the future).")
    approved: bool = strawberry.field(
        default=True, description="false: refused (identification → NOT_INCLUDED; elimination → monitored again)."
    )
    participants: list[str] = strawberry.field(
        default_factory=list, description="People present; ELIMINATION_VERIFICATION needs two or more."
    )
    notice_from: dt.date | None = strawberry.field(
        default=None, description="PUBLIC_NOTICE / ELIMINATION_NOTICE: first day of the notice."
    )
    notice_to: dt.date | None = strawberry.field(
        default=None, description="Last day (at least N / M days: casework.public_notice_days, elimination_notice_days)."
    )
    notes: str | None = strawberry.field(default=None, description="Notes (<= 2000 characters).")


@strawberry.input(description="A 帮扶措施 of a case.")
class AssistanceMeasureInput:
    case_id: strawberry.ID = strawberry.field(description="The case.")
    type: MeasureType = strawberry.field(description="Type.")
    responsible: str = strawberry.field(description="Responsible unit or person.")
    start_on: dt.date = strawberry.field(description="Start.")
    status: MeasureStatus = strawberry.field(default=MeasureStatus.PLANNED, description="Status (default PLANNED).")
    funds: Decimal | None = strawberry.field(default=None, description="Funds, yuan (>= 0, 2 decimals).")
    end_on: dt.date | None = strawberry.field(default=None, description="End (not before start).")
    facility_id: strawberry.ID | None = strawberry.field(default=None, description="The facility behind it.")
    project_id: strawberry.ID | None = strawberry.field(default=None, description="The cooperation project behind it.")
    notes: str | None = strawberry.field(default=None, description="Notes.")


@strawberry.input(description="三保障和饮水安全 as checked; null: not applicable (e.g. no child of compulsory-school age).")
class GuaranteesInput:
    education: bool | None = strawberry.field(
        default=None, description="义务教育: every child of compulsory-school age in school."
    )
    medical: bool | None = strawberry.field(default=None, description="基本医疗: every member insured.")
    housing: bool | None = strawberry.field(default=None, description="住房安全.")
    drinking_water: bool | None = strawberry.field(default=None, description="饮水安全.")


@strawberry.input(description="A follow-up visit (走访) by you.")
class FollowUpVisitInput:
    visited_on: dt.date = strawberry.field(description="Date (not in the future).")
    findings: str = strawberry.field(description="What you found (1..4000 characters).")
    household_id: strawberry.ID | None = strawberry.field(default=None, description="The household (or give caseId).")
    case_id: strawberry.ID | None = strawberry.field(default=None, description="The case the visit follows up.")
    per_capita_income: Decimal | None = strawberry.field(
        default=None, description="Per-capita income checked, yuan per person-year."
    )
    guarantees: GuaranteesInput | None = strawberry.field(default=None, description="The guarantee check of that day.")


@strawberry.input(description="A finding of an inspection.")
class FindingInput:
    kind: FindingKind = strawberry.field(description="Kind.")
    description: str = strawberry.field(description="What was found.")
    unit: str = strawberry.field(description="County unit assigned to rectify it.")
    found_on: dt.date = strawberry.field(description="Date found.")
    deadline: dt.date = strawberry.field(description="Rectification deadline (not before foundOn).")


@strawberry.input(description="A household or site visited by an inspection.")
class SpotCheckInput:
    visited_on: dt.date = strawberry.field(description="Date.")
    household_id: strawberry.ID | None = strawberry.field(default=None, description="A household (or siteId).")
    site_id: strawberry.ID | None = strawberry.field(default=None, description="A relocation site.")


@strawberry.input(description="An inspection of a county (巡回指导 / 督导暗访) by the province.")
class CreateInspectionInput:
    county_code: str = strawberry.field(description="County (6 digits).")
    kind: InspectionKind = strawberry.field(description="Kind.")
    starts_on: dt.date = strawberry.field(description="First day.")
    ends_on: dt.date = strawberry.field(description="Last day.")
    team: list[str] = strawberry.field(description="Team members.")
    spot_checks: list[SpotCheckInput] = strawberry.field(default_factory=list, description="Households and sites visited.")
    findings: list[FindingInput] = strawberry.field(default_factory=list, description="Findings (state OPEN).")
    notes: str | None = strawberry.field(default=None, description="Notes.")


async def _case(info: Ctx, case_id: int) -> MonitoringCase:
    info.context.fresh_loaders()
    return await load_found(info.context.loaders.case, case_id, MonitoringCase.of, "monitoring case")


@strawberry.type
class CaseworkMutation:
    @strawberry.mutation(description="Creates a grid (admins; county officers in their counties).", extensions=allow(KeepsGrids))
    async def create_grid(
        self, info: Ctx, input: Annotated[CreateGridInput, strawberry.argument(description="The grid.")]
    ) -> Grid:
        gid = await cw.create_grid(
            info.context.sessionmaker, county_code=input.county_code, parent_id=optional_id(input.parent_id, "parentId"),
            code=input.code, name=input.name, area=input.area, worker_name=input.worker_name,
            max_vertices=info.context.settings.features.max_vertices,
        )  # fmt: skip
        row = (await cw.grids_by_ids(info.context.sessionmaker, [gid]))[0]
        if row is None:
            raise NotFound(f"grid {gid} vanished")
        return Grid.of(row, _grid_names(info))

    @strawberry.mutation(
        description="Puts households into a bottom-level grid (and optionally names its grid worker); answers how many moved.",
        extensions=allow(KeepsGrids),
    )
    async def assign_households_to_grid(
        self,
        info: Ctx,
        grid_id: Annotated[strawberry.ID, strawberry.argument(description="A bottom-level (3) grid.")],
        household_ids: Annotated[list[strawberry.ID], strawberry.argument(description="Households of the grid's county.")],
        worker_name: Annotated[
            str | None, strawberry.argument(description="User name of the grid's worker (GRID_WORKER).")
        ] = None,
    ) -> int:
        ids = [require_id(h, f"householdIds[{i}]") for i, h in enumerate(household_ids)]
        return await cw.assign_households(
            info.context.sessionmaker, grid_id=require_id(grid_id, "gridId"), household_ids=ids, worker_name=worker_name
        )

    @strawberry.mutation(description="Opens a monitoring case (监测对象) at stage APPLICATION.", extensions=WRITES)
    async def open_monitoring_case(
        self, info: Ctx, input: Annotated[OpenMonitoringCaseInput, strawberry.argument(description="The case.")]
    ) -> MonitoringCase:
        cid = await cw.open_case(
            info.context.sessionmaker, household_id=require_id(input.household_id, "householdId"), category=input.category,
            risk_types=input.risk_types, source=input.source, opened_on=input.opened_on, notes=input.notes,
            today=info.context.today(), actors=info.context.settings.casework.stage_actors,
        )  # fmt: skip
        return await _case(info, cid)

    @strawberry.mutation(
        description="Acts on a case's next stage: no stage skipped, each by its level (casework.stage_actors); of two "
        "concurrent approvals of the same stage one wins, the other answers CONFLICT.",
        extensions=WRITES,
    )
    async def act_on_monitoring_case(
        self, info: Ctx, input: Annotated[ActOnCaseInput, strawberry.argument(description="The step.")]
    ) -> MonitoringCase:
        cwk = info.context.settings.casework
        cid = require_id(input.case_id, "caseId")
        await cw.act_on_case(
            info.context.sessionmaker, case_id=cid, version=input.version, stage=input.stage, approved=input.approved,
            acted_on=input.acted_on, notes=input.notes, participants=input.participants, notice_from=input.notice_from,
            notice_to=input.notice_to, today=info.context.today(), actors=cwk.stage_actors,
            notice_days={
                m.CaseStage.PUBLIC_NOTICE: cwk.public_notice_days,
                m.CaseStage.ELIMINATION_NOTICE: cwk.elimination_notice_days,
            },
        )  # fmt: skip
        return await _case(info, cid)

    @strawberry.mutation(description="Records a 帮扶措施 of a case.", extensions=WRITES)
    async def record_assistance_measure(
        self, info: Ctx, input: Annotated[AssistanceMeasureInput, strawberry.argument(description="The measure.")]
    ) -> MonitoringCase:
        cid = require_id(input.case_id, "caseId")
        values = {
            "type": input.type, "responsible": input.responsible, "funds": input.funds, "start_on": input.start_on,
            "end_on": input.end_on, "status": input.status, "facility_id": optional_id(input.facility_id, "facilityId"),
            "project_id": optional_id(input.project_id, "projectId"), "notes": input.notes,
        }  # fmt: skip
        await cw.record_measure(info.context.sessionmaker, case_id=cid, values=values, today=info.context.today())
        return await _case(info, cid)

    @strawberry.mutation(
        description="Records your follow-up visit (and the guarantee check of that day); answers its id.", extensions=WRITES
    )
    async def record_follow_up_visit(
        self, info: Ctx, input: Annotated[FollowUpVisitInput, strawberry.argument(description="The visit.")]
    ) -> strawberry.ID:
        vid = await cw.record_visit(
            info.context.sessionmaker, household_id=optional_id(input.household_id, "householdId"),
            case_id=optional_id(input.case_id, "caseId"), visited_on=input.visited_on, findings=input.findings,
            per_capita_income=input.per_capita_income, guarantees=vars(input.guarantees) if input.guarantees else None,
            today=info.context.today(),
        )  # fmt: skip
        return strawberry.ID(str(vid))

    @strawberry.mutation(description="Records a household's 三保障和饮水安全 check on a date; answers its id.", extensions=WRITES)
    async def record_guarantee_check(
        self,
        info: Ctx,
        household_id: Annotated[strawberry.ID, strawberry.argument(description="The household.")],
        checked_on: Annotated[dt.date, strawberry.argument(description="Date of the check (not in the future).")],
        guarantees: Annotated[GuaranteesInput, strawberry.argument(description="What was found.")],
    ) -> strawberry.ID:
        gid = await cw.record_guarantee_check(
            info.context.sessionmaker, household_id=require_id(household_id, "householdId"), checked_on=checked_on,
            values=vars(guarantees), today=info.context.today(),
        )  # fmt: skip
        return strawberry.ID(str(gid))

    @strawberry.mutation(
        description="Reports a sudden hardship (突发严重困难) of a household; answers its id.", extensions=WRITES
    )
    async def report_hardship(
        self,
        info: Ctx,
        household_id: Annotated[strawberry.ID, strawberry.argument(description="The household.")],
        reported_on: Annotated[dt.date, strawberry.argument(description="Date reported (not in the future).")],
        risk_type: Annotated[RiskType, strawberry.argument(description="What happened.")],
        notes: Annotated[str | None, strawberry.argument(description="Notes (<= 2000 characters).")] = None,
    ) -> strawberry.ID:
        rid = await cw.report_hardship(
            info.context.sessionmaker, household_id=require_id(household_id, "householdId"), reported_on=reported_on,
            risk_type=risk_type, notes=notes, today=info.context.today(),
        )  # fmt: skip
        return strawberry.ID(str(rid))

    @strawberry.mutation(
        description="Records an inspection with its spot checks and findings (the province: admins); answers its id.",
        extensions=allow(IsAdmin),
    )
    async def create_inspection(
        self, info: Ctx, input: Annotated[CreateInspectionInput, strawberry.argument(description="The inspection.")]
    ) -> strawberry.ID:
        spots = [
            {
                "household_id": optional_id(x.household_id, f"spotChecks[{i}].householdId"),
                "site_id": optional_id(x.site_id, f"spotChecks[{i}].siteId"),
                "visited_on": x.visited_on,
            }
            for i, x in enumerate(input.spot_checks)
        ]
        finds = [
            {"kind": f.kind, "description": f.description, "unit": f.unit, "found_on": f.found_on, "deadline": f.deadline}
            for f in input.findings
        ]
        values = {
            "county_code": input.county_code,
            "kind": input.kind,
            "starts_on": input.starts_on,
            "ends_on": input.ends_on,
            "team": input.team,
            "notes": input.notes,
        }
        iid = await cw.create_inspection(info.context.sessionmaker, values=values, spot_checks=spots, findings=finds)
        return strawberry.ID(str(iid))

    @strawberry.mutation(
        description="Moves a finding one state on: RECTIFYING, RECTIFIED (county officers, their counties), VERIFIED (admins).",
        extensions=allow(RectifiesFindings),
    )
    async def advance_finding(
        self,
        info: Ctx,
        finding_id: Annotated[strawberry.ID, strawberry.argument(description="The finding.")],
        version: Annotated[
            int, strawberry.argument(description="The finding's `version` as you last read it (stale: CONFLICT).")
        ],
        state: Annotated[FindingState, strawberry.argument(description="The next state.")],
        on: Annotated[
            dt.date, strawberry.argument(description="Date of the change (not before the previous state's, not in the future).")
        ],
        notes: Annotated[str | None, strawberry.argument(description="Notes.")] = None,
    ) -> Finding:
        fid = require_id(finding_id, "findingId")
        await cw.advance_finding(
            info.context.sessionmaker,
            finding_id=fid,
            version=version,
            state=state,
            on=on,
            notes=notes,
            today=info.context.today(),
        )
        rows = [r for r in await cw.findings(info.context.sessionmaker, on=on, county_code=None, overdue=False) if r["id"] == fid]
        return Finding.of(rows[0])
