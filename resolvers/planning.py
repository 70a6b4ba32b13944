"""Planning (issue #15): where the next facility goes, and each relocation site's scorecard on a date.

Facility placement (选址) is greedy maximal covering, in one SQL statement (``resolvers/sql/facility_placement.sql``, a
recursive CTE over bit strings of households): Church & ReVelle's maximal covering location problem (1974), solved
greedily as in Nemhauser, Wolsey & Fisher (1978), whose greedy answer covers at least (1 − 1/e) of the best possible.
Site scorecards (后续扶持: 致富、融入、可持续) are one grouped statement over every site asked
(``resolvers/sql/site_scorecard.sql``).

Units: metres on the WGS84 ellipsoid (PostGIS ``geography``), yuan, dates (a figure on a date counts what was true
on that date).
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text

import models as m
from resolvers import sql as sql_files
from resolvers.coverage import round_yuan
from resolvers.errors import InvalidInput
from resolvers.query import SessionMaker, area_code_prefix, under_area
from resolvers.spatial import MAX_COMMUTE_METERS


class CandidateSource(enum.Enum):
    """Where facilityPlacement's candidate locations come from."""

    SITES = "sites"  # the relocation sites under the area open on the date, by id
    GRID = "grid"  # centres of a hexagonal grid (ST_HexagonGrid in the area's UTM zone) lying inside the area's polygon
    POINTS = "points"  # points the caller sends, in the order sent


# Allow-listed candidate fragments of facility_placement.sql: (cid, site_id, geom) rows, cid 1.. in a fixed order.
CANDIDATES = {
    CandidateSource.SITES: "SELECT CAST(row_number() OVER (ORDER BY s.id) AS integer) AS cid, s.id AS site_id, "
    "s.location AS geom FROM relocation_site s WHERE left(s.admin_code, CAST(:plen AS integer)) = CAST(:prefix AS text) "
    "AND anju_open_on(s.opened_on, s.closed_on, CAST(:as_of AS date)) AND NOT ST_IsEmpty(s.location)",
    CandidateSource.GRID: "SELECT CAST(row_number() OVER (ORDER BY g.i, g.j) AS integer) AS cid, "
    "CAST(NULL AS bigint) AS site_id, c.geom FROM admin_area a "
    "CROSS JOIN LATERAL ST_HexagonGrid(CAST(:size AS float8), ST_Transform(a.geom, CAST(:utm AS integer))) g "
    "CROSS JOIN LATERAL (SELECT ST_Transform(ST_Centroid(g.geom), 4326) AS geom) c "
    "WHERE a.code = CAST(:code AS text) AND ST_Intersects(c.geom, a.geom)",
    CandidateSource.POINTS: "SELECT CAST(p.o AS integer) AS cid, CAST(NULL AS bigint) AS site_id, "
    "ST_SetSRID(ST_MakePoint(p.x, p.y), 4326) AS geom "
    "FROM unnest(CAST(:lons AS float8[]), CAST(:lats AS float8[])) WITH ORDINALITY AS p(x, y, o)",
}
COUNTY = "st.county_code = CAST(:county AS text) AND "
"""The county predicate of facility_placement.sql for areas at or below a county (its index, then the prefix)."""
MIN_HEX_METERS, MAX_HEX_METERS = 100.0, 50_000.0
"""Bounds of a grid's hexagon size (ST_HexagonGrid's edge length = circumradius), metres."""


def _sql(name: str) -> str:
    return sql_files.read(name)


@dataclass(frozen=True, slots=True)
class Pick:
    """One greedy pick: the candidate (its rank, site if any, GeoJSON point) and what it newly covers.

    ``households``/``persons``: zero-employment households (and their labor-force persons, none stably employed) newly
    within reach; ``cumulative_*``: the sum over this and every earlier pick.
    """

    pick: int
    candidate: int
    site_id: int | None
    point: dict[str, Any]
    households: int
    persons: int
    cumulative_households: int
    cumulative_persons: int


@dataclass(frozen=True, slots=True)
class Placement:
    """facilityPlacement's answer: the picks in order, and what they were chosen from."""

    eligible_households: int
    candidates: int
    picks: list[Pick]


