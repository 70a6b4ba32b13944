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

from resolvers import admin_areas, coverage, facilities, households, partners, sites, spatial
from resolvers.access import AGGREGATES, RECORDS, Role, Viewer, scoped_sessionmaker
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


class PrivacyLimits(Protocol):
    min_cell_households: int


class SettingsLike(Protocol):
    """What the schema reads of ``anju.settings.Settings`` (schema never imports ``anju``)."""

    timezone: str
    max_query_depth: int

    @property
    def privacy(self) -> PrivacyLimits: ...

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
    partner: DataLoader[int, Any]
    paired_counties: DataLoader[int, Any]
    partner_projects: DataLoader[Any, Any]
    partner_funds: DataLoader[int, Any]


def make_loaders(sm: SessionMaker, agg: SessionMaker | None = None) -> Loaders:
    """Fresh loaders for one request: records through ``sm``; area aggregates (what partners may see)
    through ``agg``, the viewer's aggregate scope (``sm`` when omitted)."""

    def dl(fn: Any, via: Any = sm) -> DataLoader[Any, Any]:
        return DataLoader(load_fn=partial(fn, via))

    agg = agg or sm

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
        area_coverage=dl(coverage.employment_coverage_by_area_codes, agg),
        site_linkage_summary=dl(coverage.income_linkage_summary_by_site_ids),
        area_linkage_summary=dl(coverage.income_linkage_summary_by_area_codes, agg),
        household_employment=dl(coverage.household_employment_by_ids),
        linked_income=dl(coverage.linked_income_by_household_ids),
        facility_employees=dl(coverage.facility_employees),
        facility_linked_households=dl(coverage.facility_linked_households),
        nearby_facilities=dl(spatial.nearby_facilities_by_site_ids),
        nearest_by_kind=dl(spatial.nearest_by_kind_by_site_ids),
        partner=dl(partners.partners_by_ids),
        paired_counties=dl(partners.paired_counties_by_partner_ids),
        partner_projects=dl(partners.projects_by_partner_ids),
        partner_funds=dl(partners.funds_by_year_by_partner_ids),
    )


@dataclass
class Context:
    """What every resolver gets: ``info.context``.

    Built with the service's (unscoped) sessionmaker and the authenticated ``viewer``; afterwards
    ``sessionmaker`` is the viewer's records scope and ``aggregate_sessionmaker`` its aggregate
    scope (``resolvers.access``), so no resolver can reach an unscoped session.
    """

    sessionmaker: SessionMaker
    settings: SettingsLike
    viewer: Viewer
    id_number_key: bytes = b""
    """HMAC key of ID numbers (``anju.auth.keys``); empty: ID numbers cannot be recorded."""
    aggregate_sessionmaker: SessionMaker = field(init=False)
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        base = self.sessionmaker
        self.sessionmaker = scoped_sessionmaker(base, self.viewer, RECORDS)
        # only partners have a wider aggregate scope than their records scope
        self.aggregate_sessionmaker = (
            scoped_sessionmaker(base, self.viewer, AGGREGATES) if self.viewer.role is Role.PARTNER else self.sessionmaker
        )
        self.loaders = make_loaders(self.sessionmaker, self.aggregate_sessionmaker)

    @property
    def suppression_k(self) -> int | None:
        """k of small-cell suppression for this viewer (partners), None when aggregates are shown whole."""
        return self.settings.privacy.min_cell_households if self.viewer.suppresses_small_cells else None

    def fresh_loaders(self) -> None:
        """Drop everything the request's loaders cached (after a write)."""
        self.loaders = make_loaders(self.sessionmaker, self.aggregate_sessionmaker)

    def today(self) -> dt.date:
        """The default ``asOf``: today in the settings' zone (Asia/Shanghai)."""
        return dt.datetime.now(ZoneInfo(self.settings.timezone)).date()

    def as_of(self, value: dt.date | None, field: str = "asOf") -> dt.date:
        """``value`` checked to lie in 1900..2100 (BAD_USER_INPUT naming ``field``), or today."""
        return check_date(value, field) if value is not None else self.today()
