"""Planning benchmark (issue #15): run ``anju seed --scale sichuan`` first, then ``.venv/bin/python -m bench.planning``.

facilityPlacement (greedy maximal covering, one statement) over Xide (513432, 2,657 km², its generated households) with
a hexagonal grid and with its sites as candidates, and siteScorecards for one site and for every site of the database,
each beside the same SQL replayed directly (bench/common.py); as a planner and as Xide's county officer.
"""

from __future__ import annotations

from bench.common import Case, main, run_cases

DAY = "2024-04-13"
PLACE = (
    "query($cand: PlacementCandidates!, $hex: Float, $count: Int!, $reach: Float!) {{ facilityPlacement(kind: "
    'ASSISTANCE_WORKSHOP, reachMeters: $reach, areaCode: "{area}", candidates: $cand, count: $count, hexSizeMeters: $hex, '
    f'asOf: "{DAY}") {{ eligibleHouseholds candidates picks {{ pick point households persons cumulativeHouseholds }} }} }}'
)
SCORE = (
    'query($ids: [ID!]) {{ siteScorecards(siteIds: $ids, areaCode: {area}, asOf: "' + DAY + '", year: 2023) {{ site {{ id }} '
    "households coverageRate coverageChange perCapitaIncome perCapitaIncomeChangeRate householdsLinked "
    "services {{ kind distanceMeters householdsBeyond }} }} }}"
)


async def run() -> None:
    xide = PLACE.format(area="513432")
    cases = [
        Case(
            "facilityPlacement, Xide, hexagons of 2 km, reach 5 km, 5 picks (planner)",
            xide,
            {"cand": "GRID", "hex": 2000.0, "count": 5, "reach": 5000.0},
            user="bench-planner",
        ),
        Case(
            "facilityPlacement, Xide, hexagons of 1 km, reach 3 km, 10 picks (planner)",
            xide,
            {"cand": "GRID", "hex": 1000.0, "count": 10, "reach": 3000.0},
            user="bench-planner",
        ),
        Case(
            "facilityPlacement, Xide, its sites, reach 5 km, 5 picks (county officer)",
            xide,
            {"cand": "SITES", "hex": None, "count": 5, "reach": 5000.0},
            user="bench-officer",
        ),
        Case("siteScorecards, Yixin (one site)", SCORE.format(area='"513432100004"'), {"ids": None}, user="bench-planner"),
        Case("siteScorecards, every site of the database", SCORE.format(area="null"), {"ids": None}, user="bench-planner"),
        Case("siteScorecards, Xide's sites (county officer)", SCORE.format(area='"513432"'), {"ids": None}, user="bench-officer"),
    ]
    notes = (
        "facilityPlacement is one statement (resolvers/sql/facility_placement.sql) after one or two small ones (the area's "
        "centroid and area; the grid's exact candidate count); siteScorecards is one statement after the list of site ids. "
        "Target (issue #15): placement under 2 s on a Sichuan-scale county."
    )
    await run_cases("planning", "Planning benchmark (bench/planning.py)", cases, notes=notes)


if __name__ == "__main__":
    main(run())
