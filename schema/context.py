"""Per-request context: sessionmaker, settings and fresh DataLoaders (never module-level)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import async_sessionmaker
from strawberry.dataloader import DataLoader

from resolvers import admin_areas, coverage, facilities, households, sites, spatial
from resolvers.query import check_date


class PagingLimits(Protocol):
    default_page_size: int
    max_page_size: int


class MonitoringLimits(Protocol):
    per_capita_threshold: Decimal


class FeatureLimits(Protocol):
    default_limit: int
    max_limit: int
    cluster_below_zoom: int
    max_vertices: int


class SettingsLike(Protocol):
    """What the schema reads of ``anju.settings.Settings`` (schema never imports ``anju``)."""

    timezone: str
    max_query_depth: int

    @property
    def paging(self) -> PagingLimits: ...

    @property
    def monitoring(self) -> MonitoringLimits: ...

    @property
    def features(self) -> FeatureLimits: ...


@dataclass
class Loaders:
    """One DataLoader per batch function; each runs one query per batch (per distinct parameter)."""

    admin_area: DataLoader[str, Any]
    site: DataLoader[int, Any]
    site_stats: DataLoader[int, Any]
    site_origin_codes: DataLoader[int, Any]
    site_facilities: DataLoader[int, Any]
    site_household_pages: DataLoader[Any, Any]
    facility: DataLoader[int, Any]
    household: DataLoader[int, Any]
    members: DataLoader[int, Any]
    member: DataLoader[int, Any]
    member_employments: DataLoader[Any, Any]
    employment: DataLoader[int, Any]
    household_employments: DataLoader[Any, Any]
    income_linkages: DataLoader[Any, Any]
    net_income: DataLoader[Any, Any]
    children_pages: DataLoader[Any, Any]
    site_coverage: DataLoader[Any, Any]
    area_coverage: DataLoader[Any, Any]
    site_linkage_summary: DataLoader[Any, Any]
    area_linkage_summary: DataLoader[Any, Any]
    household_employment: DataLoader[Any, Any]
    linked_income: DataLoader[Any, Any]
    facility_employees: DataLoader[Any, Any]
    facility_linked_households: DataLoader[Any, Any]
    nearby_facilities: DataLoader[Any, Any]
    nearest_by_kind: DataLoader[Any, Any]


def make_loaders(sm: async_sessionmaker) -> Loaders:  # type: ignore[type-arg]
    """Fresh loaders bound to ``sm`` for one request."""
    def dl(fn: Any) -> DataLoader[Any, Any]:
        return DataLoader(load_fn=partial(fn, sm))

    return Loaders(
        admin_area=dl(admin_areas.admin_areas_by_codes),
        site=dl(sites.sites_by_ids),
        site_stats=dl(sites.site_stats_by_ids),
        site_origin_codes=dl(sites.origin_codes_by_site_ids),
        site_facilities=dl(facilities.facilities_by_site_ids),
        site_household_pages=dl(households.household_pages_by_site_ids),
        facility=dl(facilities.facilities_by_ids),
        household=dl(households.households_by_ids),
        members=dl(households.members_by_household_ids),
        member=dl(households.members_by_ids),
        member_employments=dl(households.employments_by_member_ids),
        employment=dl(households.employments_by_ids),
        household_employments=dl(households.employments_by_household_ids),
        income_linkages=dl(households.income_linkages_by_household_ids),
        net_income=dl(households.net_incomes_by_household_ids),
        children_pages=dl(admin_areas.children_pages),
        site_coverage=dl(coverage.employment_coverage_by_site_ids),
        area_coverage=dl(coverage.employment_coverage_by_area_codes),
        site_linkage_summary=dl(coverage.income_linkage_summary_by_site_ids),
        area_linkage_summary=dl(coverage.income_linkage_summary_by_area_codes),
        household_employment=dl(coverage.household_employment_by_ids),
        linked_income=dl(coverage.linked_income_by_household_ids),
        facility_employees=dl(coverage.facility_employees),
        facility_linked_households=dl(coverage.facility_linked_households),
        nearby_facilities=dl(spatial.nearby_facilities_by_site_ids),
        nearest_by_kind=dl(spatial.nearest_by_kind_by_site_ids),
    )


@dataclass
class Context:
    """What every resolver gets: ``info.context``."""

    sessionmaker: async_sessionmaker  # type: ignore[type-arg]
    settings: SettingsLike
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = make_loaders(self.sessionmaker)

    def today(self) -> dt.date:
        """The default ``asOf``: today in the settings' zone (Asia/Shanghai)."""
        return dt.datetime.now(ZoneInfo(self.settings.timezone)).date()

    def as_of(self, value: dt.date | None, field: str = "asOf") -> dt.date:
        """``value`` checked to lie in 1900..2100 (BAD_USER_INPUT naming ``field``), or today."""
        return check_date(value, field) if value is not None else self.today()
