"""SQLAlchemy 2 + GeoAlchemy2 models of DESIGN.md §4 and §7 (grids and monitoring casework: ``models.casework``).

Geometries are ``geometry(<Type>, 4326)`` lon/lat with GiST indexes; metres come from
``::geography`` casts in queries. Money is ``numeric(14,2)`` yuan. Enum values are DESIGN's
lowercase strings. Relationships use ``lazy="raise"`` so an accidental N+1 fails loudly.
Imports nothing from the project.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import base as postgresql_types
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import UserDefinedType

SRID = 4326
"""WGS84 lon/lat, the SRID of every stored geometry."""

MONEY: Numeric[Decimal] = Numeric(14, 2)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every table; constraint names follow ``NAMING``."""

    metadata = MetaData(naming_convention=NAMING)


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e], validate_strings=True)


def _geom(kind: str, *, nullable: bool) -> Mapped:  # type: ignore[type-arg]
    # spatial_index=False: indexes are declared explicitly below so the migration owns them.
    return mapped_column(Geometry(kind, srid=SRID, spatial_index=False), nullable=nullable)


class AdminLevel(enum.Enum):
    """行政区划级别 (GB/T 2260 + NBS 12-digit statistical codes)."""

    PROVINCE = "province"
    PREFECTURE = "prefecture"
    COUNTY = "county"
    TOWNSHIP = "township"
    VILLAGE = "village"


class AssistanceTier(enum.Enum):
    """重点帮扶县 tier."""

    NATIONAL_KEY = "national_key"
    PROVINCIAL_KEY = "provincial_key"


class SiteKind(enum.Enum):
    """安置方式: urban/town centralized, central village, other."""

    URBAN = "urban"
    TOWN = "town"
    CENTRAL_VILLAGE = "central_village"
    OTHER = "other"


class FacilityKind(enum.Enum):
    """产业/服务设施 kinds (DESIGN §3)."""

    INDUSTRIAL_PARK = "industrial_park"
    VEGETABLE_BASE = "vegetable_base"
    ASSISTANCE_WORKSHOP = "assistance_workshop"
    COMMUNITY_FACTORY = "community_factory"
    TRAINING_BASE = "training_base"
    TEA_PLANTATION = "tea_plantation"
    PROCESSING_PLANT = "processing_plant"
    COOPERATIVE = "cooperative"
    SCHOOL = "school"
    CLINIC = "clinic"
    WATER_SUPPLY = "water_supply"


class PovertyStatus(enum.Enum):
    """脱贫户 (lifted out of poverty) or 一般户 (never registered poor)."""

    POVERTY_ALLEVIATED = "poverty_alleviated"
    NON_POOR = "non_poor"


class MonitoringCategory(enum.Enum):
    """防返贫监测对象 category."""

    UNSTABLE_OUT_OF_POVERTY = "unstable_out_of_poverty"
    MARGINAL = "marginal"
    SUDDEN_HARDSHIP = "sudden_hardship"


class Gender(enum.Enum):
    """A member's gender as recorded (性别)."""

    MALE = "male"
    FEMALE = "female"


class Relation(enum.Enum):
    """A member's relation to the head of household (与户主关系)."""

    HEAD = "head"
    SPOUSE = "spouse"
    CHILD = "child"
    CHILD_IN_LAW = "child_in_law"
    GRANDCHILD = "grandchild"
    PARENT = "parent"
    SIBLING = "sibling"
    OTHER = "other"


class JoinReason(enum.Enum):
    """Why a member is in the household from ``joined_on`` (入户原因)."""

    REGISTERED = "registered"  # 登记: a member since the household was recorded
    BIRTH = "birth"  # 出生
    MARRIAGE = "marriage"  # 婚入
    MOVING_IN = "moving_in"  # 迁入
    OTHER = "other"


class LeaveReason(enum.Enum):
    """Why a member is no longer in the household from ``left_on`` (减员原因)."""

    DEATH = "death"  # 死亡
    MARRIAGE = "marriage"  # 婚出
    MOVING_OUT = "moving_out"  # 迁出
    OTHER = "other"


class EmploymentChannel(enum.Enum):
    """就业渠道 (DESIGN §3)."""

    LABOR_EXPORT = "labor_export"
    WORKSHOP = "workshop"
    SELF_EMPLOYMENT = "self_employment"
    PUBLIC_WELFARE_POST = "public_welfare_post"
    LOCAL_ENTERPRISE = "local_enterprise"
    FLEXIBLE = "flexible"


