"""Planning (issue #15): ``facilityPlacement`` (where the next facility goes) and site scorecards.

Both are aggregates below the county, so partners are refused them (FORBIDDEN), as they are a site's coverage;
county officers get them over the households their row scope shows (their areas); planners and admins over all.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

import strawberry

from resolvers import planning
from resolvers.coords import CoordSys, geojson_to_wgs84
from resolvers.errors import InvalidInput
from resolvers.geometry import parse_geometry
from resolvers.query import check_year, require_id
from schema.enums import FacilityKind, describe_values
from schema.permissions import NotPartner, allow
from schema.scalars import GeoJSON
from schema.types import AsOfArg, Ctx, Facility, RelocationSite, geo_out, load_optional

CandidateSource = planning.CandidateSource
strawberry.enum(
    CandidateSource,
    name="PlacementCandidates",
    description="Where facilityPlacement's candidate locations come from.",
)
describe_values(
    CandidateSource,
    {
        "SITES": "The relocation sites under the area open on asOf, by id.",
        "GRID": "Centres of hexagons of edge hexSizeMeters (ST_HexagonGrid in the area's UTM zone) inside the area's boundary.",
        "POINTS": "The points sent in `points`, in that order.",
    },
)


@strawberry.type(description="One pick of facilityPlacement: a location and what a facility there newly covers.")
class PlacementPick:
    pick: int = strawberry.field(description="1 for the first (best) pick, 2 for the next, …")
    candidate: int = strawberry.field(
        description="The candidate's rank among those weighed (1-based): site id order (SITES), grid row/column order "
        "(GRID), or the position in `points` (POINTS)."
    )
    point: GeoJSON = strawberry.field(description="GeoJSON Point of the location, in the coordSys asked.")
    households: int = strawberry.field(
        description="Zero-employment households (零就业家庭) newly within reach: not within reach of an open facility of "
        "the kind nor of an earlier pick, 户."
    )
    persons: int = strawberry.field(
        description="Their labor-force members present on the date (none employed, so none in stable employment), 人."
    )
    cumulative_households: int = strawberry.field(description="Households newly covered by this and every earlier pick, 户.")
    cumulative_persons: int = strawberry.field(description="Persons newly covered by this and every earlier pick, 人.")
    _site_id: strawberry.Private[int | None]

    @strawberry.field(description="The relocation site picked (candidates SITES); null otherwise.")
    async def site(self, info: Ctx) -> RelocationSite | None:
        return await load_optional(info.context.loaders.site, self._site_id, RelocationSite.from_row)


@strawberry.type(
    description="Greedy maximal covering (Church & ReVelle 1974; greedy within 1 − 1/e of the best, Nemhauser, Wolsey & "
    "Fisher 1978): where `count` new facilities would bring the most zero-employment households within reach."
)
class FacilityPlacement:
    eligible_households: int = strawberry.field(
        description="Zero-employment households under the area on the date, with a known dwelling, not within reach of "
        "any open facility of the kind — what the picks may cover, 户."
    )
    candidates: int = strawberry.field(description="Candidate locations weighed.")
    picks: list[PlacementPick] = strawberry.field(
        description="In order; fewer than `count` when no further candidate covers anyone not yet covered."
    )


@strawberry.type(description="A service kind near a site: the nearest open facility of it, and households beyond a distance.")
class NearestService:
    kind: FacilityKind = strawberry.field(description="SCHOOL, CLINIC or WATER_SUPPLY.")
    distance_meters: float | None = strawberry.field(
        description="Geodesic metres (WGS84 ellipsoid) from the site's point to the nearest facility of the kind open on "
        "the date; null when there is none."
    )
    households_beyond: int = strawberry.field(
        description="Households living at the site on the date whose dwelling lies farther than `distanceMeters` from "
        "every open facility of the kind, 户."
    )
    _facility_id: strawberry.Private[int | None]

    @strawberry.field(description="The nearest open facility of the kind; null when there is none.")
    async def facility(self, info: Ctx) -> Facility | None:
        return await load_optional(info.context.loaders.facility, self._facility_id, Facility.from_row)


@strawberry.type(
    description="后续扶持 scorecard of a relocation site on a date (致富: income; 融入: services; 可持续: jobs): "
    "the same figures for every site, so sites compare. Yuan, metres, rates 0..1."
)
class SiteScorecard:
    as_of: dt.date = strawberry.field(description="The date of the employment and service figures.")
    year: int = strawberry.field(description="The income year of the income and linkage figures.")
    households: int = strawberry.field(description="Households living at the site on `asOf`, 户.")
    households_with_labor_force: int = strawberry.field(description="Of them, with labor force, 户.")
    households_covered: int = strawberry.field(description="With labor force and a member in stable employment, 户.")
    coverage_rate: float | None = strawberry.field(
        description="Employment coverage (就业覆盖率) on `asOf`: covered ÷ with labor force; null without labor force."
    )
    previous_coverage_rate: float | None = strawberry.field(description="The same a year before `asOf`.")
    coverage_change: float | None = strawberry.field(
        description="coverageRate − previousCoverageRate (the trend; 0.05 = 5 percentage points)."
    )
    per_capita_income: Decimal | None = strawberry.field(
        description="Σ net income ÷ Σ recorded household size of `year`, over the site's households at the year's end "
        "with an income recorded; yuan, rounded half-up to 0.01; null without one."
    )
    previous_per_capita_income: Decimal | None = strawberry.field(description="The same of `year − 1`.")
    per_capita_income_change_rate: float | None = strawberry.field(
        description="(perCapitaIncome − previous) ÷ previous, unrounded; null without both."
    )
    households_linked: int = strawberry.field(
        description="Households at the site at the year's end with at least one income linkage (利益联结) of `year`, 户."
    )
    open_monitoring_cases: int = strawberry.field(
        description="Monitoring cases (监测对象) open on `asOf` among the households living at the site then."
    )
    distance_meters: float = strawberry.field(description="The distance `services[].householdsBeyond` counts beyond, metres.")
    services: list[NearestService] = strawberry.field(description="School, clinic and water supply, in that order.")
    _site_id: strawberry.Private[int]

    @strawberry.field(description="The relocation site.")
    async def site(self, info: Ctx) -> RelocationSite:
        found = await load_optional(info.context.loaders.site, self._site_id, RelocationSite.from_row)
        assert found is not None  # the scorecard was read from the same visible row
        return found

    @classmethod
    def of(cls, c: planning.Scorecard, as_of: dt.date, year: int, distance: float) -> SiteScorecard:
        return cls(
            as_of=as_of,
            year=year,
            households=c.households,
            households_with_labor_force=c.households_with_labor_force,
            households_covered=c.households_covered,
            coverage_rate=c.coverage_rate,
            previous_coverage_rate=c.previous_coverage_rate,
            coverage_change=c.coverage_change,
            per_capita_income=c.per_capita_income,
            previous_per_capita_income=c.previous_per_capita_income,
            per_capita_income_change_rate=c.per_capita_income_change_rate,
            households_linked=c.households_linked,
            open_monitoring_cases=c.open_monitoring_cases,
            distance_meters=distance,
            services=[
                NearestService(
                    kind=s.kind,
                    distance_meters=s.distance_meters,
                    households_beyond=s.households_beyond,
                    _facility_id=s.facility_id,
                )
                for s in c.services
            ],
            _site_id=c.site_id,
        )


MAX_SITE_IDS = 500
"""Most ids siteScorecards takes in ``siteIds``."""

ScorecardYearArg = Annotated[
    int | None, strawberry.argument(description="Income year (default: the year before `asOf`'s, the last full year).")
]
ScorecardDistanceArg = Annotated[
    float | None,
    strawberry.argument(
        description="Distance in metres (geodesic) households are counted beyond, (0, 50,000]; default from the setting "
        "ANJU_PLANNING__SCORECARD_DISTANCE_METERS (5,000)."
    ),
]


def scorecard_args(info: Ctx, as_of: dt.date | None, year: int | None, distance: float | None) -> tuple[dt.date, int, float]:
    """(as_of, year, distance) of a scorecard, defaulted and checked.

    Raises:
        InvalidInput: asOf outside 1900..2100, year outside 2000..2100, distance outside (0, 50,000] m (``distanceMeters``).
    """
    d = info.context.as_of(as_of)
    y = check_year(year if year is not None else d.year - 1)
    dist = info.context.settings.planning.scorecard_distance_meters if distance is None else distance
    return d, y, planning.check_distance(dist, "distanceMeters")


async def load_scorecards(info: Ctx, site_ids: list[int], as_of: dt.date, year: int, dist: float) -> list[SiteScorecard]:
    """Scorecards of ``site_ids`` (one statement), in that order; sites the viewer cannot see are left out."""
    cards = await planning.site_scorecards(info.context.sessionmaker, [(sid, as_of, year, dist) for sid in site_ids])
    return [SiteScorecard.of(c, as_of, year, dist) for c in cards if c is not None]


@strawberry.type
class PlanningQuery:
    @strawberry.field(
        description="选址: where `count` new facilities of `kind` would bring the most zero-employment households "
        "(零就业家庭) under `areaCode` within `reachMeters` (geodesic, WGS84 ellipsoid) — greedy maximal covering, each "
        "pick counting only households not within reach of an open facility of the kind nor of an earlier pick. One SQL "
        "statement. Not for partner viewers.",
        extensions=allow(NotPartner),
    )
    async def facility_placement(
        self,
        info: Ctx,
        kind: Annotated[FacilityKind, strawberry.argument(description="The kind of facility planned, e.g. ASSISTANCE_WORKSHOP.")],
        reach_meters: Annotated[
            float, strawberry.argument(description="How far a household may live from it, metres (geodesic), (0, 50,000].")
        ],
        area_code: Annotated[
            str,
            strawberry.argument(description="Admin area whose households count (and whose sites or boundary give candidates)."),
        ],
        candidates: Annotated[
            CandidateSource,
            strawberry.argument(description="SITES (the area's relocation sites), GRID (hexagons) or POINTS (`points`)."),
        ],
        count: Annotated[
            int, strawberry.argument(description="How many new facilities, 1..20 (setting ANJU_PLANNING__MAX_PICKS).")
        ] = 1,
        hex_size_meters: Annotated[
            float | None,
            strawberry.argument(
                description="GRID: hexagon size (edge length) in metres, 100..50,000, in the area's UTM zone; at most "
                "5,000 hexagons (setting ANJU_PLANNING__MAX_CANDIDATES)."
            ),
        ] = None,
        points: Annotated[
            GeoJSON | None,
            strawberry.argument(description="POINTS: a GeoJSON MultiPoint (or Point) of candidates, in coordSys; at most 5,000."),
        ] = None,
        coord_sys: Annotated[
            CoordSys, strawberry.argument(description="Coordinate system of `points` and of the picks' points (default WGS84).")
        ] = CoordSys.WGS84,
        as_of: AsOfArg = None,
    ) -> FacilityPlacement:
        cfg = info.context.settings.planning
        pts: list[tuple[float, float]] = []
        if points is not None:
            geom: Any = parse_geometry(
                geojson_to_wgs84(points, coord_sys),
                "points",
                allowed=("MultiPoint", "Point"),
                max_vertices=max(cfg.max_candidates + 1, info.context.settings.features.max_vertices),
            )
            pts = [(p.x, p.y) for p in getattr(geom, "geoms", [geom])]
        result = await planning.facility_placement(
            info.context.sessionmaker,
            kind=kind,
            reach_meters=reach_meters,
            count=count,
            area_code=area_code,
            source=candidates,
            as_of=info.context.as_of(as_of),
            max_picks=cfg.max_picks,
            max_candidates=cfg.max_candidates,
            hex_size_meters=hex_size_meters,
            points=pts,
        )
        return FacilityPlacement(
            eligible_households=result.eligible_households,
            candidates=result.candidates,
            picks=[
                PlacementPick(
                    pick=p.pick,
                    candidate=p.candidate,
                    point=geo_out(p.point, coord_sys),
                    households=p.households,
                    persons=p.persons,
                    cumulative_households=p.cumulative_households,
                    cumulative_persons=p.cumulative_persons,
                    _site_id=p.site_id,
                )
                for p in result.picks
            ],
        )

    @strawberry.field(
        description="后续扶持 scorecards of every relocation site under `areaCode` (every site when omitted), by site id: one "
        "grouped statement, the same figures per site so they compare. Not for partner viewers.",
        extensions=allow(NotPartner),
    )
    async def site_scorecards(
        self,
        info: Ctx,
        area_code: Annotated[str | None, strawberry.argument(description="Only sites under this admin area.")] = None,
        site_ids: Annotated[
            list[strawberry.ID] | None,
            strawberry.argument(description="Only these sites (at most 500); every site when omitted."),
        ] = None,
        as_of: AsOfArg = None,
        year: ScorecardYearArg = None,
        distance_meters: ScorecardDistanceArg = None,
    ) -> list[SiteScorecard]:
        d, y, dist = scorecard_args(info, as_of, year, distance_meters)
        wanted = None
        if site_ids is not None:
            if len(site_ids) > MAX_SITE_IDS:
                raise InvalidInput(f"siteIds: {len(site_ids)} ids, at most {MAX_SITE_IDS}", field="siteIds")
            wanted = [require_id(x, "siteIds") for x in site_ids]
        ids = await planning.site_ids_under(info.context.sessionmaker, area_code, wanted)
        return await load_scorecards(info, ids, d, y, dist)
