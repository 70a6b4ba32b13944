"""Employment coverage (就业覆盖), income linkages (利益联结) and return-to-poverty monitoring (防返贫监测).

Grouped SQL over households, members, employments, linkages and incomes.

Every aggregate is one grouped statement per batch, whatever the number of households
(``resolvers/sql/*.sql``). Definitions are API.md's "Definitions (exact)":
- an employment is active on D when start_on <= D and (end_on is null or end_on >= D);
- a household has labor force when >= 1 member has labor_force; it is covered when it has labor
  force and >= 1 member is stably employed on D; zero-employment when it has labor force and no
  member is employed on D;
- per-capita net income = net_income(year) / size, compared exactly, shown rounded half-up to 0.01.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

from sqlalchemy import Numeric, and_, func, literal, select, text
from sqlalchemy.orm import aliased

import models as m
from resolvers import sql as sql_files
from resolvers.households import active_on, household_select, status_on, zero_employment
from resolvers.paging import Page, PageArgs
from resolvers.query import AnyRow, AnySelect, SessionMaker, area_code_prefix, fetch_page, under_area
from resolvers.rows import HouseholdRow

H, M, E, L, HI = m.Household, m.Member, m.Employment, m.IncomeLinkage, m.HouseholdIncome
ST = m.HouseholdStatus
CENT = Decimal("0.01")
K = TypeVar("K", bound=Hashable)
P = TypeVar("P", bound=Hashable)

# Allow-listed scope fragments: the household_status segment, on the scope's date, of every household that lived in
# one of the groups asked (:keys) then, with its group_key. The date is :as_of for employment figures and the year's
# end (anju_year_end: 31 December, or today while the year runs) for a year's income linkages: a linkage counts for the
# site or area the household lived in at the end of its year. Area keys are code prefixes of one length (:plen; see
# area_code_prefix), so households are picked by one indexed/scanned predicate instead of a LIKE join; sites and
# counties use household_status's (site_id, valid_from) and (county_code, valid_from) indexes.
_SEGMENT = "st.valid_from <= {on} AND {on} < st.valid_to"
_SCOPES = {
    "site": "SELECT CAST(st.site_id AS text) AS group_key, st.* FROM household_status st "
    f"WHERE st.site_id = ANY(CAST(:keys AS bigint[])) AND {_SEGMENT}",
    "county": "SELECT st.county_code AS group_key, st.* FROM household_status st "
    f"WHERE st.county_code = ANY(CAST(:keys AS text[])) AND {_SEGMENT}",
    "area": "SELECT left(st.admin_code, :plen) AS group_key, st.* FROM household_status st "
    f"WHERE left(st.admin_code, :plen) = ANY(CAST(:keys AS text[])) AND {_SEGMENT}",
}
SCOPES_ON_DATE = {name: q.replace("{on}", "CAST(:as_of AS date)") for name, q in _SCOPES.items()}
"""Scopes of figures on a date (bound ``:as_of``)."""
SCOPES_IN_YEAR = {name: q.replace("{on}", "anju_year_end(CAST(:year AS integer))") for name, q in _SCOPES.items()}
"""Scopes of a year's figures (bound ``:year``)."""
SQL_SCOPES = {"employment_coverage.sql": SCOPES_ON_DATE, "income_linkage_summary.sql": SCOPES_IN_YEAR}


# household_status has one column per channel, named by the channel's value: the SQL's per-channel
# columns are written out from the enum (identifiers from the one list of channels, never input).
CHANNEL_COLUMNS = {
    "{channel_persons}": ",\n       ".join(f"coalesce(sum(st.{c.value}), 0) AS {c.value}" for c in m.EmploymentChannel) + ",",
    "{channel_households}": ",\n       ".join(
        f"count(*) FILTER (WHERE st.{c.value} > 0) AS hh_{c.value}" for c in m.EmploymentChannel
    ),
}


def _sql(name: str, scope: str) -> Any:
    body = sql_files.read(name)
    for placeholder, columns in (("{scope}", SQL_SCOPES[name][scope]), *CHANNEL_COLUMNS.items()):
        body = body.replace(placeholder, columns)
    return text(body)


def round_yuan(x: Decimal) -> Decimal:
    """Round yuan half-up to 0.01 (API.md: per-capita amounts)."""
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class ChannelCount:
    """Distinct employed members whose active employments include ``channel``, and their households."""

    channel: m.EmploymentChannel
    count: int
    households: int = 0