class LinkageMechanism(enum.Enum):
    """利益联结 mechanism."""

    WAGE = "wage"
    DIVIDEND = "dividend"
    LAND_RENT = "land_rent"
    ORDER_PURCHASE = "order_purchase"
    ASSET_INCOME = "asset_income"
    OTHER = "other"


class PartnerKind(enum.Enum):
    """东西部协作 partner: a donor government, an enterprise or a social organisation."""

    GOVERNMENT = "government"
    ENTERPRISE = "enterprise"
    SOCIAL_ORGANIZATION = "social_organization"


class AdminArea(Base):
    """行政区划: one row per area; ``geom`` where a real boundary is known (counties)."""

    __tablename__ = "admin_area"
    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    level: Mapped[AdminLevel] = mapped_column(_enum(AdminLevel, "admin_level"))
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("admin_area.code"), index=True)
    geom = _geom("MULTIPOLYGON", nullable=True)
    assistance_tier: Mapped[AssistanceTier | None] = mapped_column(_enum(AssistanceTier, "assistance_tier"))
    __table_args__ = (
        CheckConstraint("code ~ '^[0-9]{6}([0-9]{3}([0-9]{3})?)?$'", name="code_digits"),
        Index("ix_admin_area_geom", "geom", postgresql_using="gist"),
        Index("ix_admin_area_code_pattern", "code", postgresql_ops={"code": "text_pattern_ops"}),
    )


class RelocationSite(Base):
    """安置区/安置点. Household count and population are derived from rows, never stored."""

    __tablename__ = "relocation_site"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[SiteKind] = mapped_column(_enum(SiteKind, "site_kind"))
    admin_code: Mapped[str] = mapped_column(ForeignKey("admin_area.code"), index=True)
    location = _geom("POINT", nullable=False)
    boundary = _geom("MULTIPOLYGON", nullable=True)
    # Most specific admin area whose polygon contains the point; kept by a trigger (migrations/sql/located_code.sql).
    located_code: Mapped[str | None] = mapped_column(String(12))
    planned_households: Mapped[int | None] = mapped_column(Integer)
    planned_population: Mapped[int | None] = mapped_column(Integer)
    opened_on: Mapped[dt.date | None] = mapped_column(Date)
    # Closed sites stay in history; a closed site takes no household moving in after closed_on.
    closed_on: Mapped[dt.date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("planned_households >= 0", name="planned_households_nonneg"),
        CheckConstraint("closed_on IS NULL OR opened_on IS NULL OR closed_on >= opened_on", name="closed_after_opened"),
        CheckConstraint("planned_population >= 0", name="planned_population_nonneg"),
        CheckConstraint("NOT ST_IsEmpty(location)", name="location_not_empty"),
        Index("ix_relocation_site_location", "location", postgresql_using="gist"),
        Index("ix_relocation_site_boundary", "boundary", postgresql_using="gist"),
        Index("ix_relocation_site_location_geog", text("(CAST(location AS geography))"), postgresql_using="gist"),
        Index("ix_relocation_site_located_code", "located_code", postgresql_ops={"located_code": "text_pattern_ops"}),
        Index("ix_relocation_site_county", text("left(admin_code, 6)")),  # partners' row scope (migration 0007)
    )


class SiteOrigin(Base):
    """The townships/villages a site's households came from."""

    __tablename__ = "site_origin"
    site_id: Mapped[int] = mapped_column(ForeignKey("relocation_site.id", ondelete="CASCADE"), primary_key=True)
    origin_admin_code: Mapped[str] = mapped_column(ForeignKey("admin_area.code"), primary_key=True, index=True)


