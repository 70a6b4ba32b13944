"""Facilities (产业/服务设施): the one query-building place for ``facility`` reads."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Boolean, ColumnElement, func, select

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
    MultiPolygon text or None), site_id, area_mu (亩), planned_jobs, operator, opened_on, closed_on, version.
    """
    return select(
        *place_columns(F, "footprint"),
        F.site_id,
        F.area_mu,
        F.planned_jobs,
        F.operator,
        F.opened_on,
        F.closed_on,
        F.version,
    )


def open_on(as_of: dt.date, facility: type[m.Facility] | None = None) -> ColumnElement[bool]:
    """SQL: the facility is open on ``as_of``.

    ``(opened_on IS NULL OR opened_on <= as_of) AND (closed_on IS NULL OR as_of < closed_on)``: the database's
    ``anju_open_on`` (migrations/sql/household_status.sql), the one definition, inlined by the planner. Proximity
    queries apply it; lists and map layers show closed facilities too (they stay in history).

    Args:
        as_of: the date asked about.
        facility: the facility table (or an alias of it); ``facility`` by default.
    """
    t = facility if facility is not None else F
    return func.anju_open_on(t.opened_on, t.closed_on, as_of, type_=Boolean)


async def facilities_page(sm: SessionMaker, f: FacilityFilter | None, args: PageArgs) -> Page[FacilityRow]:
    """Facilities matching ``f`` (conditions ANDed; ``kinds`` is any-of), by id.

    Raises:
        InvalidInput: a malformed filter member (named in the message).
    """
    return await fetch_page(sm, filtered_facilities(f), F.id, args, kind=KIND, build=FacilityRow.of)


def filtered_facilities(f: FacilityFilter | None) -> AnySelect:
    """``facility_select()`` narrowed by ``f`` (conditions ANDed; ``kinds`` is any-of): the list's rows, unordered."""
    q = facility_select()
    if f is not None:
        q = q.where(*f.conditions(F.name, F.admin_code, F.location))
        if f.kinds is not None:
            q = q.where(F.kind.in_(f.kinds))
    return q


async def facilities_by_ids(sm: SessionMaker, ids: Sequence[int]) -> list[FacilityRow | None]:
    """Batch: facilities aligned with ``ids`` (None when missing)."""
    return await rows_by_keys(sm, facility_select(), F.id, ids, build=FacilityRow.of)


async def facilities_by_site_ids(sm: SessionMaker, ids: Sequence[int]) -> list[list[FacilityRow]]:
    """Batch: the facilities attached to each site (facility.site_id), by id."""
    return await lists_by_keys(sm, facility_select(), F.site_id, ids, build=FacilityRow.of, order=[F.id])