def check_distance(meters: float, field: str) -> float:
    """A distance in metres within (0, 50,000] (a commuting distance, as householdsBeyond).

    Raises:
        InvalidInput: outside, naming ``field``.
    """
    if not math.isfinite(meters) or not 0 < meters <= MAX_COMMUTE_METERS:
        raise InvalidInput(f"{field}: {meters} outside (0, {MAX_COMMUTE_METERS:.0f}] metres (a commuting distance)", field=field)
    return meters


def check_placement(
    *, reach_meters: float, count: int, max_picks: int, hex_size_meters: float | None, source: CandidateSource
) -> None:
    """Validate facilityPlacement's bounds.

    Raises:
        InvalidInput: reach outside (0, 50,000] m (``reachMeters``); count outside 1..max_picks (``count``); grid without a
            size or with one outside 100..50,000 m (``hexSizeMeters``).
    """
    check_distance(reach_meters, "reachMeters")
    if not 1 <= count <= max_picks:
        raise InvalidInput(f"count: {count} outside 1..{max_picks} new facilities", field="count")
    if source is CandidateSource.GRID:
        if hex_size_meters is None:
            raise InvalidInput("hexSizeMeters: required with candidates GRID", field="hexSizeMeters")
        if not math.isfinite(hex_size_meters) or not MIN_HEX_METERS <= hex_size_meters <= MAX_HEX_METERS:
            raise InvalidInput(
                f"hexSizeMeters: {hex_size_meters} outside {MIN_HEX_METERS:.0f}..{MAX_HEX_METERS:.0f} metres",
                field="hexSizeMeters",
            )