class Facility(Base):
    """产业/服务设施: parks, bases, workshops, schools, clinics."""

    __tablename__ = "facility"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[FacilityKind] = mapped_column(_enum(FacilityKind, "facility_kind"))
    admin_code: Mapped[str] = mapped_column(ForeignKey("admin_area.code"), index=True)
    location = _geom("POINT", nullable=False)
    footprint = _geom("MULTIPOLYGON", nullable=True)
    # Most specific admin area whose polygon contains the point; kept by a trigger (migrations/sql/located_code.sql).
    located_code: Mapped[str | None] = mapped_column(String(12))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("relocation_site.id"), index=True)
    area_mu: Mapped[float | None] = mapped_column(Float)
    planned_jobs: Mapped[int | None] = mapped_column(Integer)
    operator: Mapped[str | None] = mapped_column(Text)
    opened_on: Mapped[dt.date | None] = mapped_column(Date)
    # Open on D when (opened_on IS NULL OR opened_on <= D) AND (closed_on IS NULL OR D < closed_on).
    closed_on: Mapped[dt.date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("area_mu >= 0", name="area_mu_nonneg"),
        CheckConstraint("closed_on IS NULL OR opened_on IS NULL OR closed_on >= opened_on", name="closed_after_opened"),
        CheckConstraint("planned_jobs >= 0", name="planned_jobs_nonneg"),
        CheckConstraint("NOT ST_IsEmpty(location)", name="location_not_empty"),
        Index("ix_facility_location", "location", postgresql_using="gist"),
        Index("ix_facility_footprint", "footprint", postgresql_using="gist"),
        Index("ix_facility_location_geog", text("(CAST(location AS geography))"), postgresql_using="gist"),
        Index("ix_facility_located_code", "located_code", postgresql_ops={"located_code": "text_pattern_ops"}),
        Index("ix_facility_kind", "kind"),
        Index("ix_facility_county", text("left(admin_code, 6)")),  # partners' row scope (migration 0007)
    )


class Household(Base):
    """搬迁户 (and never-relocated households such as Qietuo's tea farmers: ``site_id`` null).

    ``county_code`` is derived from ``admin_code`` so the county travels with every row
    (the future Citus distribution key, and the area-scope predicate). ``site_id``, ``admin_code``,
    ``dwelling`` and ``relocated_on`` are the *current* residence, kept by triggers from the dated
    ``household_residence`` rows (migrations/sql/household_status.sql); write residence rows, not these.
    """

    __tablename__ = "household"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(Text, unique=True)
    admin_code: Mapped[str] = mapped_column(ForeignKey("admin_area.code"), index=True)
    county_code: Mapped[str] = mapped_column(String(6), Computed("left(admin_code, 6)", persisted=True))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("relocation_site.id"), index=True)
    origin_admin_code: Mapped[str | None] = mapped_column(ForeignKey("admin_area.code"), index=True)
    dwelling = _geom("POINT", nullable=True)
    # Most specific admin area whose polygon contains the point; kept by a trigger (migrations/sql/located_code.sql).
    located_code: Mapped[str | None] = mapped_column(String(12))
    relocated_on: Mapped[dt.date | None] = mapped_column(Date)
    poverty_status: Mapped[PovertyStatus] = mapped_column(_enum(PovertyStatus, "poverty_status"))
    monitoring_category: Mapped[MonitoringCategory | None] = mapped_column(_enum(MonitoringCategory, "monitoring_category"))
    # The bottom-level grid (三级网格, level 3) the household belongs to; a grid worker's row scope.
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grid.id"), index=True)
    risk_eliminated: Mapped[bool | None] = mapped_column(Boolean)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # Kept by triggers on member (migrations/sql/household_counts.sql), in the same transaction as every member change.
    member_count: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
    labor_force_count: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
    # 备注: free text about the household (any length; live updates carry its id only, never its text).
    remark: Mapped[str | None] = mapped_column(Text)
    members: Mapped[list[Member]] = relationship(back_populates="household", lazy="raise")
    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("(monitoring_category IS NULL) = (risk_eliminated IS NULL)", name="monitoring_pair"),
        CheckConstraint("member_count >= 0 AND labor_force_count BETWEEN 0 AND member_count", name="counts_nonneg"),
        Index("ix_household_dwelling", "dwelling", postgresql_using="gist"),
        Index("ix_household_county_code", "county_code"),
        Index("ix_household_dwelling_geog", text("(CAST(dwelling AS geography))"), postgresql_using="gist"),
        Index("ix_household_located_code", "located_code", postgresql_ops={"located_code": "text_pattern_ops"}),
        Index("ix_household_admin_code_pattern", "admin_code", postgresql_ops={"admin_code": "text_pattern_ops"}),
    )


