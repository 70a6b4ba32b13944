"""Admin areas (行政区划): the one query-building place for ``admin_area`` reads."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import String, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

import models as m
from resolvers.errors import InvalidInput, NotFound
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
    return await fetch_page(sm, filtered_admin_areas(level, parent_code), A.code, args, kind=KIND, build=AdminAreaRow.of)


def filtered_admin_areas(level: m.AdminLevel | None = None, parent_code: str | None = None) -> AnySelect:
    """``admin_area_select()`` of one ``level`` and/or directly under ``parent_code``: the list's rows, unordered.

    Raises:
        InvalidInput: ``parentCode`` is not a 6/9/12-digit code.
    """
    q = admin_area_select()
    if level is not None:
        q = q.where(A.level == level)
    if parent_code is not None:
        area_code_prefix(parent_code, "parentCode")
        q = q.where(A.parent_code == parent_code)
    return q


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


NEAREST_POLYGON = text("SELECT code, distance_meters FROM anju_area_distance(:code, :x, :y)")
"""The distance (geodesic metres) from a point to the polygon of its admin area or of the nearest ancestor that has one
(``migrations/sql/registry_rules.sql``: one definition, used for one point here and for every row of an import)."""


async def check_near_area(
    s: AsyncSession, point: tuple[float, float], admin_code: str, tolerance_meters: float, field: str
) -> None:
    """The point lies within ``tolerance_meters`` of its admin area's polygon, or of the nearest ancestor's with one.

    The one rule for a registered location (a site's or facility's ``location``, a household's ``dwelling``): no check
    when no area up the chain has a polygon.

    Args:
        s: the writing transaction's session.
        point: (lon, lat), SRID 4326.
        admin_code: the area the point is registered under.
        tolerance_meters: geodesic metres (settings ``registry.location_tolerance_meters``).
        field: the input field named by the error.

    Raises:
        InvalidInput: naming ``field``, with the distance in metres and the area measured against.
    """
    row = (await s.execute(NEAREST_POLYGON, {"code": admin_code, "x": point[0], "y": point[1]})).first()
    problem = outside_area_problem(row, admin_code, tolerance_meters, field)
    if problem is not None:
        raise problem


def outside_area_problem(row: Any, admin_code: str, tolerance_meters: float, field: str) -> InvalidInput | None:
    """A point too far from its area, given ``anju_area_distance``'s row (code, distance_meters; None: no polygon).

    The one wording of ``check_near_area`` (mutations and the roster import).
    """
    if row is not None and row.distance_meters is not None and row.distance_meters > tolerance_meters:
        return InvalidInput(
            f"{field}: the point lies {row.distance_meters:,.0f} m outside admin area {row.code} (of {admin_code}); "
            f"at most {tolerance_meters:,.0f} m is accepted — check the coordinates (lon, lat, WGS84) and the admin code",
            field=field,
        )
    return None


VILLAGE_CODE = re.compile(r"[0-9]{12}")


async def check_area(s: AsyncSession, code: str, field: str, levels: Collection[m.AdminLevel] = (m.AdminLevel.VILLAGE,)) -> str:
    """``code`` is a known admin area of one of ``levels`` (by default a household's home: a village, 12 digits).

    The one check of an admin code a write refers to (households, sites, facilities).

    Raises:
        NotFound naming ``field``: no such area. InvalidInput naming ``field``: malformed or of another level.
    """
    code = code.strip()
    problem: InvalidInput | NotFound | None = area_shape_problem(code, field, levels)
    if problem is None:
        level = await s.scalar(select(m.AdminArea.level).where(m.AdminArea.code == code))
        problem = area_problem(code, level, field, levels)
    if problem is not None:
        raise problem
    return code


def area_shape_problem(code: str, field: str, levels: Collection[m.AdminLevel] = (m.AdminLevel.VILLAGE,)) -> InvalidInput | None:
    """A village code that is not 12 digits (before looking it up), or None. Part of ``check_area``'s rule."""
    if tuple(levels) == (m.AdminLevel.VILLAGE,) and not VILLAGE_CODE.fullmatch(code):
        return InvalidInput(
            f"{field}: {code[:20]!r} is not a village/community code; expected 12 digits (NBS statistical code)", field=field
        )
    return None


def area_problem(
    code: str, level: m.AdminLevel | None, field: str, levels: Collection[m.AdminLevel] = (m.AdminLevel.VILLAGE,)
) -> NotFound | InvalidInput | None:
    """What is wrong with an admin code a write refers to, given the level its lookup found (None: no such area).

    The one wording of ``check_area`` (mutations one code at a time, the roster import over all its rows at once).
    """
    if level is None:
        return NotFound(f"{field}: no admin area has code {code[:20]!r}", field=field)
    if level not in levels:
        wanted = " or ".join(x.value for x in levels)
        return InvalidInput(f"{field}: {code} is a {level.value}; expected a {wanted}", field=field)
    return None
