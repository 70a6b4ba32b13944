"""Facilities (产业/服务设施): the one query-building place for ``facility`` reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

import models as m
from resolvers.geofilters import PlaceFilter
from resolvers.paging import Page, PageArgs
from resolvers.query import AnySelect, SessionMaker, fetch_page, lists_by_keys, place_columns, rows_by_keys
from resolvers.rows import FacilityRow

KIND = "facility"
F = m.Facility


@dataclass(frozen=True)
class FacilityFilter(PlaceFilter):
    """``FacilityFilter`` of API.md: the place members plus ``kinds`` (any-of)."""

    kinds: tuple[m.FacilityKind, ...] | None = None


def facility_select() -> AnySelect:
    """Every read of facilities starts here (a viewer's row scope is applied by PostgreSQL: resolvers.access).

    Row: id, name, kind, admin_code, location (GeoJSON Point text, SRID 4326), footprint (GeoJSON
    MultiPolygon text or None), site_id, area_mu (亩), planned_jobs, operator, opened_on.
    """
    return select(
        *place_columns(F, "footprint"),
        F.site_id,
        F.area_mu,
        F.planned_jobs,
        F.operator,
        F.opened_on,
    )


async def facilities_page(sm: SessionMaker, f: FacilityFilter | None, args: PageArgs) -> Page[FacilityRow]:
    """Facilities matching ``f`` (conditions ANDed; ``kinds`` is any-of), by id.

    Raises:
        InvalidInput: a malformed filter member (named in the message).
    """
    q = facility_select()
    if f is not None:
        q = q.where(*f.conditions(F.name, F.admin_code, F.location))
        if f.kinds is not None:
            q = q.where(F.kind.in_(f.kinds))
    return await fetch_page(sm, q, F.id, args, kind=KIND, build=FacilityRow.of)


async def facilities_by_ids(sm: SessionMaker, ids: Sequence[int]) -> list[FacilityRow | None]:
    """Batch: facilities aligned with ``ids`` (None when missing)."""
    return await rows_by_keys(sm, facility_select(), F.id, ids, build=FacilityRow.of)


async def facilities_by_site_ids(sm: SessionMaker, ids: Sequence[int]) -> list[list[FacilityRow]]:
    """Batch: the facilities attached to each site (facility.site_id), by id."""
    return await lists_by_keys(sm, facility_select(), F.site_id, ids, build=FacilityRow.of, order=[F.id])