@dataclass(frozen=True, slots=True)
class EmploymentCoverage:
    """API.md ``EmploymentCoverage``; ``coverage_rate`` = covered / with labor force, None if 0."""

    households: int
    households_with_labor_force: int
    households_covered: int
    zero_employment_households: int
    employed_persons: int
    stably_employed_persons: int
    by_channel: list[ChannelCount]
    households_employed: int = 0
    households_stably_employed: int = 0

    @property
    def coverage_rate(self) -> float | None:
        """households_covered ÷ households_with_labor_force (0..1); None when no household has labor force."""
        if self.households_with_labor_force == 0:
            return None
        return self.households_covered / self.households_with_labor_force


@dataclass(frozen=True, slots=True)
class MechanismAmount:
    """Yuan of one linkage mechanism, and the households receiving it."""

    mechanism: m.LinkageMechanism
    amount: Decimal
    households: int


@dataclass(frozen=True, slots=True)
class IncomeLinkageSummary:
    """API.md ``IncomeLinkageSummary``: households with >= 1 linkage in the year, total yuan, by mechanism."""

    households_linked: int
    total: Decimal
    by_mechanism: list[MechanismAmount]


@dataclass(frozen=True, slots=True)
class FacilityAmount:
    """Yuan a facility paid to the group's households in a year, and how many households."""

    facility_id: int
    amount: Decimal
    households: int


@dataclass(frozen=True, slots=True)
class HouseholdEmployment:
    """One household's employment status on a date."""

    has_labor_force: bool
    employed_count: int
    stably_employed_count: int

    @property
    def is_zero_employment(self) -> bool:
        """零就业家庭: has labor force and no member employed on the date (DESIGN §3)."""
        return self.has_labor_force and self.employed_count == 0


@dataclass(frozen=True, slots=True)
class LinkedIncome:
    """API.md ``LinkedIncome``: linkage yuan of the year, summed and by mechanism, and per capita.

    ``household_size`` is the size that year's per-capita figures divide by (SQL ``anju_year_size``: the size recorded
    with the year's income, else the members present at the year's end); None when nobody was.
    """

    total: Decimal
    by_mechanism: list[MechanismAmount]
    household_size: int | None

    @property
    def per_capita(self) -> Decimal | None:
        """Total ÷ household_size, rounded half-up to 0.01 yuan; None without a size."""
        return per_capita(self.total, self.household_size or 0)


def per_capita(total: Decimal, size: int) -> Decimal | None:
    """API.md: total ÷ size, rounded half-up to 0.01 yuan; None for a household of no members."""
    return round_yuan(total / size) if size else None


def _mechanisms(raw: str) -> list[MechanismAmount]:
    return [
        MechanismAmount(m.LinkageMechanism(x["mechanism"]), round_yuan(Decimal(str(x["amount"]))), int(x.get("households", 0)))
        for x in json.loads(raw, parse_float=Decimal)
    ]


def _group(keys: Sequence[tuple[K, P]]) -> dict[P, list[K]]:
    """Keys grouped by their parameter (one statement per distinct ``as_of`` or ``year``)."""
    by: dict[P, list[K]] = {}
    for k, p in keys:
        by.setdefault(p, []).append(k)
    return by


WIDE_AREA_HINTS = {"enable_nestloop": "off", "work_mem": "64MB"}
"""Planner settings of a statement over a province or prefecture (prefix of 2 or 4 digits): nearly every household
qualifies, but PostgreSQL cannot estimate ``left(admin_code, n)``; steer it to hash joins."""


async def _wide_scope_hints(s: Any, name: str, extra: dict[str, Any]) -> None:
    """``WIDE_AREA_HINTS`` for this transaction when the statement is over a province or prefecture."""
    if name == "area" and extra.get("plen", 99) <= 4:
        for setting, value in WIDE_AREA_HINTS.items():
            await s.execute(text("SELECT set_config(:n, :v, true)"), {"n": setting, "v": value})


def area_scope(status: Any, code: str) -> tuple[list[Any], dict[str, str]]:
    """The household_status segments under one area, as the scope fragments above pick them, for the read planner.

    Args:
        status: ``models.HouseholdStatus`` (or an alias of it).
        code: the area's admin code (6, 9 or 12 digits).

    Returns:
        (conditions on ``status``, planner settings for the statement: ``WIDE_AREA_HINTS`` for a province or prefecture).

    Raises:
        InvalidInput: a malformed code.
    """
    prefix = area_code_prefix(code, "code")
    if len(prefix) == 6:  # the "county" fragment
        return [status.county_code == prefix], {}
    return [func.left(status.admin_code, len(prefix)) == prefix], (dict(WIDE_AREA_HINTS) if len(prefix) <= 4 else {})


