"""Spatial queries.

Nearest facilities, proximity of sites and households beyond a distance of any job. Map layers (GeoJSON
FeatureCollections, vector tiles, OGC API Features) are the layer registry's: ``resolvers.layers``.

Units: coordinates are WGS84 lon/lat (SRID 4326); every distance is metres on the WGS84 ellipsoid
(PostGIS ``geography``); radius search uses ``ST_DWithin(col::geography, …)`` backed by the
geography GiST indexes of migration 0004.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shapely.geometry.base import BaseGeometry
from sqlalchemy import ColumnElement, and_, func, literal, select, text, true

import models as m
from resolvers.errors import InvalidInput
from resolvers.facilities import facility_select, open_on
from resolvers.geofilters import area_condition, geog, point_param
from resolvers.households import household_select
from resolvers.paging import Page, PageArgs
from resolvers.query import SessionMaker, fetch_page
from resolvers.rows import FacilityRow, HouseholdRow

F, H, S, A = m.Facility, m.Household, m.RelocationSite, m.AdminArea
MAX_COMMUTE_METERS = 50_000.0
"""Largest distance householdsBeyond accepts: beyond 50 km no one commutes daily, and the anti-join's
cost grows with the distance."""


# --------------------------------------------------------------------------- proximity


@dataclass(frozen=True, slots=True)
class FacilityDistance:
    """A facility row and its geodesic distance in metres."""

    facility: FacilityRow
    distance_meters: float


async def nearest_facilities(
    sm: SessionMaker,
    point: BaseGeometry,
    kinds: Sequence[m.FacilityKind] | None,
    k: int,
    as_of: dt.date,
) -> list[FacilityDistance]:
    """The ``k`` facilities open on ``as_of`` nearest to ``point`` by geodesic distance (WGS84 ellipsoid), ties by id.

    Exact, in one statement: the ``<->`` index operator finds k candidates; the farthest candidate's
    geodesic distance r bounds the true k nearest, which are then all rows within r
    (``ST_DWithin`` on geography, indexed), re-ranked by ``ST_Distance(geography)``.

    Raises:
        InvalidInput: k outside 1..100.
    """
    if not 1 <= k <= 100:
        raise InvalidInput(f"k: {k} outside 1..100", field="k")
    pt = point_param(point)
    kind_cond = and_(F.kind.in_(list(kinds)) if kinds else literal(True), open_on(as_of))
    cand = select(F.location).where(kind_cond).order_by(F.location.op("<->")(pt)).limit(k).subquery()
    # + 1 m: ST_DWithin and ST_Distance round differently at the very boundary; extra rows are re-ranked away.
    radius = select(func.max(func.ST_Distance(geog(cand.c.location), geog(pt))) + 1.0).scalar_subquery()
    dist = func.ST_Distance(geog(F.location), geog(pt)).label("distance_meters")
    q = (
        facility_select()
        .add_columns(dist)
        .where(kind_cond, func.ST_DWithin(geog(F.location), geog(pt), radius))
        .order_by(dist, F.id)
        .limit(k)
    )
    async with sm() as s:
        return [FacilityDistance(FacilityRow.of(r), float(r.distance_meters)) for r in await s.execute(q)]


async def nearby_facilities_by_site_ids(
    sm: SessionMaker,
    keys: Sequence[tuple[int, float, tuple[m.FacilityKind, ...] | None, int, dt.date]],
) -> list[list[FacilityDistance]]:
    """Batch: for each (site id, radius in metres, kinds, first, date) the ``first`` nearest facilities open on the date.

    Within the radius of the site's location, nearest first (geodesic metres). One statement per distinct (radius, kinds,
    first, date), a LATERAL per site.
    """
    groups: dict[tuple[float, Any, int, dt.date], list[int]] = {}
    for sid, r, kinds, first, as_of in keys:
        groups.setdefault((r, kinds, first, as_of), []).append(sid)
    out: dict[tuple[int, float, Any, int, dt.date], list[FacilityDistance]] = {}
    async with sm() as s:
        for (r, kinds, first, as_of), sids in groups.items():
            site = select(S.id, S.location).where(S.id.in_(list(set(sids)))).subquery("s")
            dist = func.ST_Distance(geog(F.location), geog(site.c.location)).label("distance_meters")
            conds: list[ColumnElement[bool]] = [func.ST_DWithin(geog(F.location), geog(site.c.location), r), open_on(as_of)]
            if kinds:
                conds.append(F.kind.in_(list(kinds)))
            near = facility_select().add_columns(dist).where(*conds).order_by(dist, F.id).limit(first).lateral("n")
            q = (
                select(site.c.id.label("_site"), near)
                .select_from(site.join(near, true()))
                .order_by(site.c.id, near.c.distance_meters, near.c.id)
            )
            for row in await s.execute(q):
                out.setdefault((row._mapping["_site"], r, kinds, first, as_of), []).append(
                    FacilityDistance(FacilityRow.of(row), float(row.distance_meters))
                )
    return [out.get(k, []) for k in keys]


NEAREST_BY_KIND_SQL = """
SELECT s.id AS _site, kk.kind AS _kind, best.id, best.distance_meters
FROM relocation_site s
CROSS JOIN unnest(CAST(:kinds AS facility_kind[])) AS kk(kind)
CROSS JOIN LATERAL (
    SELECT ST_Distance(geography(f.location), geography(s.location)) AS r
    FROM facility f WHERE f.kind = kk.kind AND anju_open_on(f.opened_on, f.closed_on, :as_of)
    ORDER BY f.location <-> s.location LIMIT 1) c