async def facility_placement(
    sm: SessionMaker,
    *,
    kind: m.FacilityKind,
    reach_meters: float,
    count: int,
    area_code: str,
    source: CandidateSource,
    as_of: dt.date,
    max_picks: int,
    max_candidates: int,
    hex_size_meters: float | None = None,
    points: Sequence[tuple[float, float]] = (),
) -> Placement:
    """Where ``count`` new facilities of ``kind`` would bring the most zero-employment households within reach.

    Greedy maximal covering over the candidates (``source``): each pick is the candidate whose ``reach_meters`` (geodesic,
    WGS84 ellipsoid) takes in the most 零就业家庭 under ``area_code`` on ``as_of`` not yet within reach of an open facility
    of ``kind`` or of an earlier pick (ties: more labor-force persons, then the candidate's rank). Fewer than ``count``
    picks when no candidate covers anyone more. One statement; the viewer's row scope applies (an officer's households).

    Args:
        sm: the viewer's sessionmaker.
        kind: the facility kind planned (existing open facilities of it already cover their surroundings).
        reach_meters: how far a household may live from the facility, metres (0, 50,000].
        count: new facilities, 1..max_picks.
        area_code: the area whose households count (and whose sites or polygon give candidates).
        source: SITES, GRID (hexagons of ``hex_size_meters``) or POINTS (``points``, lon/lat WGS84).
        as_of: the date households' employment, residence and facilities' opening are taken on.
        max_picks: the setting planning.max_picks.
        max_candidates: the setting planning.max_candidates.
        hex_size_meters: the grid's hexagon size (edge length), metres, 100..50,000.
        points: candidate points for POINTS.

    Raises:
        InvalidInput: bounds (``check_placement``); a malformed or unknown ``areaCode``, or one without a boundary for GRID;
            more than max_candidates candidates (``points`` or ``hexSizeMeters``); POINTS without points.
    """
    check_placement(reach_meters=reach_meters, count=count, max_picks=max_picks, hex_size_meters=hex_size_meters, source=source)
    prefix = area_code_prefix(area_code, "areaCode")
    params: dict[str, Any] = {
        "as_of": as_of,
        "plen": len(prefix),
        "prefix": prefix,
        "kind": kind.value,
        "reach": reach_meters,
        "k": count,
        "code": area_code,
    }
    async with sm() as s:
        area = (
            await s.execute(
                text(
                    "SELECT a.geom IS NOT NULL AND NOT ST_IsEmpty(a.geom) AS has_geom, ST_X(ST_Centroid(a.geom)) AS lon, "
                    "ST_Y(ST_Centroid(a.geom)) AS lat, ST_Area(geography(a.geom)) AS m2 FROM admin_area a WHERE a.code = :c"
                ),
                {"c": area_code},
            )
        ).one_or_none()
        if area is None:
            raise InvalidInput(f"areaCode: {area_code} is not a recorded admin area", field="areaCode")
        if source is CandidateSource.POINTS:
            if not points:
                raise InvalidInput("points: give at least one candidate point with candidates POINTS", field="points")
            if len(points) > max_candidates:
                raise InvalidInput(f"points: {len(points)} candidates, at most {max_candidates}", field="points")
            params["lons"] = [p[0] for p in points]
            params["lats"] = [p[1] for p in points]
        elif source is CandidateSource.GRID:
            assert hex_size_meters is not None  # check_placement
            if not area.has_geom:
                raise InvalidInput(
                    f"areaCode: {area_code} has no recorded boundary for a grid; use candidates SITES or POINTS",
                    field="areaCode",
                )
            hex_m2 = 3 * math.sqrt(3) / 2 * hex_size_meters**2
            if area.m2 / hex_m2 > 1.5 * max_candidates:  # certainly too many: refused before generating the grid
                raise InvalidInput(_too_many(area.m2 / hex_m2, max_candidates), field="hexSizeMeters")
            zone = min(60, int((area.lon + 180) // 6) + 1)
            params |= {"size": hex_size_meters, "utm": (32600 if area.lat >= 0 else 32700) + zone}
            n = await s.scalar(text(f"SELECT count(*) FROM ({CANDIDATES[source]}) c"), params)
            if (n or 0) > max_candidates:
                raise InvalidInput(_too_many(n or 0, max_candidates), field="hexSizeMeters")
        sql = _sql("facility_placement.sql").replace("{candidates}", CANDIDATES[source])
        if len(prefix) >= 6:  # household_status's (county_code, valid_from) index narrows to the county first
            params["county"] = prefix[:6]
        rows = (await s.execute(text(sql.replace("{county}", COUNTY if len(prefix) >= 6 else "")), params)).all()
    picks = [
        Pick(
            pick=int(r.pick),
            candidate=int(r.cid),
            site_id=r.site_id,
            point=json.loads(r.point),
            households=int(r.households),
            persons=int(r.persons),
            cumulative_households=int(r.cumulative_households),
            cumulative_persons=int(r.cumulative_persons),
        )
        for r in rows
        if r.pick is not None
    ]
    return Placement(eligible_households=int(rows[0].eligible_households), candidates=int(rows[0].candidates), picks=picks)


def _too_many(n: float, max_candidates: int) -> str:
    return f"hexSizeMeters: the grid would hold about {n:,.0f} candidates, at most {max_candidates}; give a larger size"


# --------------------------------------------------------------------------- site scorecards


@dataclass(frozen=True, slots=True)
class NearestService:
    """A service kind (school, clinic, water supply) near a site: the nearest open one and households beyond a distance."""

    kind: m.FacilityKind
    facility_id: int | None
    distance_meters: float | None
    households_beyond: int


@dataclass(frozen=True, slots=True)
class Scorecard:
    """One relocation site on a date (API: ``SiteScorecard``); yuan, rates 0..1, metres.

    Coverage on ``as_of`` and one year before; per-capita net income of ``year`` and ``year − 1`` (Σ net income ÷ Σ
    recorded household size over the site's households with an income of the year); households with ≥ 1 income
    linkage in ``year``.
    """

    site_id: int
    households: int
    households_with_labor_force: int
    households_covered: int
    coverage_rate: float | None
    previous_coverage_rate: float | None
    per_capita_exact: Decimal | None
    previous_per_capita_exact: Decimal | None
    households_linked: int
    services: list[NearestService]
    open_monitoring_cases: int = 0
    """Monitoring cases open on the date among the site's households (``anju_case_open_on``)."""

    @property
    def coverage_change(self) -> float | None:
        """coverage_rate − previous_coverage_rate (percentage points as a fraction); None when either is."""
        if self.coverage_rate is None or self.previous_coverage_rate is None:
            return None
        return self.coverage_rate - self.previous_coverage_rate

    @property
    def per_capita_income(self) -> Decimal | None:
        """Per-capita net income of the year, yuan rounded half-up to 0.01 (None without an income recorded)."""
        return round_yuan(self.per_capita_exact) if self.per_capita_exact is not None else None

    @property
    def previous_per_capita_income(self) -> Decimal | None:
        """The same of the year before."""
        return round_yuan(self.previous_per_capita_exact) if self.previous_per_capita_exact is not None else None

    @property
    def per_capita_income_change_rate(self) -> float | None:
        """(this year − previous) ÷ previous, unrounded; None without both, or when the previous was 0."""
        a, b = self.per_capita_exact, self.previous_per_capita_exact
        return float((a - b) / b) if a is not None and b not in (None, 0) else None


SERVICE_KINDS = (m.FacilityKind.SCHOOL, m.FacilityKind.CLINIC, m.FacilityKind.WATER_SUPPLY)
"""The services a scorecard measures distance to (融入: school, clinic, water)."""


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


async def site_scorecards(sm: SessionMaker, keys: Sequence[tuple[int, dt.date, int, float]]) -> list[Scorecard | None]:
    """Batch: each (site id, as_of, income year, distance in metres) → its Scorecard (None for a site not seen).

    One grouped statement per distinct (as_of, year, distance) over every site asked (resolvers/sql/site_scorecard.sql).
    """
    groups: dict[tuple[dt.date, int, float], set[int]] = {}
    for sid, as_of, year, dist in keys:
        groups.setdefault((as_of, year, dist), set()).add(sid)
    found: dict[tuple[int, dt.date, int, float], Scorecard] = {}
    sql = text(_sql("site_scorecard.sql"))
    async with sm() as s:
        for (as_of, year, dist), ids in groups.items():
            params = {
                "ids": sorted(ids),
                "as_of": as_of,
                "before": _year_before(as_of),
                "year": year,
                "dist": dist,
                "kinds": [k.value for k in SERVICE_KINDS],
            }
            for r in await s.execute(sql, params):
                services = {x["kind"]: x for x in json.loads(r.services)}
                found[(r.site_id, as_of, year, dist)] = Scorecard(
                    site_id=int(r.site_id),
                    households=int(r.households),
                    households_with_labor_force=int(r.with_labor_force),
                    households_covered=int(r.covered),
                    coverage_rate=_rate(int(r.covered), int(r.with_labor_force)),
                    previous_coverage_rate=_rate(int(r.prev_covered), int(r.prev_with_labor_force)),
                    per_capita_exact=r.per_capita,
                    previous_per_capita_exact=r.prev_per_capita,
                    households_linked=int(r.linked),
                    open_monitoring_cases=int(r.open_cases),
                    services=[
                        NearestService(
                            kind=k,
                            facility_id=services.get(k.value, {}).get("facility_id"),
                            distance_meters=services.get(k.value, {}).get("distance_meters"),
                            households_beyond=int(services.get(k.value, {}).get("beyond", 0)),
                        )
                        for k in SERVICE_KINDS
                    ],
                )
    return [found.get(k) for k in keys]


async def site_ids_under(sm: SessionMaker, area_code: str | None, site_ids: Sequence[int] | None = None) -> list[int]:
    """Ids of the relocation sites the viewer sees under ``area_code`` (all when None) and among ``site_ids``, by id.

    Raises:
        InvalidInput: malformed ``areaCode``.
    """
    q = select(m.RelocationSite.id).order_by(m.RelocationSite.id)
    if area_code is not None:
        q = q.where(under_area(m.RelocationSite.admin_code, area_code, "areaCode"))
    if site_ids is not None:
        q = q.where(m.RelocationSite.id.in_(list(site_ids)))
    async with sm() as s:
        return list((await s.scalars(q)).all())


def _year_before(d: dt.date) -> dt.date:
    """The same day a year earlier (29 February → 28 February)."""
    try:
        return d.replace(year=d.year - 1)
    except ValueError:
        return d.replace(year=d.year - 1, day=28)