def _scoped(scope: str, keys: Sequence[str]) -> list[tuple[str, dict[str, Any], list[str]]]:
    """(scope fragment name, extra params, keys) per statement: sites in one; areas one per prefix length."""
    if scope == "site":
        return [("site", {}, list(set(keys)))]
    by_len: dict[int, set[str]] = {}
    for k in keys:
        by_len.setdefault(len(k), set()).add(k)
    return [("county", {}, sorted(ks)) if n == 6 else ("area", {"plen": n}, sorted(ks)) for n, ks in by_len.items()]


def _channels(r: AnyRow) -> list[ChannelCount]:
    """Per channel with employed persons.

    Persons (column named as the channel's value) and their households (``hh_`` + value), from a row of employment_coverage.sql.
    """
    cols = r._mapping
    return [ChannelCount(ch, int(cols[ch.value]), int(cols["hh_" + ch.value])) for ch in m.EmploymentChannel if cols[ch.value]]


async def _grouped_rows(
    sm: SessionMaker,
    sql_name: str,
    scope: str,
    keys: Sequence[tuple[str, P]],
    param: str,
) -> list[tuple[P, AnyRow]]:
    """Rows of ``resolvers/sql/<sql_name>`` for (group key, parameter) pairs.

    One statement per distinct parameter (``as_of`` or ``year``) and scope fragment; (parameter, row) pairs.
    """
    out: list[tuple[P, AnyRow]] = []
    async with sm() as s:
        for value, ks in _group(keys).items():
            for name, extra, group in _scoped(scope, ks):
                params: dict[str, Any] = {"keys": [int(k) for k in group] if name == "site" else group, param: value, **extra}
                await _wide_scope_hints(s, name, extra)
                out += [(value, r) for r in await s.execute(_sql(sql_name, name), params)]
    return out


async def _coverage(
    sm: SessionMaker,
    scope: str,
    keys: Sequence[tuple[str, dt.date]],
) -> dict[tuple[str, dt.date], EmploymentCoverage]:
    return {
        (r.group_key, as_of): EmploymentCoverage(
            households=int(r.households),
            households_with_labor_force=int(r.households_with_labor_force),
            households_covered=int(r.households_covered),
            zero_employment_households=int(r.zero_employment),
            employed_persons=int(r.employed_persons),
            stably_employed_persons=int(r.stably_employed_persons),
            by_channel=_channels(r),
            households_employed=int(r.households_employed),
            households_stably_employed=int(r.households_stably_employed),
        )
        for as_of, r in await _grouped_rows(sm, "employment_coverage.sql", scope, keys, "as_of")
    }


async def employment_coverage_by_site_ids(
    sm: SessionMaker,
    keys: Sequence[tuple[int, dt.date]],
) -> list[EmploymentCoverage]:
    """Batch: coverage of each (site id, as_of) over the households living at the site.

    Returns:
        EmploymentCoverage per key (all zeros for a site without households). One statement per
        distinct ``as_of``. Source: resolvers/sql/employment_coverage.sql.
    """
    found = await _coverage(sm, "site", [(str(k), d) for k, d in keys])
    return [found[(str(k), d)] for k, d in keys]


async def employment_coverage_by_area_codes(
    sm: SessionMaker,
    keys: Sequence[tuple[str, dt.date]],
) -> list[EmploymentCoverage]:
    """Batch: coverage of each (admin code.

    As_of) over every household whose admin code lies under the area (relocated or not). Raises InvalidInput for a malformed code.
    """
    prefixed = [(area_code_prefix(c, "code"), d) for c, d in keys]
    found = await _coverage(sm, "area", prefixed)
    return [found[k] for k in prefixed]


async def _summary(
    sm: SessionMaker,
    scope: str,
    keys: Sequence[tuple[str, int]],
) -> dict[tuple[str, int], IncomeLinkageSummary]:
    return {
        (r.group_key, year): IncomeLinkageSummary(
            households_linked=int(r.households_linked),
            total=round_yuan(Decimal(r.total)),
            by_mechanism=_mechanisms(r.by_mechanism),
        )
        for year, r in await _grouped_rows(sm, "income_linkage_summary.sql", scope, keys, "year")
    }


