"""Relocation sites (安置区).

The one query-building place for ``relocation_site`` reads, and the counts derived from household rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select

import models as m
from resolvers.geofilters import PlaceFilter
from resolvers.paging import Page, PageArgs
from resolvers.query import AnySelect, SessionMaker, fetch_page, lists_by_keys, place_columns, rows_by_keys
from resolvers.rows import SiteRow

KIND = "relocation_site"
S = m.RelocationSite


@dataclass(frozen=True)
class SiteFilter(PlaceFilter):
    """``SiteFilter`` of API.md: name, nameContains, areaCode and the spatial members."""


@dataclass(frozen=True, slots=True)
class SiteStats:
    """Counts derived from rows: households whose ``site_id`` is the site, and their members."""

    household_count: int
    population: int


def site_select() -> AnySelect:
    """Every read of relocation sites starts here (a viewer's row scope is applied by PostgreSQL: resolvers.access).

    Row: id, name, kind, admin_code, location (GeoJSON Point text, SRID 4326), boundary (GeoJSON
    MultiPolygon text or None), planned_households, planned_population, opened_on, closed_on (dates), version.
    """
    return select(
        *place_columns(S, "boundary"),
        S.planned_households,
        S.planned_population,
        S.opened_on,
        S.closed_on,
        S.version,
    )


def filtered_sites(f: SiteFilter | None) -> AnySelect:
    """``site_select()`` narrowed by ``f`` (conditions ANDed): the list's rows, unordered."""
    q = site_select()
    return q if f is None else q.where(*f.conditions(S.name, S.admin_code, S.location))


async def sites_page(sm: SessionMaker, f: SiteFilter | None, args: PageArgs) -> Page[SiteRow]:
    """Sites matching ``f`` (conditions ANDed), by id.

    Raises:
        InvalidInput: a malformed filter member (named in the message).
    """
    return await fetch_page(sm, filtered_sites(f), S.id, args, kind=KIND, build=SiteRow.of)


async def sites_by_ids(sm: SessionMaker, ids: Sequence[int]) -> list[SiteRow | None]:
    """Batch: sites aligned with ``ids`` (None when missing)."""
    return await rows_by_keys(sm, site_select(), S.id, ids, build=SiteRow.of)


def site_stats_select() -> AnySelect:
    """Households (户) and population (人, the households' current ``member_count``) per site: site_id, households, population.

    Grouped by site; the caller adds the site condition. Source: household.site_id and household.member_count (kept from
    member rows by a trigger).
    """
    H = m.Household
    return select(
        H.site_id, func.count().label("households"), func.coalesce(func.sum(H.member_count), 0).label("population")
    ).group_by(H.site_id)


async def site_stats_by_ids(sm: SessionMaker, ids: Sequence[int]) -> list[SiteStats]:
    """Batch: household count and population (members) per site, one grouped query.

    Source: household.site_id and household.member_count (kept from member rows by a trigger).
    """
    if not ids:
        return []
    q = site_stats_select().where(m.Household.site_id.in_(list(set(ids))))
    async with sm() as s:
        found = {r.site_id: SiteStats(int(r.households), int(r.population)) for r in await s.execute(q)}
    return [found.get(i, SiteStats(0, 0)) for i in ids]


async def origin_codes_by_site_ids(sm: SessionMaker, ids: Sequence[int]) -> list[list[str]]:
    """Batch: the admin codes each site's households came from (site_origin), by code."""
    SO = m.SiteOrigin
    q = select(SO.site_id, SO.origin_admin_code)
    return await lists_by_keys(sm, q, SO.site_id, ids, build=lambda r: str(r.origin_admin_code), order=[SO.origin_admin_code])