class Member(Base):
    """家庭成员. ``id_number_hash`` is a keyed hash, never the ID number itself.

    ``member_count``/``labor_force_count`` of the household count the members who have not left.
    """

    __tablename__ = "member"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(Text)
    id_number_hash: Mapped[str | None] = mapped_column(Text)
    # The last 4 characters of the ID number, for display to roles with the right (migration 0007).
    id_number_last4: Mapped[str | None] = mapped_column(String(4))
    phone: Mapped[str | None] = mapped_column(Text)
    gender: Mapped[Gender] = mapped_column(_enum(Gender, "gender"))
    birth_year: Mapped[int] = mapped_column(SmallInteger)
    relation: Mapped[Relation] = mapped_column(_enum(Relation, "relation"))
    labor_force: Mapped[bool] = mapped_column(Boolean)
    skills: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default="{}")
    # A member of the household on D when (joined_on IS NULL OR joined_on <= D) AND (left_on IS NULL OR D < left_on);
    # joined_on NULL: a member since before the household's records begin.
    joined_on: Mapped[dt.date | None] = mapped_column(Date)
    join_reason: Mapped[JoinReason] = mapped_column(_enum(JoinReason, "join_reason"), server_default="registered")
    left_on: Mapped[dt.date | None] = mapped_column(Date)
    leave_reason: Mapped[LeaveReason | None] = mapped_column(_enum(LeaveReason, "leave_reason"))
    household: Mapped[Household] = relationship(back_populates="members", lazy="raise")
    __table_args__ = (
        CheckConstraint("birth_year BETWEEN 1900 AND 2100", name="birth_year_range"),
        CheckConstraint("left_on IS NULL OR joined_on IS NULL OR left_on > joined_on", name="left_after_joined"),
        CheckConstraint("(left_on IS NULL) = (leave_reason IS NULL)", name="leave_pair"),
        Index("uq_member_id_number_hash", "id_number_hash", unique=True, postgresql_where=text("id_number_hash IS NOT NULL")),
    )


class Employment(Base):
    """就业: one job spell of a member. Active on D when start_on <= D <= coalesce(end_on, D)."""

    __tablename__ = "employment"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id", ondelete="CASCADE"), index=True)
    # Copied from the member by a trigger (migrations/sql/household_counts.sql): coverage groups employments by household.
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"), index=True)
    channel: Mapped[EmploymentChannel] = mapped_column(_enum(EmploymentChannel, "employment_channel"))
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("facility.id"), index=True)
    employer_name: Mapped[str | None] = mapped_column(Text)
    workplace = _geom("POINT", nullable=True)
    outbound_region: Mapped[str | None] = mapped_column(Text)
    start_on: Mapped[dt.date] = mapped_column(Date)
    end_on: Mapped[dt.date | None] = mapped_column(Date)
    monthly_wage: Mapped[Decimal | None] = mapped_column(MONEY)
    stable: Mapped[bool] = mapped_column(Boolean)
    __table_args__ = (
        CheckConstraint("end_on IS NULL OR end_on >= start_on", name="dates_in_order"),
        CheckConstraint("monthly_wage >= 0", name="monthly_wage_nonneg"),
        Index("ix_employment_workplace", "workplace", postgresql_using="gist"),
    )


class HouseholdResidence(Base):
    """Where a household lived from ``valid_from`` on (until its next row): site, admin area, dwelling.

    The first row of every household starts at ``-infinity``; a relocated household's first row is its origin village
    (no site) and its second starts on ``relocated_on`` at its site. A move adds a row. Created for a new household by a
    trigger; the household's current columns are kept from its latest row (migrations/sql/household_status.sql).
    """

    __tablename__ = "household_residence"
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"), primary_key=True)
    valid_from: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("relocation_site.id"), index=True)
    admin_code: Mapped[str] = mapped_column(ForeignKey("admin_area.code"), index=True)
    dwelling = _geom("POINT", nullable=True)
    __table_args__ = (Index("ix_household_residence_dwelling", "dwelling", postgresql_using="gist"),)


