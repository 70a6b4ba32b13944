"""Grids and monitoring casework (issue #17, DESIGN.md §7): 三级网格, 监测对象, 帮扶措施, 走访, 三保障, 巡回指导.

Dates are ``date`` (Asia/Shanghai days); money ``numeric(14,2)`` yuan. Cases, their stage steps and findings are never
deleted (a trigger refuses it: migrations/sql/casework.sql); every write leaves an ``audit_log`` row.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from models import MONEY, Base, MonitoringCategory, _enum, _geom

__all__ = [
    "AssistanceMeasure",
    "CaseSource",
    "CaseStage",
    "CaseStep",
    "CaseTransition",
    "Finding",
    "FindingKind",
    "FindingState",
    "FollowUpVisit",
    "Grid",
    "GuaranteeCheck",
    "HardshipReport",
    "Inspection",
    "InspectionKind",
    "MeasureStatus",
    "MeasureType",
    "MonitoringCase",
    "RiskType",
    "SpotCheck",
]


class RiskType(enum.Enum):
    """风险类型: why a household is at risk of returning to poverty."""

    ILLNESS = "illness"  # 因病
    DISABILITY = "disability"  # 因残
    SCHOOLING_COSTS = "schooling_costs"  # 因学
    DISASTER = "disaster"  # 因灾
    ACCIDENT = "accident"  # 因意外事故
    FAILED_INDUSTRY = "failed_industry"  # 产业项目失败
    UNSTABLE_EMPLOYMENT = "unstable_employment"  # 务工就业不稳
    LACK_OF_LABOR = "lack_of_labor"  # 缺劳动力
    UNSAFE_HOUSING = "unsafe_housing"  # 住房出现安全问题
    UNSAFE_DRINKING_WATER = "unsafe_drinking_water"  # 饮水安全问题
    OTHER = "other"  # 其他


class CaseSource(enum.Enum):
    """How a case came to be (监测对象来源)."""

    APPLICATION = "application"  # 农户自主申报
    GRID_VISIT = "grid_visit"  # 网格员走访排查
    DATA_COMPARISON = "data_comparison"  # 部门数据比对预警
    HOTLINE = "hotline"  # 热线 / 信访


class CaseStage(enum.Enum):
    """A monitoring case's stages, in order (识别 → 监测帮扶 → 风险消除); ``not_included`` ends a refused identification.

    The stage a case is *at* is the last one completed; the allowed next ones are the table ``case_transition``
    (migrations/sql/casework.sql). A case at ``county_approval`` (or in an unfinished elimination) is monitored (纳入监测).
    """

    APPLICATION = "application"  # 农户申请 / 排查发现
    HOME_VERIFICATION = "home_verification"  # 入户核实
    VILLAGE_APPRAISAL = "village_appraisal"  # 村级民主评议
    PUBLIC_NOTICE = "public_notice"  # 村级公示 (>= N days)
    TOWNSHIP_REVIEW = "township_review"  # 乡镇审核
    COUNTY_APPROVAL = "county_approval"  # 县级审定: 纳入监测
    ELIMINATION_PROPOSAL = "elimination_proposal"  # 风险消除: 提出
    ELIMINATION_VERIFICATION = "elimination_verification"  # 入户核实 (>= 2 people)
    ELIMINATION_APPRAISAL = "elimination_appraisal"  # 村级民主评议
    ELIMINATION_NOTICE = "elimination_notice"  # 村级公示 (>= M days)
    ELIMINATION_REVIEW = "elimination_review"  # 乡镇审核
    ELIMINATION_CONFIRMATION = "elimination_confirmation"  # 县级确认: 风险消除
    NOT_INCLUDED = "not_included"  # 未纳入 (identification refused)


class MeasureType(enum.Enum):
    """帮扶措施 type."""

    INDUSTRY = "industry"  # 产业帮扶
    EMPLOYMENT = "employment"  # 就业帮扶
    SKILLS_TRAINING = "skills_training"  # 技能培训
    PUBLIC_WELFARE_POST = "public_welfare_post"  # 公益性岗位
    EDUCATION = "education"  # 教育帮扶
    MEDICAL = "medical"  # 医疗帮扶
    HOUSING = "housing"  # 住房安全
    DRINKING_WATER = "drinking_water"  # 饮水安全
    SOCIAL_ASSISTANCE = "social_assistance"  # 低保 / 特困 / 临时救助
    MICRO_CREDIT = "micro_credit"  # 小额信贷
    OTHER = "other"


class MeasureStatus(enum.Enum):
    """A measure's status (落实情况)."""

    PLANNED = "planned"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class InspectionKind(enum.Enum):
    """巡回指导 (announced tour) or 督导暗访 (unannounced visit)."""

    TOUR = "tour"
    UNANNOUNCED = "unannounced"