async def income_linkage_summary_by_site_ids(
    sm: SessionMaker,
    keys: Sequence[tuple[int, int]],
) -> list[IncomeLinkageSummary]:
    """Batch: linkage summary of each (site id, year) over the site's households; yuan."""
    found = await _summary(sm, "site", [(str(k), y) for k, y in keys])
    return [found[(str(k), y)] for k, y in keys]


async def income_linkage_summary_by_area_codes(
    sm: SessionMaker,
    keys: Sequence[tuple[str, int]],
) -> list[IncomeLinkageSummary]:
    """Batch: linkage summary of each (admin code, year) over every household under the area; yuan."""
    prefixed = [(area_code_prefix(c, "code"), y) for c, y in keys]
    found = await _summary(sm, "area", prefixed)
    return [found[k] for k in prefixed]


def _one_group(scope: str, key: str) -> tuple[str, dict[str, Any]]:
    """(SCOPES fragment, params) of one site (key = site id) or area (key = admin code)."""
    if scope != "area":
        return "site", {"keys": [int(key)]}
    prefix = area_code_prefix(key, "code")
    return ("county", {"keys": [prefix]}) if len(prefix) == 6 else ("area", {"keys": [prefix], "plen": len(prefix)})


async def top_facilities(
    sm: SessionMaker,
    scope: str,
    key: str,
    year: int,
    first: int | None,
) -> list[FacilityAmount]:
    """The facilities paying the most linkage yuan to the group's households in ``year``.

    At most ``first`` (every one when None), ties by facility id.

    ``scope`` is "site" (key = site id) or "area" (key = admin code).
    """
    name, params = _one_group(scope, key)
    q = text(
        f"WITH scope AS ({SCOPES_IN_YEAR[name]}) "
        "SELECT l.facility_id, sum(l.amount) AS amount, count(DISTINCT l.household_id) AS households "
        "FROM scope s JOIN income_linkage l ON l.household_id = s.household_id "
        "WHERE l.year = :year AND l.facility_id IS NOT NULL "
        "GROUP BY l.facility_id ORDER BY sum(l.amount) DESC, l.facility_id LIMIT :first"
    )  # NULL: no limit
    async with sm() as s:
        rows = await s.execute(q, {**params, "year": year, "first": first})
        return [FacilityAmount(int(r.facility_id), round_yuan(r.amount), int(r.households)) for r in rows]


@dataclass(frozen=True, slots=True)
class LinkageCell:
    """One cell of a linkage breakdown.

    A mechanism (its value) or a facility (its id as text); ``key`` None = the linkages without a facility. Yuan and distinct
    households.
    """

    key: str | None
    amount: Decimal
    households: int


BREAKDOWN = {"mechanism": "CAST(l.mechanism AS text)", "facility": "CAST(l.facility_id AS text)"}


async def linkage_cells(
    sm: SessionMaker,
    scope: str,
    key: str,
    year: int,
    dimension: str,
) -> list[LinkageCell]:
    """Every cell of the group's linkages of ``year`` by ``dimension`` ("mechanism" or "facility").

    Largest amount first; one grouped statement.
    """
    name, params = _one_group(scope, key)
    col = BREAKDOWN[dimension]
    q = text(
        f"WITH scope AS ({SCOPES_IN_YEAR[name]}) SELECT {col} AS cell, sum(l.amount) AS amount, "
        "count(DISTINCT l.household_id) AS households "
        "FROM scope s JOIN income_linkage l ON l.household_id = s.household_id WHERE l.year = :year "
        f"GROUP BY {col} ORDER BY sum(l.amount) DESC, {col}"
    )
    async with sm() as s:
        rows = await s.execute(q, {**params, "year": year})
        return [LinkageCell(r.cell, round_yuan(r.amount), int(r.households)) for r in rows]


async def households_outside(
    sm: SessionMaker,
    scope: str,
    key: str,
    year: int,
    dimension: str,
    shown: Sequence[str],
) -> int:
    """Distinct households of the group with a linkage of ``year`` in a cell not in ``shown``.

    These are the households whose yuan ``total − Σ shown`` would reveal (linkages without a facility are never in ``shown``).
    """
    name, params = _one_group(scope, key)
    q = text(
        f"WITH scope AS ({SCOPES_IN_YEAR[name]}) SELECT count(DISTINCT l.household_id) "
        "FROM scope s JOIN income_linkage l ON l.household_id = s.household_id WHERE l.year = :year "
        f"AND NOT coalesce({BREAKDOWN[dimension]} = ANY(CAST(:shown AS text[])), false)"
    )
    async with sm() as s:
        return int(await s.scalar(q, {**params, "year": year, "shown": list(shown)}) or 0)