class HouseholdStatus(Base):
    """A household on every date in [valid_from, valid_to): where it lived, its members, its employment counts.

    Residence (site, admin area), members present and those with labor force, distinct members employed, stably employed,
    and employed per channel (one column per EmploymentChannel value, checked by tests/test_db_logic.py), counting only
    members present on the date. Maintained only by triggers (migrations/sql/household_status.sql) from residence, member
    and employment rows; never written by the application.
    """

    __tablename__ = "household_status"
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"), primary_key=True)
    valid_from: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    valid_to: Mapped[dt.date] = mapped_column(Date)
    site_id: Mapped[int | None] = mapped_column(BigInteger)
    admin_code: Mapped[str | None] = mapped_column(String(12))
    county_code: Mapped[str | None] = mapped_column(String(6), Computed("left(admin_code, 6)", persisted=True))
    members: Mapped[int] = mapped_column(Integer, server_default="0")
    labor_force: Mapped[int] = mapped_column(Integer, server_default="0")
    employed: Mapped[int] = mapped_column(Integer, server_default="0")
    stably_employed: Mapped[int] = mapped_column(Integer, server_default="0")
    labor_export: Mapped[int] = mapped_column(Integer, server_default="0")
    workshop: Mapped[int] = mapped_column(Integer, server_default="0")
    self_employment: Mapped[int] = mapped_column(Integer, server_default="0")
    public_welfare_post: Mapped[int] = mapped_column(Integer, server_default="0")
    local_enterprise: Mapped[int] = mapped_column(Integer, server_default="0")
    flexible: Mapped[int] = mapped_column(Integer, server_default="0")
    __table_args__ = (
        CheckConstraint("valid_from < valid_to", name="segment"),
        Index("ix_household_status_site_id", "site_id", "valid_from"),
        Index("ix_household_status_county_code", "county_code", "valid_from"),
    )


class IncomeLinkage(Base):
    """利益联结: a yearly benefit flow (yuan) from a facility/enterprise to a household."""

    __tablename__ = "income_linkage"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"), index=True)
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("facility.id"), index=True)
    mechanism: Mapped[LinkageMechanism] = mapped_column(_enum(LinkageMechanism, "linkage_mechanism"))
    year: Mapped[int] = mapped_column(SmallInteger)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    __table_args__ = (
        CheckConstraint("amount >= 0", name="amount_nonneg"),
        CheckConstraint("year BETWEEN 2000 AND 2100", name="year_range"),
        Index("ix_income_linkage_year_household_id", "year", "household_id"),
    )


class HouseholdIncome(Base):
    """家庭纯收入: surveyed annual net income (yuan) of a household in a year; may be negative."""

    __tablename__ = "household_income"
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"), primary_key=True)
    year: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    net_income: Mapped[Decimal] = mapped_column(MONEY)
    # Household size recorded with the income (per-capita = net_income / household_size). Defaults, by a trigger, to
    # the members present on surveyed_on (or on 31 December of the year, or today for the current year).
    household_size: Mapped[int | None] = mapped_column(SmallInteger)
    surveyed_on: Mapped[dt.date | None] = mapped_column(Date)
    __table_args__ = (
        CheckConstraint("year BETWEEN 2000 AND 2100", name="year_range"),
        CheckConstraint("household_size > 0", name="household_size_positive"),
    )


class CooperationPartner(Base):
    """东西部协作 partner: a donor government, enterprise or organisation."""

    __tablename__ = "cooperation_partner"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    region: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[PartnerKind] = mapped_column(_enum(PartnerKind, "partner_kind"))


class PartnerCounty(Base):
    """Pairing of a partner with a county it assists."""

    __tablename__ = "partner_county"
    partner_id: Mapped[int] = mapped_column(ForeignKey("cooperation_partner.id", ondelete="CASCADE"), primary_key=True)
    county_code: Mapped[str] = mapped_column(ForeignKey("admin_area.code"), primary_key=True, index=True)


class CooperationProject(Base):
    """A project a partner funds in a county (funds in yuan)."""

    __tablename__ = "cooperation_project"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("cooperation_partner.id"), index=True)
    name: Mapped[str] = mapped_column(Text)
    county_code: Mapped[str] = mapped_column(ForeignKey("admin_area.code"), index=True)
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("facility.id"), index=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("relocation_site.id"), index=True)
    year: Mapped[int] = mapped_column(SmallInteger)
    funds: Mapped[Decimal] = mapped_column(MONEY)
    households_benefited: Mapped[int | None] = mapped_column(Integer)
    # Share of the project's cost the households raised themselves (0..1); the rest is co-funding.
    self_raised_share: Mapped[Decimal | None] = mapped_column(Numeric(4, 3))
    __table_args__ = (
        CheckConstraint("funds >= 0", name="funds_nonneg"),
        CheckConstraint("self_raised_share BETWEEN 0 AND 1", name="share_range"),
        CheckConstraint("households_benefited >= 0", name="households_benefited_nonneg"),
        CheckConstraint("year BETWEEN 2000 AND 2100", name="year_range"),
    )