class FindingKind(enum.Enum):
    """What an inspection found (问题类型)."""

    MISSED_MONITORING = "missed_monitoring"  # 漏测
    MEASURES_NOT_IN_PLACE = "measures_not_in_place"  # 帮扶措施不落实
    GUARANTEE_GAP = "guarantee_gap"  # 三保障和饮水安全问题
    INCOME_NOT_STABLE = "income_not_stable"  # 收入不稳定
    DATA_QUALITY = "data_quality"  # 信息不准
    FUNDS = "funds"  # 资金使用
    OTHER = "other"


class FindingState(enum.Enum):
    """问题整改: open → rectifying → rectified → verified (in this order, dated)."""

    OPEN = "open"
    RECTIFYING = "rectifying"
    RECTIFIED = "rectified"
    VERIFIED = "verified"


class Grid(Base):
    """网格: one cell of a county's three-level grid (1 township, 2 village or community, 3 group or building).

    Level names are a setting (``casework.grid_level_names``); a level-3 grid holds households (``household.grid_id``)
    and has a responsible grid worker (``worker_user_id``, an ``app_user`` of role ``grid_worker``).
    """

    __tablename__ = "grid"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    county_code: Mapped[str] = mapped_column(ForeignKey("admin_area.code"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("grid.id"), index=True)
    level: Mapped[int] = mapped_column(SmallInteger)
    code: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    area = _geom("MULTIPOLYGON", nullable=True)
    worker_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), index=True)
    __table_args__ = (
        CheckConstraint("level BETWEEN 1 AND 3", name="level_range"),
        CheckConstraint("(level = 1) = (parent_id IS NULL)", name="parent_level"),
        Index("uq_grid_county_code_code", "county_code", "code", unique=True),
        Index("ix_grid_area", "area", postgresql_using="gist"),
    )


class MonitoringCase(Base):
    """监测对象: one household's monitoring case from identification to risk elimination (never deleted).

    Open on D when ``opened_on <= D`` and (``closed_on`` is null or ``D < closed_on``): ``anju_case_open_on``.
    ``closed_on`` is the day of the county's confirmation of risk elimination, or of the refusal of identification.
    ``version`` is claimed by every step (``SELECT … FOR UPDATE``): two concurrent approvals, one wins.
    """

    __tablename__ = "monitoring_case"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    county_code: Mapped[str] = mapped_column(String(6))
    category: Mapped[MonitoringCategory] = mapped_column(_enum(MonitoringCategory, "monitoring_category"))
    risk_types: Mapped[list[RiskType]] = mapped_column(ARRAY(_enum(RiskType, "risk_type")))
    source: Mapped[CaseSource] = mapped_column(_enum(CaseSource, "case_source"))
    opened_on: Mapped[dt.date] = mapped_column(Date)
    stage: Mapped[CaseStage] = mapped_column(_enum(CaseStage, "case_stage"))
    stage_on: Mapped[dt.date] = mapped_column(Date)
    included_on: Mapped[dt.date | None] = mapped_column(Date)
    closed_on: Mapped[dt.date | None] = mapped_column(Date)
    notes: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    __table_args__ = (
        CheckConstraint("cardinality(risk_types) > 0", name="risk_types_given"),
        CheckConstraint("closed_on IS NULL OR closed_on >= opened_on", name="closed_after_opened"),
        Index("ix_monitoring_case_county_code_opened_on", "county_code", "opened_on"),
    )


class CaseStep(Base):
    """One stage acted on (append-only history): who, when, decision, notes; public notices carry their dates.

    ``approved`` false: the stage refused (identification → ``not_included``; elimination → back to monitored).
    """

    __tablename__ = "case_step"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("monitoring_case.id"), index=True)
    stage: Mapped[CaseStage] = mapped_column(_enum(CaseStage, "case_stage"))
    approved: Mapped[bool] = mapped_column(Boolean)
    # The case's stage after this step (the stage itself, or not_included / county_approval after a refusal).
    stage_after: Mapped[CaseStage] = mapped_column(_enum(CaseStage, "case_stage"))
    acted_on: Mapped[dt.date] = mapped_column(Date)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    user_name: Mapped[str] = mapped_column(Text)
    actor_level: Mapped[str] = mapped_column(Text)
    participants: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default="{}")
    notice_from: Mapped[dt.date | None] = mapped_column(Date)
    notice_to: Mapped[dt.date | None] = mapped_column(Date)
    notes: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    __table_args__ = (
        CheckConstraint("notice_to IS NULL OR notice_to >= notice_from", name="notice_in_order"),
        Index("ix_case_step_case_id_acted_on", "case_id", "acted_on", "id"),
    )


class CaseTransition(Base):
    """The allowed next stage of each stage (one table; the step trigger and the mutations read it)."""

    __tablename__ = "case_transition"
    from_stage: Mapped[CaseStage] = mapped_column(_enum(CaseStage, "case_stage"), primary_key=True)
    to_stage: Mapped[CaseStage] = mapped_column(_enum(CaseStage, "case_stage"))


