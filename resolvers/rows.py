"""Typed rows: what the resolvers hand to the schema, one frozen dataclass per entity read.

Each is built from a SQLAlchemy result row in one place, ``RowType.of(row)``, which takes every field
by its column name: a renamed or missing column raises ``TypeError`` there, naming the row type and
the columns the query did return, instead of a ``KeyError`` deep in a resolver. Columns a query adds
for its own use (a parent key, a distance) are read by the resolver before and are not part of the row.

Geometries arrive as RFC 7946 GeoJSON text (SRID 4326, 6 decimals; ``resolvers.query.geojson``);
money is a yuan ``Decimal``; enums are the models' enums.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import Field, dataclass
from decimal import Decimal
from typing import Any, ClassVar, Self

from sqlalchemy import Row

import models as m

ResultRow = Row[*tuple[Any, ...]] | Mapping[str, Any]
"""A row as SQLAlchemy returns it: a ``Row`` (attribute access) or its ``RowMapping``."""


class TypedRow:
    """Base of the typed rows: ``of(row)`` builds one from a result row by column name."""

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    @classmethod
    def of(cls, row: ResultRow) -> Self:
        """The typed row of a result row (extra columns are ignored).

        Raises:
            TypeError: the result row lacks a column of this type (renamed or not selected).
        """
        mapping: Mapping[Any, Any] = row._mapping if isinstance(row, Row) else row
        names = cls.__dataclass_fields__.keys()
        missing = [n for n in names if n not in mapping]
        if missing:
            raise TypeError(f"{cls.__name__}: result row lacks column(s) {missing}; it has {list(mapping)}")
        return cls(**{n: mapping[n] for n in names})


@dataclass(frozen=True, slots=True)
class AdminAreaRow(TypedRow):
    """``admin_area``: code (6/9/12 digits), level, parent code, 重点帮扶县 tier, boundary GeoJSON or None."""

    code: str
    name: str
    level: m.AdminLevel
    parent_code: str | None
    assistance_tier: m.AssistanceTier | None
    geometry: str | None


@dataclass(frozen=True, slots=True)
class SiteRow(TypedRow):
    """``relocation_site``: location Point and boundary MultiPolygon (GeoJSON text), planned counts as recorded, version."""

    id: int
    name: str
    kind: m.SiteKind
    admin_code: str
    location: str
    boundary: str | None
    planned_households: int | None
    planned_population: int | None
    opened_on: dt.date | None
    closed_on: dt.date | None
    version: int


@dataclass(frozen=True, slots=True)
class FacilityRow(TypedRow):
    """``facility``: location Point and footprint MultiPolygon (GeoJSON text), area in mu (亩), opened/closed dates, version."""

    id: int
    name: str
    kind: m.FacilityKind
    admin_code: str
    location: str
    footprint: str | None
    site_id: int | None
    area_mu: float | None
    planned_jobs: int | None
    operator: str | None
    opened_on: dt.date | None
    closed_on: dt.date | None
    version: int


@dataclass(frozen=True, slots=True)
class HouseholdRow(TypedRow):
    """``household``.

    Dwelling Point (GeoJSON text or None); member_count (size) and labor_force_count are kept by triggers; version is the
    optimistic-locking counter.
    """

    id: int
    code: str
    admin_code: str
    county_code: str
    site_id: int | None
    origin_admin_code: str | None
    dwelling: str | None
    relocated_on: dt.date | None
    poverty_status: m.PovertyStatus
    monitoring_category: m.MonitoringCategory | None
    risk_eliminated: bool | None
    version: int
    member_count: int
    labor_force_count: int


@dataclass(frozen=True, slots=True)
class MemberRow(TypedRow):
    """``member``: name and phone as the viewer may see them (masked otherwise), ID digits or None."""

    id: int
    household_id: int
    name: str
    gender: m.Gender
    birth_year: int
    relation: m.Relation
    labor_force: bool
    skills: list[str] | None
    phone: str | None
    id_number_last4: str | None
    joined_on: dt.date | None
    join_reason: m.JoinReason
    left_on: dt.date | None
    leave_reason: m.LeaveReason | None


@dataclass(frozen=True, slots=True)
class EmploymentRow(TypedRow):
    """``employment``: a member's job spell; workplace Point (GeoJSON text or None), monthly wage in yuan."""

    id: int
    member_id: int
    household_id: int
    channel: m.EmploymentChannel
    facility_id: int | None
    employer_name: str | None
    workplace: str | None
    outbound_region: str | None
    start_on: dt.date
    end_on: dt.date | None
    monthly_wage: Decimal | None
    stable: bool


@dataclass(frozen=True, slots=True)
class IncomeLinkageRow(TypedRow):
    """``income_linkage``: yuan a household drew in ``year`` through ``mechanism``."""

    id: int
    household_id: int
    facility_id: int | None
    mechanism: m.LinkageMechanism
    year: int
    amount: Decimal


@dataclass(frozen=True, slots=True)
class PartnerRow(TypedRow):
    """``cooperation_partner`` (东西部协作)."""

    id: int
    name: str
    region: str | None
    kind: m.PartnerKind


@dataclass(frozen=True, slots=True)
class ProjectRow(TypedRow):
    """``cooperation_project``: funds in yuan; self_raised_share 0..1."""

    id: int
    partner_id: int
    name: str
    county_code: str
    facility_id: int | None
    site_id: int | None
    year: int
    funds: Decimal
    households_benefited: int | None
    self_raised_share: Decimal | None


@dataclass(frozen=True, slots=True)
class YearFundsRow(TypedRow):
    """A partner's projects of one year: funds summed (yuan), projects, households benefited summed."""

    partner_id: int
    year: int
    funds: Decimal
    projects: int
    households_benefited: int


@dataclass(frozen=True, slots=True)
class AuditRow(TypedRow):
    """``audit_log``: one audited mutation; before/after as JSON (dict) or None."""

    id: int
    at: dt.datetime
    user_name: str
    role: str
    action: str
    entity: str
    entity_id: str
    before: Any
    after: Any


@dataclass(frozen=True, slots=True)
class ResidenceRow(TypedRow):
    """``household_residence``: where a household lived from valid_from (None: since before the records begin) on."""

    household_id: int
    valid_from: dt.date | None
    site_id: int | None
    admin_code: str
    dwelling: str | None


@dataclass(frozen=True, slots=True)
class HouseholdIncomeRow(TypedRow):
    """``household_income``: a year's surveyed net income (yuan) and the household size its per-capita figures divide by."""

    household_id: int
    year: int
    net_income: Decimal
    household_size: int | None
    surveyed_on: dt.date | None