class TargetSubject(enum.Enum):
    """What a plan target is set for: an admin area, a facility or a cooperation project."""

    AREA = "area"
    FACILITY = "facility"
    PROJECT = "project"


class TargetMetric(enum.Enum):
    """目标指标: what a plan target measures; its actual is computed from rows (resolvers/targets.py)."""

    PERSONS_EMPLOYED = "persons_employed"  # area: members of 脱贫户 under it employed on the date, 人
    COVERAGE_RATE = "coverage_rate"  # area: employment coverage on the date, 0..1
    HOUSEHOLDS_LINKED = "households_linked"  # area / facility: households with an income linkage of the year, 户
    AVERAGE_LINKED_INCOME = "average_linked_income"  # area: linkage yuan of the year ÷ households linked
    YUAN_PER_HOUSEHOLD = "yuan_per_household"  # facility: its linkage yuan of the year ÷ its households linked
    JOBS = "jobs"  # facility / project (its facility): members employed there on the date, 人
    HOUSEHOLDS_BENEFITED = "households_benefited"  # project: households linked to its facility in the year (or at its site)


TARGET_METRICS = {
    TargetSubject.AREA: (
        TargetMetric.PERSONS_EMPLOYED,
        TargetMetric.COVERAGE_RATE,
        TargetMetric.HOUSEHOLDS_LINKED,
        TargetMetric.AVERAGE_LINKED_INCOME,
    ),
    TargetSubject.FACILITY: (TargetMetric.HOUSEHOLDS_LINKED, TargetMetric.YUAN_PER_HOUSEHOLD, TargetMetric.JOBS),
    TargetSubject.PROJECT: (TargetMetric.HOUSEHOLDS_BENEFITED, TargetMetric.JOBS),
}
"""The metrics each subject takes (one definition: the table's check constraint is written from it)."""


def _metric_check() -> str:
    return " OR ".join(
        f"(subject = '{subj.value}' AND metric IN ({', '.join(repr(x.value) for x in metrics)}))"
        for subj, metrics in TARGET_METRICS.items()
    )


class PlanTarget(Base):
    """目标任务: a target for an area, facility or project in a year; the actual is never stored (computed from rows).

    ``county_code`` is the subject's county (area code, facility's or project's county), the row scope of officers.
    ``source`` says where the figure comes from (e.g. a key of data/seed-article-facts.json).
    """

    __tablename__ = "plan_target"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    subject: Mapped[TargetSubject] = mapped_column(_enum(TargetSubject, "target_subject"))
    admin_code: Mapped[str | None] = mapped_column(ForeignKey("admin_area.code"), index=True)
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("facility.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("cooperation_project.id", ondelete="CASCADE"), index=True)
    county_code: Mapped[str] = mapped_column(String(6))
    year: Mapped[int] = mapped_column(SmallInteger)
    metric: Mapped[TargetMetric] = mapped_column(_enum(TargetMetric, "target_metric"))
    target: Mapped[Decimal] = mapped_column(Numeric(14, 4))
    source: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint(
            "(subject = 'area') = (admin_code IS NOT NULL) AND (subject = 'facility') = (facility_id IS NOT NULL) "
            "AND (subject = 'project') = (project_id IS NOT NULL)",
            name="one_subject",
        ),
        CheckConstraint(_metric_check(), name="metric_of_subject"),
        CheckConstraint("target >= 0", name="target_nonneg"),
        CheckConstraint("year BETWEEN 2000 AND 2100", name="year_range"),
        Index(
            "uq_plan_target_subject_year_metric",
            "subject",
            text("coalesce(admin_code, '')"),
            text("coalesce(facility_id, 0)"),
            text("coalesce(project_id, 0)"),
            "year",
            "metric",
            unique=True,
        ),
        Index("ix_plan_target_county_code", "county_code"),
    )


