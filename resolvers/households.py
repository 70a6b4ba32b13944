"""Households (搬迁户), members, employments, income linkages and incomes.

The one query-building place for each of these tables' reads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import BigInteger, ColumnElement, and_, case, exists, literal_column, null, or_, select
from sqlalchemy.orm import InstrumentedAttribute

import models as m
from resolvers.access import hidden, masked
from resolvers.errors import InvalidInput
from resolvers.geofilters import SpatialFilter, area_condition
from resolvers.paging import Page, PageArgs
from resolvers.query import (
    AnyRow,
    AnySelect,
    SessionMaker,
    fetch_page,
    geojson,
    lists_by_keys,
    pages_by_parents,
    rows_by_keys,
)
from resolvers.rows import EmploymentRow, HouseholdIncomeRow, HouseholdRow, IncomeLinkageRow, MemberRow, ResidenceRow
from resolvers.sites import site_stats_by_ids

KIND = "household"
H, M, E, L, HI = m.Household, m.Member, m.Employment, m.IncomeLinkage, m.HouseholdIncome
K = TypeVar("K", bound=Hashable)
P = TypeVar("P", bound=Hashable)
R = TypeVar("R")


@dataclass(frozen=True)
class HouseholdFilter:
    """``HouseholdFilter`` of API.md (spatial and employment members come with later issues)."""

    site_id: int | None = None
    area_code: str | None = None
    spatial: SpatialFilter | None = None
    zero_employment: bool | None = None
    as_of: dt.date | None = None


def household_select() -> AnySelect:
    """Every read of households starts here (a viewer's row scope is applied by PostgreSQL: resolvers.access).

    Row: id, code, admin_code, county_code, site_id, origin_admin_code, dwelling (GeoJSON Point
    text, SRID 4326, or None), relocated_on, poverty_status, monitoring_category, risk_eliminated,
    version, member_count (size), labor_force_count (members with labor_force; both kept by triggers).
    """
    return select(
        H.id,
        H.code,
        H.admin_code,
        H.county_code,
        H.site_id,
        H.origin_admin_code,
        geojson(H.dwelling).label("dwelling"),
        H.relocated_on,
        H.poverty_status,
        H.monitoring_category,
        H.risk_eliminated,
        H.version,
        H.member_count,
        H.labor_force_count,
    )


def member_select() -> AnySelect:
    """Every read of members starts here.

    Row: id, household_id, name, gender, birth_year, relation, labor_force, skills, phone, id_number_last4, joined_on,
    join_reason, left_on, leave_reason (a member on D when joined_on <= D < left_on, NULL bounds open). Names and phones come
    masked (张*, 138****5678) and the ID digits null unless the transaction may see personal data (``resolvers.access``);
    ``id_number_hash`` is never read out.
    """
    return select(
        M.id,
        M.household_id,
        masked(M.name, "anju_mask_name").label("name"),
        M.gender,
        M.birth_year,
        M.relation,
        M.labor_force,
        M.skills,
        masked(M.phone, "anju_mask_phone").label("phone"),
        hidden(M.id_number_last4).label("id_number_last4"),
        M.joined_on,
        M.join_reason,
        M.left_on,
        M.leave_reason,
    )


def employment_select() -> AnySelect:
    """Every read of employments starts here.

    Row: id, member_id, household_id, channel, facility_id, employer_name, workplace (GeoJSON Point text or None),
    outbound_region, start_on, end_on, monthly_wage (yuan Decimal), stable.
    """
    return select(
        E.id,
        E.member_id,
        E.household_id,
        E.channel,
        E.facility_id,
        E.employer_name,
        geojson(E.workplace).label("workplace"),
        E.outbound_region,
        E.start_on,
        E.end_on,
        E.monthly_wage,
        E.stable,
    )


def income_linkage_select() -> AnySelect:
    """Every read of income linkages starts here.

    Row: id, household_id, facility_id, mechanism, year, amount (yuan Decimal).
    """
    return select(L.id, L.household_id, L.facility_id, L.mechanism, L.year, L.amount)


def active_on(as_of: dt.date) -> ColumnElement[bool]:
    """API.md: an employment is active on D when start_on <= D and (end_on is null or end_on >= D)."""
    return and_(E.start_on <= as_of, or_(E.end_on.is_(None), E.end_on >= as_of))


def filtered_households(f: HouseholdFilter | None) -> AnySelect:
    """``household_select()`` narrowed by ``f`` (conditions ANDed): the list's rows, unordered.

    Raises:
        InvalidInput: ``zeroEmployment`` without ``asOf``.
    """
    q = household_select()
    if f is None:
        return q
    if f.site_id is not None:
        q = q.where(H.site_id == f.site_id)
    if f.area_code is not None:
        q = q.where(area_condition(H.admin_code, f.area_code, "filter.areaCode"))
    if f.spatial is not None:
        q = q.where(*f.spatial.conditions(H.dwelling))
    if f.zero_employment is not None:
        if f.as_of is None:
            raise InvalidInput("filter.asOf: required with zeroEmployment", field="filter.asOf")
        zero = zero_employment(f.as_of)
        q = q.where(zero if f.zero_employment else ~zero)
    return q


def zero_employment(as_of: dt.date) -> ColumnElement[bool]:
    """SQL predicate on ``household``: 零就业家庭 on ``as_of``.

    Has labor force (members present on ``as_of`` flagged labor force) and none of its members present employed on
    ``as_of`` (docs/api.md), read from the trigger-kept household_status (one segment lookup per household).
    """
    st = m.HouseholdStatus
    return exists().where(
        st.household_id == H.id, st.valid_from <= as_of, st.valid_to > as_of, st.labor_force > 0, st.employed == 0
    )


async def households_page(sm: SessionMaker, f: HouseholdFilter | None, args: PageArgs) -> Page[HouseholdRow]:
    """Households matching ``f`` (conditions ANDed), by id.

    Raises:
        InvalidInput: a malformed filter member (named in the message).
    """
    return await fetch_page(sm, filtered_households(f), H.id, args, kind=KIND, build=HouseholdRow.of)


async def households_by_ids(sm: SessionMaker, ids: Sequence[int]) -> list[HouseholdRow | None]:
    """Batch: households aligned with ``ids`` (None when missing)."""
    return await rows_by_keys(sm, household_select(), H.id, ids, build=HouseholdRow.of)


async def _household_counts(sm: SessionMaker, site_ids: list[int]) -> dict[int, int]:
    """TotalCount of each site's households: the same grouped count as ``RelocationSite.householdCount``."""
    stats = await site_stats_by_ids(sm, site_ids)
    return {sid: st.household_count for sid, st in zip(site_ids, stats, strict=True)}


async def household_pages_by_site_ids(
    sm: SessionMaker,
    keys: Sequence[tuple[int, PageArgs]],
) -> list[Page[HouseholdRow]]:
    """Batch: for each (site id, page args), that page of the site's households, by id."""
    return await pages_by_parents(
        sm,
        household_select(),
        H.site_id,
        H.id,
        keys,
        kind=KIND,
        parent_type=BigInteger,
        count_by_parents=lambda ps: _household_counts(sm, ps),
        build=HouseholdRow.of,
    )


async def members_by_household_ids(sm: SessionMaker, ids: Sequence[int]) -> list[list[MemberRow]]:
    """Batch: each household's members, by member id."""
    return await lists_by_keys(sm, member_select(), M.household_id, ids, build=MemberRow.of, order=[M.id])


async def members_by_ids(sm: SessionMaker, ids: Sequence[int]) -> list[MemberRow | None]:
    """Batch: members aligned with ``ids``."""
    return await rows_by_keys(sm, member_select(), M.id, ids, build=MemberRow.of)


async def employments_by_ids(sm: SessionMaker, ids: Sequence[int]) -> list[EmploymentRow | None]:
    """Batch: employments aligned with ``ids`` (None when missing)."""
    return await rows_by_keys(sm, employment_select(), E.id, ids, build=EmploymentRow.of)


async def employments_by_member_ids(
    sm: SessionMaker,
    keys: Sequence[tuple[int, dt.date | None]],
) -> list[list[EmploymentRow]]:
    """Batch: each (member id.

    As_of) → that member's employments active on ``as_of`` (all of them when ``as_of`` is None), by start_on then id. One query
    per distinct ``as_of``.
    """
    return await _by_key_and_param(
        sm,
        keys,
        lambda as_of: employment_select().where(active_on(as_of)) if as_of else employment_select(),
        E.member_id,
        EmploymentRow.of,
        [E.start_on, E.id],
    )


async def employments_by_household_ids(
    sm: SessionMaker,
    keys: Sequence[tuple[int, dt.date]],
) -> list[list[EmploymentRow]]:
    """Batch: each (household id.

    As_of) → the active employments of all its members on ``as_of`` (API.md ``Household.employments``), by member then start_on.
    """

    def q(as_of: dt.date) -> AnySelect:
        return employment_select().where(active_on(as_of))

    return await _by_key_and_param(sm, keys, q, E.household_id, EmploymentRow.of, [E.member_id, E.start_on, E.id])


async def income_linkages_by_household_ids(
    sm: SessionMaker,
    keys: Sequence[tuple[int, int | None]],
) -> list[list[IncomeLinkageRow]]:
    """Batch: each (household id, year) → its income linkages of that year (every year when None), by year then id."""
    return await _by_key_and_param(
        sm,
        keys,
        lambda year: income_linkage_select().where(L.year == year) if year is not None else income_linkage_select(),
        L.household_id,
        IncomeLinkageRow.of,
        [L.year, L.id],
    )


async def net_incomes_by_household_ids(
    sm: SessionMaker,
    keys: Sequence[tuple[int, int]],
) -> list[Decimal | None]:
    """Batch: each (household id, year) → surveyed net income (yuan Decimal) or None when not surveyed."""

    def net_income(r: AnyRow) -> Decimal:
        return Decimal(r.net_income)

    lists = await _by_key_and_param(
        sm, keys, lambda year: select(HI.household_id, HI.net_income).where(HI.year == year), HI.household_id, net_income, []
    )
    return [lst[0] if lst else None for lst in lists]


def status_on(household_id: Any, as_of: dt.date) -> AnySelect:
    """The ``household_status`` segment holding ``as_of`` (valid_from <= as_of < valid_to), every column.

    Args:
        household_id: SQL expression or value of the household (None: every household's segment).
        as_of: the date asked.

    Returns:
        Rows of (household_id, valid_from, valid_to, members, labor_force, employed, stably_employed, …): persons on
        ``as_of``, kept by statement triggers from member, residence and employment rows (migrations/sql/household_status.sql).
    """
    st = m.HouseholdStatus
    q = select(st).where(st.valid_from <= as_of, st.valid_to > as_of)
    return q if household_id is None else q.where(st.household_id == household_id)


async def sizes_by_household_ids(sm: SessionMaker, keys: Sequence[tuple[int, dt.date]]) -> list[tuple[int, int]]:
    """Batch: each (household id, as_of) → (members present, of them labor force) on ``as_of``, persons.

    Source: the trigger-kept household_status segment containing ``as_of`` (members joined_on <= D < left_on); (0, 0)
    for a missing household.
    """
    st = m.HouseholdStatus

    def q(as_of: dt.date) -> AnySelect:
        return status_on(None, as_of).with_only_columns(st.household_id, st.members, st.labor_force)

    lists = await _by_key_and_param(sm, keys, q, st.household_id, lambda r: (int(r.members), int(r.labor_force)), [])
    return [lst[0] if lst else (0, 0) for lst in lists]


async def residences_by_household_ids(sm: SessionMaker, ids: Sequence[int]) -> list[list[ResidenceRow]]:
    """Batch: each household's residence rows (household_residence) by valid_from; dwelling GeoJSON Point text (4326).

    valid_from None for the first row of a household (since before its records begin, -infinity in the table).
    """
    R = m.HouseholdResidence
    q = select(
        R.household_id,
        case((R.valid_from > literal_column("date '-infinity'"), R.valid_from), else_=null()).label("valid_from"),
        R.site_id,
        R.admin_code,
        geojson(R.dwelling).label("dwelling"),
    )
    return await lists_by_keys(sm, q, R.household_id, ids, build=ResidenceRow.of, order=[R.valid_from])


async def incomes_by_household_ids(sm: SessionMaker, keys: Sequence[tuple[int, int]]) -> list[HouseholdIncomeRow | None]:
    """Batch: each (household id, year) → its surveyed income row (yuan, household size, survey date) or None."""
    lists = await _by_key_and_param(
        sm,
        keys,
        lambda year: select(HI.household_id, HI.year, HI.net_income, HI.household_size, HI.surveyed_on).where(HI.year == year),
        HI.household_id,
        HouseholdIncomeRow.of,
        [],
    )
    return [lst[0] if lst else None for lst in lists]


async def _by_key_and_param(
    sm: SessionMaker,
    keys: Sequence[tuple[K, P]],
    make: Callable[[P], AnySelect],
    key_col: InstrumentedAttribute[Any],
    build: Callable[[AnyRow], R],
    order: Sequence[Any],
) -> list[list[R]]:
    """Group (key, param) pairs by param and run one batched list query per distinct param."""
    by_param: dict[P, list[K]] = {}
    for k, p in keys:
        by_param.setdefault(p, []).append(k)
    out: dict[tuple[K, P], list[R]] = {}
    for p, ks in by_param.items():
        lists = await lists_by_keys(sm, make(p), key_col, ks, build=build, order=order)
        for k, lst in zip(ks, lists, strict=True):
            out[(k, p)] = lst
    return [out[(k, p)] for k, p in keys]