CROSS JOIN LATERAL (
    SELECT f.id, ST_Distance(geography(f.location), geography(s.location)) AS distance_meters
    FROM facility f
    WHERE f.kind = kk.kind AND anju_open_on(f.opened_on, f.closed_on, :as_of)
      AND ST_DWithin(geography(f.location), geography(s.location), c.r + 1.0)
    ORDER BY distance_meters, f.id LIMIT 1) best
WHERE s.id = ANY(CAST(:ids AS bigint[]))
ORDER BY s.id, kk.kind
"""


async def nearest_by_kind_by_site_ids(
    sm: SessionMaker,
    keys: Sequence[tuple[int, tuple[m.FacilityKind, ...], dt.date]],
) -> list[list[tuple[int, float]]]:
    """Batch: for each (site id, kinds, date) the nearest facility of each kind open on the date.

    As (facility id, geodesic metres), in kind order; kinds without an open facility are left out. Exact as
    ``nearest_facilities`` (k = 1 per kind); "open" is ``anju_open_on`` (``resolvers.facilities.open_on``).
    """
    groups: dict[tuple[tuple[m.FacilityKind, ...], dt.date], list[int]] = {}
    for sid, kinds, as_of in keys:
        groups.setdefault((kinds, as_of), []).append(sid)
    out: dict[tuple[int, Any, dt.date], list[tuple[int, float]]] = {}
    async with sm() as s:
        for (kinds, as_of), sids in groups.items():
            params = {"kinds": [k.value for k in kinds], "ids": list(set(sids)), "as_of": as_of}
            for r in await s.execute(text(NEAREST_BY_KIND_SQL), params):
                out.setdefault((r._mapping["_site"], kinds, as_of), []).append((int(r.id), float(r.distance_meters)))
    return [out.get(key, []) for key in keys]


async def households_beyond(
    sm: SessionMaker,
    args: PageArgs,
    *,
    distance_meters: float,
    kinds: Sequence[m.FacilityKind],
    as_of: dt.date,
    site_id: int | None = None,
    area_code: str | None = None,
) -> Page[HouseholdRow]:
    """Households whose dwelling lies farther than ``distance_meters`` (geodesic) from every open facility of ``kinds``.

    Open: on ``as_of`` (``resolvers.facilities.open_on``).

    "no job within commuting distance" — as one anti-join (NOT EXISTS + ST_DWithin), by id. Households without a dwelling point
    (NULL or empty) are not listed: their location is unknown.

    Raises:
        InvalidInput: distance outside (0, 50 km]; no kinds; malformed areaCode.
    """
    if not math.isfinite(distance_meters) or not 0 < distance_meters <= MAX_COMMUTE_METERS:
        raise InvalidInput(
            f"distanceMeters: {distance_meters} outside (0, {MAX_COMMUTE_METERS:.0f}] metres (a commuting distance)",
            field="distanceMeters",
        )
    if not kinds:
        raise InvalidInput("ofKinds: give at least one facility kind", field="ofKinds")
    near_any = (
        select(literal(1))
        .where(F.kind.in_(list(kinds)), open_on(as_of), func.ST_DWithin(geog(F.location), geog(H.dwelling), distance_meters))
        .correlate(H)
        .exists()
    )
    # no known location (no dwelling, or an empty one): not "beyond" anything
    q = household_select().where(H.dwelling.is_not(None), ~func.ST_IsEmpty(H.dwelling), ~near_any)
    if site_id is not None:
        q = q.where(H.site_id == site_id)
    if area_code is not None:
        q = q.where(area_condition(H.admin_code, area_code, "areaCode"))
    return await fetch_page(sm, q, H.id, args, kind="household", build=HouseholdRow.of)
