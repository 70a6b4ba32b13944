"""Per-request context: sessionmaker, settings and fresh DataLoaders (never module-level)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from strawberry.dataloader import DataLoader

import models as m
from resolvers import admin_areas, casework, coverage, facilities, households, partners, sites, spatial, targets
from resolvers.access import AGGREGATES, RECORDS, Role, Viewer, scoped_sessionmaker
from resolvers.paging import Page, PageArgs
from resolvers.query import SessionMaker, check_date
from resolvers.rows import (
    AdminAreaRow,
    EmploymentRow,
    FacilityRow,
    HouseholdIncomeRow,
    HouseholdRow,
    IncomeLinkageRow,
    MemberRow,
    PartnerRow,
    ProjectRow,
    ResidenceRow,
    SiteRow,
    YearFundsRow,
)


class PagingLimits(Protocol):
    """Settings group ``paging``: connection page sizes (rows)."""

    default_page_size: int
    max_page_size: int


class MonitoringLimits(Protocol):
    """Settings group ``monitoring``: the per-capita income line (yuan per person per year)."""

    per_capita_threshold: Decimal


class CaseworkLimits(Protocol):
    """Settings group ``casework``: grid level names, stages' actors and notices, missed-monitoring criteria."""

    grid_level_names: list[str]
    public_notice_days: int
    elimination_notice_days: int
    stage_actors: dict[str, list[str]]
    monitoring_lines: dict[str, dict[int, Decimal]]
    income_drop_share: Decimal
    hardship_days: int


class FeatureLimits(Protocol):
    """Settings group ``features``: featureCollection limits (features, zoom, vertices)."""

    default_limit: int
    max_limit: int
    cluster_below_zoom: int
    max_vertices: int


class PrivacyLimits(Protocol):
    """Settings group ``privacy``: the partner small-cell threshold k (households)."""

    min_cell_households: int


class RegistryLimits(Protocol):
    """Settings group ``registry``: how far outside its admin area a location or dwelling may lie (metres)."""

    location_tolerance_meters: float


class PlannerLimits(Protocol):
    """Settings group ``planner``: reads planned into SQL (schema/planner.py)."""

    enabled: bool
    verify: bool
    cache_size: int


class PlanningLimits(Protocol):
    """``anju.settings.PlanningSettings``: facility placement, scorecards, training follow-up."""

    max_picks: int
    max_candidates: int
    scorecard_distance_meters: float
    follow_up_years: int
    follow_up_interval_days: int


class SettingsLike(Protocol):
    """What the schema reads of ``anju.settings.Settings`` (schema never imports ``anju``)."""

    timezone: str
    max_query_depth: int

    @property
    def privacy(self) -> PrivacyLimits:
        """Small-cell suppression."""

    @property
    def paging(self) -> PagingLimits:
        """Page sizes."""

    @property
    def monitoring(self) -> MonitoringLimits:
        """Monitoring defaults."""

    @property
    def casework(self) -> CaseworkLimits:
        """Monitoring casework."""

    @property
    def features(self) -> FeatureLimits:
        """Map layer limits."""

    @property
    def planning(self) -> PlanningLimits:
        """Planning limits and defaults."""

    @property
    def registry(self) -> RegistryLimits:
        """Registry mutation limits."""

    @property
    def planner(self) -> PlannerLimits:
        """The read planner."""


B = TypeVar("B")
"""What a batch function returns for one key."""
K = TypeVar("K", bound=Hashable)


def _loader(fn: Callable[[SessionMaker, list[K]], Awaitable[Sequence[B]]], sm: SessionMaker) -> DataLoader[K, B]:
    """A DataLoader over ``fn(sm, keys)``: one call (one query per distinct parameter) per batch."""

    async def load(keys: list[K]) -> Sequence[B]:
        return await fn(sm, keys)

    return DataLoader(load_fn=load)


PageKey = tuple[K, PageArgs]
"""(parent key, page args): one page of a parent's child list."""