async def household_employment_by_ids(
    sm: SessionMaker,
    keys: Sequence[tuple[int, dt.date]],
) -> list[HouseholdEmployment]:
    """Batch: each (household id.

    As_of) → labor force present, members employed and stably employed on ``as_of`` (distinct members present), from
    household_status. One statement per distinct ``as_of``.
    """
    out: dict[tuple[int, dt.date], HouseholdEmployment] = {}
    async with sm() as s:
        for as_of, ids in _group(keys).items():
            q = (
                status_on(None, as_of)
                .with_only_columns(ST.household_id, ST.labor_force, ST.employed, ST.stably_employed)
                .where(ST.household_id.in_(list(set(ids))))
            )
            for r in await s.execute(q):
                out[(r.household_id, as_of)] = HouseholdEmployment(r.labor_force > 0, int(r.employed), int(r.stably_employed))
    return [out.get(k, HouseholdEmployment(False, 0, 0)) for k in keys]


async def linked_income_by_household_ids(
    sm: SessionMaker,
    keys: Sequence[tuple[int, int]],
) -> list[LinkedIncome]:
    """Batch: each (household id, year) → linkage yuan of that year, total and by mechanism, and the year's size.

    Two grouped statements per distinct year: the linkages by mechanism, and ``anju_year_size`` of the households.
    """
    out: dict[tuple[int, int], list[MechanismAmount]] = {}
    sizes: dict[tuple[int, int], int | None] = {}
    async with sm() as s:
        for year, ids in _group(keys).items():
            q = (
                select(L.household_id, L.mechanism, func.sum(L.amount).label("amount"))
                .where(L.household_id.in_(list(set(ids))), L.year == year)
                .group_by(L.household_id, L.mechanism)
                .order_by(L.household_id, L.mechanism)
            )
            for r in await s.execute(q):
                out.setdefault((r.household_id, year), []).append(MechanismAmount(r.mechanism, round_yuan(r.amount), 1))
            size = func.anju_year_size(H.id, year)
            for r in await s.execute(select(H.id, size.label("size")).where(H.id.in_(list(set(ids))))):
                sizes[(r.id, year)] = r.size
    results = []
    for k in keys:
        mechs = out.get(k, [])
        results.append(LinkedIncome(round_yuan(sum((x.amount for x in mechs), Decimal(0))), mechs, sizes.get(k)))
    return results


async def facility_employees(
    sm: SessionMaker,
    keys: Sequence[tuple[int, dt.date]],
) -> list[tuple[int, int]]:
    """Batch: each (facility id.

    As_of) → (distinct members with an employment at the facility active on ``as_of``, their distinct households).
    """
    out: dict[tuple[int | None, dt.date], tuple[int, int]] = {}
    async with sm() as s:
        for as_of, ids in _group(keys).items():
            q = (
                select(E.facility_id, func.count(func.distinct(E.member_id)), func.count(func.distinct(E.household_id)))
                .where(E.facility_id.in_(list(set(ids))), active_on(as_of))
                .group_by(E.facility_id)
            )
            for fid, n, hh in await s.execute(q):
                out[(fid, as_of)] = (int(n), int(hh))
    return [out.get(k, (0, 0)) for k in keys]


async def facility_linked_households(sm: SessionMaker, keys: Sequence[tuple[int, int]]) -> list[int]:
    """Batch: each (facility id, year) → distinct households with an income linkage to it in ``year``."""
    out: dict[tuple[int | None, int], int] = {}
    async with sm() as s:
        for year, ids in _group(keys).items():
            q = (
                select(L.facility_id, func.count(func.distinct(L.household_id)))
                .where(L.facility_id.in_(list(set(ids))), L.year == year)
                .group_by(L.facility_id)
            )
            for fid, n in await s.execute(q):
                out[(fid, year)] = int(n)
    return [out.get(k, 0) for k in keys]


def _household_scope(area_code: str | None, site_id: int | None) -> list[Any]:
    conds: list[Any] = []
    if area_code is not None:
        conds.append(under_area(H.admin_code, area_code, "areaCode"))
    if site_id is not None:
        conds.append(H.site_id == site_id)
    return conds


