"""Relocation sites (安置区): the one query-building place for ``relocation_site`` reads, and the
counts derived from household rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

import models as m
from resolvers.geofilters import PlaceFilter
from resolvers.paging import Page, PageArgs
from resolvers.query import (
    Row,
    fetch_page,
    geojson,
    lists_by_keys,
    rows_by_keys,
)

KIND = "relocation_site"
S = m.RelocationSite


@dataclass(frozen=True)
class SiteFilter(PlaceFilter):
    """``SiteFilter`` of API.md: name, nameContains, areaCode and the spatial members."""


@dataclass(frozen=True)
class SiteStats:
    """Counts derived from rows: households whose ``site_id`` is the site, and their members."""

    household_count: int
    population: int


def site_select() -> Select[Any]:
    """Every read of relocation sites starts here (a viewer's row scope is applied by PostgreSQL: resolvers.access).

    Row: id, name, kind, admin_code, location (GeoJSON Point text, SRID 4326), boundary (GeoJSON
    MultiPolygon text or None), planned_households, planned_population, opened_on (date).
    """
    return select(
        S.id,
        S.name,
        S.kind,
        S.admin_code,
        geojson(S.location).label("location"),
        geojson(S.boundary, polygon=True).label("boundary"),
        S.planned_households,
        S.planned_population,
        S.opened_on,
    )


def _filtered(f: SiteFilter | None) -> Select[Any]:
    q = site_select()
    return q if f is None else q.where(*f.conditions(S.name, S.admin_code, S.location))


async def sites_page(sm: async_sessionmaker, f: SiteFilter | None, args: PageArgs) -> Page[Row]:  # type: ignore[type-arg]
    """Sites matching ``f`` (conditions ANDed), by id.

    Raises:
        InvalidInput: a malformed filter member (named in the message).
    """
    return await fetch_page(sm, _filtered(f), S.id, args, kind=KIND)


async def sites_by_ids(sm: async_sessionmaker, ids: Sequence[int]) -> list[Row | None]:  # type: ignore[type-arg]
    """Batch: sites aligned with ``ids`` (None when missing)."""
    return await rows_by_keys(sm, site_select(), S.id, ids, key_name="id")


async def site_stats_by_ids(sm: async_sessionmaker, ids: Sequence[int]) -> list[SiteStats]:  # type: ignore[type-arg]
    """Batch: household count and population (members) per site, one grouped query.

    Source: household.site_id and household.member_count (kept from member rows by a trigger).
    """
    if not ids:
        return []
    H = m.Household
    q = (
        select(H.site_id, func.count().label("households"), func.coalesce(func.sum(H.member_count), 0).label("population"))
        .where(H.site_id.in_(list(set(ids))))
        .group_by(H.site_id)
    )
    async with sm() as s:
        found = {r.site_id: SiteStats(int(r.households), int(r.population)) for r in await s.execute(q)}
    return [found.get(i, SiteStats(0, 0)) for i in ids]


async def origin_codes_by_site_ids(sm: async_sessionmaker, ids: Sequence[int]) -> list[list[str]]:  # type: ignore[type-arg]
    """Batch: the admin codes each site's households came from (site_origin), by code."""
    q = select(m.SiteOrigin.site_id, m.SiteOrigin.origin_admin_code)
    rows = await lists_by_keys(sm, q, m.SiteOrigin.site_id, ids, key_name="site_id", order=[m.SiteOrigin.origin_admin_code])
    return [[r["origin_admin_code"] for r in lst] for lst in rows]