@dataclass
class Loaders:
    """One DataLoader per batch function; each runs one query per batch (per distinct parameter)."""

    admin_area: DataLoader[str, AdminAreaRow | None]
    site: DataLoader[int, SiteRow | None]
    site_stats: DataLoader[int, sites.SiteStats]
    site_origin_codes: DataLoader[int, list[str]]
    site_facilities: DataLoader[int, list[FacilityRow]]
    site_household_pages: DataLoader[PageKey[int], Page[HouseholdRow]]
    facility: DataLoader[int, FacilityRow | None]
    household: DataLoader[int, HouseholdRow | None]
    members: DataLoader[int, list[MemberRow]]
    member: DataLoader[int, MemberRow | None]
    member_employments: DataLoader[tuple[int, dt.date | None], list[EmploymentRow]]
    employment: DataLoader[int, EmploymentRow | None]
    household_employments: DataLoader[tuple[int, dt.date], list[EmploymentRow]]
    income_linkages: DataLoader[tuple[int, int | None], list[IncomeLinkageRow]]
    net_income: DataLoader[tuple[int, int], Decimal | None]
    income: DataLoader[tuple[int, int], HouseholdIncomeRow | None]
    sizes: DataLoader[tuple[int, dt.date], tuple[int, int]]
    residences: DataLoader[int, list[ResidenceRow]]
    children_pages: DataLoader[PageKey[str], Page[AdminAreaRow]]
    site_coverage: DataLoader[tuple[int, dt.date], coverage.EmploymentCoverage]
    area_coverage: DataLoader[tuple[str, dt.date], coverage.EmploymentCoverage]
    site_linkage_summary: DataLoader[tuple[int, int], coverage.IncomeLinkageSummary]
    area_linkage_summary: DataLoader[tuple[str, int], coverage.IncomeLinkageSummary]
    household_employment: DataLoader[tuple[int, dt.date], coverage.HouseholdEmployment]
    linked_income: DataLoader[tuple[int, int], coverage.LinkedIncome]
    facility_employees: DataLoader[tuple[int, dt.date], tuple[int, int]]
    facility_linked_households: DataLoader[tuple[int, int], int]
    nearby_facilities: DataLoader[
        tuple[int, float, tuple[m.FacilityKind, ...] | None, int, dt.date], list[spatial.FacilityDistance]
    ]
    nearest_by_kind: DataLoader[tuple[int, tuple[m.FacilityKind, ...], dt.date], list[tuple[int, float]]]
    partner: DataLoader[int, PartnerRow | None]
    paired_counties: DataLoader[int, list[str]]
    partner_projects: DataLoader[tuple[int, int | None], list[ProjectRow]]
    partner_funds: DataLoader[int, list[YearFundsRow]]
    grid: DataLoader[int, casework.GridRow | None]
    case: DataLoader[int, casework.CaseRow | None]
    case_steps: DataLoader[int, list[casework.StepRow]]
    case_measures: DataLoader[int, list[dict[str, Any]]]
    case_visits: DataLoader[int, list[dict[str, Any]]]
    household_cases: DataLoader[int, list[casework.CaseRow]]
    target_actual: DataLoader[tuple[int, str | None, dt.date], targets.Actual]
    project_targets: DataLoader[int, list[targets.TargetRow]]