class TrainingRecord(Base):
    """精培: a member's training: course, provider (often a training-base facility), dates, completion, certificate.

    ``household_id`` is the member's household (set with the record): the row scope, as employments.
    """

    __tablename__ = "training_record"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id", ondelete="CASCADE"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"), index=True)
    course: Mapped[str] = mapped_column(Text)
    provider_facility_id: Mapped[int | None] = mapped_column(ForeignKey("facility.id"), index=True)
    provider_name: Mapped[str | None] = mapped_column(Text)
    started_on: Mapped[dt.date] = mapped_column(Date)
    ended_on: Mapped[dt.date | None] = mapped_column(Date)
    completed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    certificate: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("ended_on IS NULL OR ended_on >= started_on", name="dates_in_order"),
        CheckConstraint("NOT completed OR ended_on IS NOT NULL", name="completed_has_end"),
        CheckConstraint("provider_facility_id IS NOT NULL OR provider_name IS NOT NULL", name="provider_known"),
    )


class TrainingFollowUp(Base):
    """跟踪回访: one visit to a trainee placed in work (精培计划 follows them at least three years)."""

    __tablename__ = "training_follow_up"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    training_id: Mapped[int] = mapped_column(ForeignKey("training_record.id", ondelete="CASCADE"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"), index=True)
    visited_on: Mapped[dt.date] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)


class ViewerRole(enum.Enum):
    """Who a token holder is (issues #5, #17): what they may read and write.

    ``grid_worker`` (网格员): the households of the bottom-level grids it is responsible for (``grid.worker_user_id``).
    """

    ADMIN = "admin"
    COUNTY_OFFICER = "county_officer"
    PLANNER = "planner"
    PARTNER = "partner"
    GRID_WORKER = "grid_worker"


class AppUser(Base):
    """A person or portal holding tokens.

    Role, areas and partner are read from here on every request (a token names the user only), so a change or ``disabled`` takes
    effect at once.
    """

    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    role: Mapped[ViewerRole] = mapped_column(_enum(ViewerRole, "viewer_role"))
    area_codes: Mapped[list[str]] = mapped_column(ARRAY(String(12)), default=list, server_default="{}")
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("cooperation_partner.id"))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Browser login (anju.login): Argon2id hash (argon2-cffi's PHC string; null: no password, tokens only), failures in a row
    # and the lockout they caused.
    password_hash: Mapped[str | None] = mapped_column(Text)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        CheckConstraint("name ~ '^[A-Za-z0-9_.@-]{1,64}$'", name="name_form"),
        CheckConstraint("(role = 'partner') = (partner_id IS NOT NULL)", name="partner_role"),
        CheckConstraint("role <> 'county_officer' OR cardinality(area_codes) > 0", name="officer_areas"),
    )


class RefreshToken(Base):
    """A refresh token of a browser login, stored as its SHA-256 only (the token is 256 random bits).

    Tokens of one login form a ``family``: each use rotates the token (``rotated_at`` set, a new one issued in the family);
    a rotated token presented again revokes the whole family (it was stolen or replayed). Logout revokes the family.
    """

    __tablename__ = "refresh_token"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    family: Mapped[str] = mapped_column(Text, index=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    rotated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class AuditLog(Base):
    """One row per mutation, written in the mutation's own transaction.

    Who, when, what, and the record before and after (personal fields masked).
    """

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    user_name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    entity: Mapped[str] = mapped_column(Text)
    entity_id: Mapped[str] = mapped_column(Text)
    before: Mapped[dict | None] = mapped_column(JSONB)  # type: ignore[type-arg]
    after: Mapped[dict | None] = mapped_column(JSONB)  # type: ignore[type-arg]
    # Scoped viewers may insert audit rows but not read them back: no RETURNING on insert.
    __table_args__ = (Index("ix_audit_log_entity_entity_id_id", "entity", "entity_id", "id"), {"implicit_returning": False})


IMPORT_STATES = ("queued", "reading", "checking", "writing", "done", "failed")
"""An import job's states, in order; ``done`` and ``failed`` are final."""


class ImportJob(Base):
    """An import sent over HTTP (``POST /imports/households``): who, what file, its state and, when done, its result.

    ``households`` / ``members`` (kind ``households``), ``records`` (other kinds: ``incomes``): ``{"inserted", "updated",
    "unchanged", "rejected"}``; ``problems``: the report's rows
    (``row``, ``column``, ``value`` masked, ``reason``). The file itself is deleted once the job ends.
    """

    __tablename__ = "import_job"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(Text, server_default="queued")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    user_name: Mapped[str] = mapped_column(Text)
    file_name: Mapped[str] = mapped_column(Text)
    dry_run: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    valid_only: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    rows: Mapped[int | None] = mapped_column(Integer)
    households: Mapped[dict | None] = mapped_column(JSONB)  # type: ignore[type-arg]
    members: Mapped[dict | None] = mapped_column(JSONB)  # type: ignore[type-arg]
    records: Mapped[dict | None] = mapped_column(JSONB)  # type: ignore[type-arg]
    problems: Mapped[list | None] = mapped_column(JSONB)  # type: ignore[type-arg]
    written: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("state IN ('queued', 'reading', 'checking', 'writing', 'done', 'failed')", name="state_known"),
        Index("ix_import_job_user_name_id", "user_name", "id"),
    )