class AssistanceMeasure(Base):
    """帮扶措施 for a household (under a case): type, responsible unit or person, funds (yuan), dates, status."""

    __tablename__ = "assistance_measure"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("monitoring_case.id"), index=True)
    type: Mapped[MeasureType] = mapped_column(_enum(MeasureType, "measure_type"))
    responsible: Mapped[str] = mapped_column(Text)
    funds: Mapped[Decimal | None] = mapped_column(MONEY)
    start_on: Mapped[dt.date] = mapped_column(Date)
    end_on: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[MeasureStatus] = mapped_column(_enum(MeasureStatus, "measure_status"))
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("facility.id"))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("cooperation_project.id"))
    notes: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        CheckConstraint("funds >= 0", name="funds_nonneg"),
        CheckConstraint("end_on IS NULL OR end_on >= start_on", name="dates_in_order"),
    )


class FollowUpVisit(Base):
    """走访: a grid worker's visit to a household on a date: findings, per-capita income checked (yuan per person-year)."""

    __tablename__ = "follow_up_visit"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("monitoring_case.id"), index=True)
    visited_on: Mapped[dt.date] = mapped_column(Date)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    user_name: Mapped[str] = mapped_column(Text)
    findings: Mapped[str] = mapped_column(Text)
    per_capita_income: Mapped[Decimal | None] = mapped_column(MONEY)


class GuaranteeCheck(Base):
    """三保障和饮水安全 of a household checked on a date; null: not applicable (e.g. no child of compulsory-school age).

    Each false is a risk reason from ``checked_on`` until a later check says otherwise.
    """

    __tablename__ = "guarantee_check"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    checked_on: Mapped[dt.date] = mapped_column(Date)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("follow_up_visit.id"))
    education: Mapped[bool | None] = mapped_column(Boolean)  # 义务教育有保障: every child of compulsory-school age in school
    medical: Mapped[bool | None] = mapped_column(Boolean)  # 基本医疗有保障: basic medical insurance
    housing: Mapped[bool | None] = mapped_column(Boolean)  # 住房安全有保障
    drinking_water: Mapped[bool | None] = mapped_column(Boolean)  # 饮水安全有保障
    __table_args__ = (Index("ix_guarantee_check_household_id_checked_on", "household_id", "checked_on"),)


class HardshipReport(Base):
    """突发严重困难: a sudden hardship reported for a household on a date (a monitoring criterion for a year after)."""

    __tablename__ = "hardship_report"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    reported_on: Mapped[dt.date] = mapped_column(Date)
    risk_type: Mapped[RiskType] = mapped_column(_enum(RiskType, "risk_type"))
    notes: Mapped[str | None] = mapped_column(Text)


class Inspection(Base):
    """巡回指导 / 督导暗访 of a county by the province: dates, team; spot checks and findings below it."""

    __tablename__ = "inspection"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    county_code: Mapped[str] = mapped_column(ForeignKey("admin_area.code"), index=True)
    kind: Mapped[InspectionKind] = mapped_column(_enum(InspectionKind, "inspection_kind"))
    starts_on: Mapped[dt.date] = mapped_column(Date)
    ends_on: Mapped[dt.date] = mapped_column(Date)
    team: Mapped[list[str]] = mapped_column(ARRAY(Text))
    notes: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (CheckConstraint("ends_on >= starts_on", name="dates_in_order"),)


class SpotCheck(Base):
    """One household or site an inspection visited (抽查)."""

    __tablename__ = "spot_check"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    inspection_id: Mapped[int] = mapped_column(ForeignKey("inspection.id"), index=True)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("household.id"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("relocation_site.id"))
    visited_on: Mapped[dt.date] = mapped_column(Date)
    __table_args__ = (CheckConstraint("(household_id IS NULL) <> (site_id IS NULL)", name="one_target"),)


class Finding(Base):
    """问题: a finding of an inspection, assigned to a county unit with a deadline; its state changes are dated.

    Overdue on D: ``deadline < D`` and not rectified on D (``rectified_on`` null or after D).
    """

    __tablename__ = "finding"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    inspection_id: Mapped[int] = mapped_column(ForeignKey("inspection.id"), index=True)
    county_code: Mapped[str] = mapped_column(String(6), index=True)
    kind: Mapped[FindingKind] = mapped_column(_enum(FindingKind, "finding_kind"))
    description: Mapped[str] = mapped_column(Text)
    unit: Mapped[str] = mapped_column(Text)
    found_on: Mapped[dt.date] = mapped_column(Date)
    deadline: Mapped[dt.date] = mapped_column(Date)
    state: Mapped[FindingState] = mapped_column(_enum(FindingState, "finding_state"))
    rectifying_on: Mapped[dt.date | None] = mapped_column(Date)
    rectified_on: Mapped[dt.date | None] = mapped_column(Date)
    verified_on: Mapped[dt.date | None] = mapped_column(Date)
    notes: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    __table_args__ = (
        CheckConstraint("deadline >= found_on", name="deadline_after_found"),
        CheckConstraint(
            "(rectifying_on IS NULL OR rectifying_on >= found_on) AND (rectified_on IS NULL OR rectified_on >= rectifying_on)"
            " AND (verified_on IS NULL OR verified_on >= rectified_on)",
            name="states_in_order",
        ),
    )