def make_loaders(sm: SessionMaker, agg: SessionMaker | None = None) -> Loaders:
    """Fresh loaders for one request.

    Records through ``sm``; area aggregates (what partners may see) through ``agg``, the viewer's aggregate scope (``sm`` when
    omitted).
    """
    agg = agg or sm

    return Loaders(
        admin_area=_loader(admin_areas.admin_areas_by_codes, sm),
        site=_loader(sites.sites_by_ids, sm),
        site_stats=_loader(sites.site_stats_by_ids, sm),
        site_origin_codes=_loader(sites.origin_codes_by_site_ids, sm),
        site_facilities=_loader(facilities.facilities_by_site_ids, sm),
        site_household_pages=_loader(households.household_pages_by_site_ids, sm),
        facility=_loader(facilities.facilities_by_ids, sm),
        household=_loader(households.households_by_ids, sm),
        members=_loader(households.members_by_household_ids, sm),
        member=_loader(households.members_by_ids, sm),
        member_employments=_loader(households.employments_by_member_ids, sm),
        employment=_loader(households.employments_by_ids, sm),
        household_employments=_loader(households.employments_by_household_ids, sm),
        income_linkages=_loader(households.income_linkages_by_household_ids, sm),
        net_income=_loader(households.net_incomes_by_household_ids, sm),
        income=_loader(households.incomes_by_household_ids, sm),
        sizes=_loader(households.sizes_by_household_ids, sm),
        residences=_loader(households.residences_by_household_ids, sm),
        children_pages=_loader(admin_areas.children_pages, sm),
        site_coverage=_loader(coverage.employment_coverage_by_site_ids, sm),
        area_coverage=_loader(coverage.employment_coverage_by_area_codes, agg),
        site_linkage_summary=_loader(coverage.income_linkage_summary_by_site_ids, sm),
        area_linkage_summary=_loader(coverage.income_linkage_summary_by_area_codes, agg),
        household_employment=_loader(coverage.household_employment_by_ids, sm),
        linked_income=_loader(coverage.linked_income_by_household_ids, sm),
        facility_employees=_loader(coverage.facility_employees, sm),
        facility_linked_households=_loader(coverage.facility_linked_households, sm),
        nearby_facilities=_loader(spatial.nearby_facilities_by_site_ids, sm),
        nearest_by_kind=_loader(spatial.nearest_by_kind_by_site_ids, sm),
        partner=_loader(partners.partners_by_ids, sm),
        paired_counties=_loader(partners.paired_counties_by_partner_ids, sm),
        partner_projects=_loader(partners.projects_by_partner_ids, sm),
        partner_funds=_loader(partners.funds_by_year_by_partner_ids, sm),
        grid=_loader(casework.grids_by_ids, sm),
        case=_loader(casework.cases_by_ids, sm),
        case_steps=_loader(casework.steps_by_case_ids, sm),
        case_measures=_loader(lambda sm_, ids: casework.rows_of(sm_, "assistance_measure", "case_id", ids, "start_on"), sm),
        case_visits=_loader(lambda sm_, ids: casework.rows_of(sm_, "follow_up_visit", "case_id", ids, "visited_on"), sm),
        household_cases=_loader(casework.cases_by_household_ids, sm),
        target_actual=_loader(targets.actuals, agg),
        project_targets=_loader(targets.targets_by_project_ids, sm),
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
    raw_json: bool = False
    """Leave planned root fields as JSON text (``schema.planner.RawJSON``) in ``data``: the HTTP view writes them out as
    they are; everyone else gets them decoded."""
    live: Any = None
    """The WebSocket connection of a subscription (``anju.live.LiveConnection``, a ``schema.live.LiveFeed``); None over
    HTTP."""
    connection_params: dict[str, Any] | None = None
    """The ``connection_init`` payload of a WebSocket (strawberry sets it)."""
    aggregate_sessionmaker: SessionMaker = field(init=False)
    loaders: Loaders = field(init=False)
    _base: SessionMaker = field(init=False)
    operation: tuple[str, str | None] | None = field(default=None, init=False)
    """The executed operation's type (``query``/``mutation``/``subscription``) and name, once parsed (``NoteOperation``);
    for the request log and metrics."""

    def __post_init__(self) -> None:
        self._base = self.sessionmaker
        self._scope()

    def become(self, viewer: Viewer) -> None:
        """Serve ``viewer`` from now on (a WebSocket authenticated at ``connection_init``): its scopes, fresh loaders."""
        self.viewer = viewer
        self._scope()

    def _scope(self) -> None:
        base = self._base
        self.sessionmaker = scoped_sessionmaker(base, self.viewer, RECORDS)
        # only partners have a wider aggregate scope than their records scope
        self.aggregate_sessionmaker = (
            scoped_sessionmaker(base, self.viewer, AGGREGATES) if self.viewer.role is Role.PARTNER else self.sessionmaker
        )
        self.loaders = make_loaders(self.sessionmaker, self.aggregate_sessionmaker)

    @property
    def suppression_k(self) -> int | None:
        """K of small-cell suppression for this viewer (partners), None when aggregates are shown whole."""
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