class LiveTopic(enum.Enum):
    """What a live event is about (GraphQL subscriptions).

    A household (and its members, employments, incomes and linkages), a monitoring case (and its steps, assistance
    measures and follow-up visits) or an import job. A new topic is one value here (and in the ``live_topic`` type) and
    its triggers (migrations/sql/live_events.sql).
    """

    HOUSEHOLD = "household"
    IMPORT_JOB = "import_job"
    MONITORING_CASE = "monitoring_case"


class XID8(UserDefinedType[int]):
    """PostgreSQL's 64-bit transaction id (``xid8``): when a pending live event's transaction ran."""

    cache_ok = True

    def get_col_spec(self, **kw: object) -> str:
        """The type's name in DDL."""
        return "xid8"


postgresql_types.ischema_names["xid8"] = XID8  # reflection (alembic's comparison with the migrations) knows the type


class LivePending(Base):
    """A change not yet numbered: written by the triggers of migrations/sql/live_events.sql in the writer's transaction.

    ``xid``: the writer's transaction id; ``anju_live_sequence()`` numbers a row (moves it to ``live_event``) once every
    transaction older than it has ended.
    """

    __tablename__ = "live_pending"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    xid: Mapped[int] = mapped_column(XID8, server_default=text("pg_current_xact_id()"))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    topic: Mapped[LiveTopic] = mapped_column(_enum(LiveTopic, "live_topic"))
    operation: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    entity_id: Mapped[int] = mapped_column(BigInteger)
    admin_codes: Mapped[list[str] | None] = mapped_column(ARRAY(String(12)))
    grid_ids: Mapped[list[int] | None] = mapped_column(ARRAY(BigInteger))
    owner: Mapped[str | None] = mapped_column(Text)


class LiveEvent(Base):
    """A numbered change (outbox of live updates): ``seq`` increases without gaps in commit order.

    Kept for ``live.retention_hours``.

    ``topic``/``entity_id``: what changed (a household id, a monitoring case id, an import job id); ``operation``:
    INSERT, UPDATE or DELETE; ``source``: the table written; ``admin_codes``: the household's admin codes before and
    after (its scope); ``grid_ids``: its grids before and after (a grid worker's scope); ``owner``: the user an owned
    record (an import job) belongs to.
    """

    __tablename__ = "live_event"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    topic: Mapped[LiveTopic] = mapped_column(_enum(LiveTopic, "live_topic"))
    operation: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    entity_id: Mapped[int] = mapped_column(BigInteger)
    admin_codes: Mapped[list[str] | None] = mapped_column(ARRAY(String(12)))
    grid_ids: Mapped[list[int] | None] = mapped_column(ARRAY(BigInteger))
    owner: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (Index("ix_live_event_at", "at"),)


from models.casework import *  # noqa: E402, F403  (grids, monitoring cases, measures, visits, inspections: issue #17)


class IdempotencyKey(Base):
    """A create mutation's ``idempotencyKey``: who sent it, for which mutation, a hash of its input, and what it wrote.

    The row commits in the same transaction as the record it guards, so a retried request finds it exactly when the
    first one was acknowledged; ``result`` is the written ids (``resolvers.idempotency``), never an input value.
    """

    __tablename__ = "idempotency_key"
    viewer_name: Mapped[str] = mapped_column(Text, primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    operation: Mapped[str] = mapped_column(Text)
    request_hash: Mapped[bytes] = mapped_column(LargeBinary)
    result: Mapped[dict | None] = mapped_column(JSONB)  # type: ignore[type-arg]
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