async def zero_employment_households(
    sm: SessionMaker,
    args: PageArgs,
    *,
    as_of: dt.date,
    area_code: str | None = None,
    site_id: int | None = None,
) -> Page[HouseholdRow]:
    """Households with labor force and no member employed on ``as_of`` (零就业家庭), by id.

    Raises:
        InvalidInput: malformed ``areaCode``.
    """
    return await fetch_page(
        sm, zero_employment_select(as_of, area_code, site_id), H.id, args, kind="household", build=HouseholdRow.of
    )


def zero_employment_select(as_of: dt.date, area_code: str | None = None, site_id: int | None = None) -> AnySelect:
    """``household_select()`` of the households with labor force and no member employed on ``as_of``, unordered.

    Raises:
        InvalidInput: malformed ``areaCode``.
    """
    return household_select().where(zero_employment(as_of), *_household_scope(area_code, site_id))


@dataclass(frozen=True, slots=True)
class RiskRow:
    """One household at risk: its row, the reasons and the per-capita incomes (yuan)."""

    household: HouseholdRow
    below_threshold: bool
    income_declined: bool
    per_capita_income: Decimal
    previous_per_capita_income: Decimal | None
    change_rate: float | None


async def households_at_risk(
    sm: SessionMaker,
    args: PageArgs,
    *,
    year: int,
    threshold: Decimal,
    area_code: str | None = None,
    site_id: int | None = None,
) -> Page[RiskRow]:
    """Households whose per-capita net income of ``year`` is below ``threshold`` or fell since ``year - 1`` (防返贫监测), by id.

    Per-capita income of a year = that year's net income ÷ the household size recorded with it (household_income.household_size;
    by default the members present at the survey). Households without an income of ``year``, or with no size recorded for
    it, cannot be judged and are not listed.

    Args:
        sm: sessionmaker (the viewer's scope applies).
        args: page size and cursor.
        year: the income year.
        threshold: yuan per person per year (settings default 10,000, the report's Beichuan line).
        area_code: only households under this admin area (code prefix).
        site_id: only households of this relocation site.

    Returns:
        Page of RiskRow; per-capita values rounded half-up to 0.01, compared unrounded;
        change_rate = (this − previous) / previous, None without a previous year or when it was 0.

    Raises:
        InvalidInput: malformed ``areaCode``.
    """
    base = households_at_risk_select(year, threshold, area_code, site_id)

    def risk(r: AnyRow) -> RiskRow:
        pc, ppc = r.pc, r.prev_pc
        rate = float((pc - ppc) / ppc) if ppc not in (None, 0) else None
        return RiskRow(
            HouseholdRow.of(r),
            bool(r.below),
            bool(r.declined),
            round_yuan(pc),
            round_yuan(ppc) if ppc is not None else None,
            rate,
        )

    return await fetch_page(sm, base, H.id, args, kind="household", build=risk)


def households_at_risk_select(
    year: int, threshold: Decimal, area_code: str | None = None, site_id: int | None = None
) -> AnySelect:
    """``household_select()`` of the households at risk in ``year`` (``households_at_risk``), unordered.

    Added columns: ``pc`` and ``prev_pc`` (per-capita net income of ``year`` and ``year - 1``, yuan, unrounded; prev None
    without an income that year), ``below`` and ``declined`` (the reasons, booleans).

    Raises:
        InvalidInput: malformed ``areaCode``.
    """
    # Each year's per-capita income divides by the size recorded with that year's income (household_income.household_size),
    # so members joining or leaving later change neither figure.
    before = aliased(HI)
    prev = (
        select(before.net_income / before.household_size)
        .where(before.household_id == H.id, before.year == year - 1)
        .correlate(H)
        .scalar_subquery()
    )
    cur = HI.net_income / HI.household_size
    cur_pc = cur.label("pc")
    prev_pc = prev.label("prev_pc")
    below = cur < literal(threshold, Numeric())  # unconstrained numeric: compared exactly
    declined = and_(prev.is_not(None), cur < prev)
    return (
        household_select()
        .add_columns(cur_pc, prev_pc, below.label("below"), declined.label("declined"))
        .join(HI, and_(HI.household_id == H.id, HI.year == year))
        .where(HI.household_size > 0, below | declined, *_household_scope(area_code, site_id))
    )
