"""Admin areas (行政区划): the one query-building place for ``admin_area`` reads."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import String, func, select

import models as m
from resolvers.paging import Page, PageArgs
from resolvers.query import AnySelect, SessionMaker, area_code_prefix, fetch_page, geojson, pages_by_parents, rows_by_keys
from resolvers.rows import AdminAreaRow

KIND = "admin_area"
A = m.AdminArea


def admin_area_select() -> AnySelect:
    """Every read of admin areas starts here (public geography: every viewer reads every area).

    Row: code, name, level (models.AdminLevel), parent_code, assistance_tier, geometry (GeoJSON
    MultiPolygon text, SRID 4326, 6 decimals, or None where no boundary is known).
    """
    return select(A.code, A.name, A.level, A.parent_code, A.assistance_tier, geojson(A.geom, polygon=True).label("geometry"))


async def admin_areas_by_codes(sm: SessionMaker, codes: Sequence[str]) -> list[AdminAreaRow | None]:
    """Batch: areas aligned with ``codes`` (None for unknown codes)."""
    return await rows_by_keys(sm, admin_area_select(), A.code, codes, build=AdminAreaRow.of)


async def admin_areas_page(
    sm: SessionMaker,
    args: PageArgs,
    *,
    level: m.AdminLevel | None = None,
    parent_code: str | None = None,
) -> Page[AdminAreaRow]:
    """Areas ordered by code, optionally of one ``level`` and/or directly under ``parent_code``.

    Raises:
        InvalidInput: ``parentCode`` is not a 6/9/12-digit code.
    """
    q = admin_area_select()
    if level is not None:
        q = q.where(A.level == level)
    if parent_code is not None:
        area_code_prefix(parent_code, "parentCode")
        q = q.where(A.parent_code == parent_code)
    return await fetch_page(sm, q, A.code, args, kind=KIND, build=AdminAreaRow.of)


async def _child_counts(sm: SessionMaker, parents: list[str]) -> dict[str, int]:
    async with sm() as s:
        rows = await s.execute(select(A.parent_code, func.count()).where(A.parent_code.in_(parents)).group_by(A.parent_code))
        return {p: int(c) for p, c in rows if p is not None}


async def children_pages(sm: SessionMaker, keys: Sequence[tuple[str, PageArgs]]) -> list[Page[AdminAreaRow]]:
    """Batch: the page of direct children for each (parent code, page args), by code."""
    return await pages_by_parents(
        sm,
        admin_area_select(),
        A.parent_code,
        A.code,
        keys,
        kind=KIND,
        parent_type=String,
        count_by_parents=lambda ps: _child_counts(sm, ps),
        build=AdminAreaRow.of,
    )
