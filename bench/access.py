"""Access benchmark (issue #5: who sees what): the same requests asked as an admin (no row-level
security), a county officer of Xide and a partner paired with Xide (both under row-level security,
``SET LOCAL ROLE anju_officer`` / ``anju_partner``), each beside the same SQL replayed directly (the viewer's
``set_config`` statement included). Run ``anju seed --scale sichuan`` (and ``anju migrate --database
anju_sichuan``) first, then ``.venv/bin/python -m bench.access``."""

from __future__ import annotations

from bench.common import Case, main, run_cases
from bench.spatial import SEAT, record_tile, tile_of

DAY = "2024-04-13"
COVERAGE = (
    '{ adminArea(code: "513432") { employmentCoverage(asOf: "2024-04-13") { households householdsCovered '
    "coverageRate zeroEmploymentHouseholds } } }"
)
PAGE = (
    '{ households(first: 100, filter: {areaCode: "513432"}) { nodes { id code size '
    'stablyEmployedCount(asOf: "2024-04-13") members { name } } } }'
)
LAYER = "{ featureCollection(layer: HOUSEHOLDS, bbox: [102.2, 28.1, 102.6, 28.5], zoom: 14, limit: 2000) }"
NEAREST = (
    '{ nearestFacilities(point: {type: "Point", coordinates: [102.41, 28.31]}, k: 5) '
    "{ distanceMeters facility { id name kind } } }"
)


async def run() -> None:
    x, y = tile_of(*SEAT, 10)
    cases = []
    for label, query, users in (
        ("employmentCoverage, Xide", COVERAGE, ("admin", "officer", "partner")),
        ("100 households of Xide + members + stablyEmployedCount", PAGE, ("admin", "officer")),
        ("featureCollection HOUSEHOLDS, bbox, 2,000 features", LAYER, ("admin", "officer")),
        ("nearestFacilities k=5", NEAREST, ("admin", "partner")),
    ):
        cases += [Case(f"{label} — as {u}", query, user=f"bench-{u}") for u in users]
    cases += [
        Case(
            f"vector tile households z10 — as {u}",
            path=f"/tiles/households/10/{x}/{y}.mvt",
            record_with=record_tile("households", 10, x, y),
            user=f"bench-{u}",
        )
        for u in ("admin", "officer")
    ]
    await run_cases(
        "access",
        "Access benchmark (bench/access.py)",
        cases,
        notes=(
            "Admins and planners keep the login role (no row-level security); the officer's and the partner's "
            "statements run as `anju_officer` / `anju_partner` under the policies of migration 0007. "
            "Every request also looks its "
            "token's user up (one indexed query, in the GraphQL column only)."
        ),
    )


if __name__ == "__main__":
    main(run())
