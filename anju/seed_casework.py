"""[generated] Demo casework (issue #17): grids, cases at every stage, an inspection with a finding in every state.

Grids over Yixin's buildings and Qietuo's groups. Nothing here comes from a source; every name says ``[generated]``.

The grids follow the demo households' own admin areas (``make_grids``): a level-1 grid per township, a level-2 grid per
village or community, level-3 grids of 40 households (Yixin's "buildings", 栋) or of a third of the village (Qietuo's
groups, 组), in household-id order. Cases are written as the workflow would (each step in order: the stage trigger checks them).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

import models as m

GEN = "[generated]"
ORDER = list(m.CaseStage)[:12]
NOTICE_DAYS = 7


async def make_grids(conn: AsyncConnection, where: str, params: dict[str, object]) -> None:
    """[generated] grids over the households matching ``where`` (SQL over ``household h``, a constant of the caller).

    A level-1 grid per township, a level-2 grid per village or community, level-3 grids of 40 households for those at a
    relocation site (buildings, 栋) or a third of the village for the others (groups, 组), in household-id order; every
    household moved into its level-3 grid. Set-based: three statements whatever the number of households.
    """
    p = {"gen": GEN, **params}
    await conn.execute(
        text(
            f"""
            INSERT INTO grid (county_code, level, code, name)
            SELECT DISTINCT ON (left(h.admin_code, 9)) left(h.admin_code, 6), 1, left(h.admin_code, 9),
                   :gen || ' ' || coalesce(a.name, left(h.admin_code, 9))
            FROM household h LEFT JOIN admin_area a ON a.code IN (left(h.admin_code, 9), left(h.admin_code, 9) || '000')
            WHERE {where}
            ORDER BY left(h.admin_code, 9), a.name
            """
        ),
        p,
    )
    await conn.execute(
        text(
            f"""
            INSERT INTO grid (county_code, parent_id, level, code, name)
            SELECT DISTINCT ON (h.admin_code) left(h.admin_code, 6), t.id, 2, h.admin_code,
                   :gen || ' ' || coalesce(a.name, h.admin_code)
            FROM household h LEFT JOIN admin_area a ON a.code = h.admin_code
            JOIN grid t ON t.level = 1 AND t.county_code = left(h.admin_code, 6) AND t.code = left(h.admin_code, 9)
            WHERE {where}
            ORDER BY h.admin_code
            """
        ),
        p,
    )
    await conn.execute(
        text(
            f"""
            WITH n AS (
                SELECT h.id, h.admin_code, h.site_id IS NOT NULL AS building,
                       CASE WHEN h.site_id IS NOT NULL THEN (row_number() OVER w - 1) / 40 + 1 ELSE ntile(3) OVER w END AS k
                FROM household h WHERE {where}
                WINDOW w AS (PARTITION BY h.admin_code, h.site_id IS NOT NULL ORDER BY h.id)),
            g AS (
                INSERT INTO grid (county_code, parent_id, level, code, name)
                SELECT DISTINCT left(n.admin_code, 6), v.id, 3,
                       n.admin_code || CASE WHEN n.building THEN '-B' ELSE '-G' END || lpad(n.k::text, 3, '0'),
                       :gen || ' ' || n.k || CASE WHEN n.building THEN '栋 building' ELSE '组 group' END
                FROM n JOIN grid v ON v.level = 2 AND v.county_code = left(n.admin_code, 6) AND v.code = n.admin_code
                RETURNING id, county_code, code)
            UPDATE household h SET grid_id = g.id
            FROM n JOIN g ON g.county_code = left(n.admin_code, 6)
                AND g.code = n.admin_code || CASE WHEN n.building THEN '-B' ELSE '-G' END || lpad(n.k::text, 3, '0')
            WHERE h.id = n.id
            """
        ),
        p,
    )


async def load_demo_casework(conn: AsyncConnection, site_id: int, tea_village: str) -> dict[str, int]:
    """Grids, cases and one inspection (see the module docstring); answers the row counts written."""
    await make_grids(conn, "h.site_id = :site OR h.admin_code = :tea", {"site": site_id, "tea": tea_village})
    grids = int(await conn.scalar(select(text("count(*)")).select_from(m.Grid)) or 0)
    # cases: one at every stage (13: the 12 of the workflow and a refused identification), one refused elimination
    households = list(
        (
            await conn.execute(
                select(m.Household.id, m.Household.county_code)
                .where(m.Household.site_id == site_id)
                .order_by(m.Household.id)
                .limit(14)
            )
        ).all()
    )
    cases = 0
    for k, (hid, county) in enumerate(households):
        target = {12: 3, 13: 5}.get(k, k)
        opened = dt.date(2024, 3, 1) + dt.timedelta(days=k)
        cid = (
            await conn.execute(
                insert(m.MonitoringCase)
                .values(household_id=hid, county_code=county, category=list(m.MonitoringCategory)[k % 3],
                        risk_types=[list(m.RiskType)[k % 11]], source=list(m.CaseSource)[k % 4], opened_on=opened,
                        stage=m.CaseStage.APPLICATION, stage_on=opened, notes=f"{GEN} demo case")
                .returning(m.MonitoringCase.id)
            )
        ).scalar_one()  # fmt: skip
        day = opened
        steps = [(m.CaseStage.APPLICATION, True, m.CaseStage.APPLICATION)]
        steps += [(s, True, s) for s in ORDER[1 : target + 1]]
        if k == 12:  # the township refuses: not included
            steps.append((m.CaseStage.TOWNSHIP_REVIEW, False, m.CaseStage.NOT_INCLUDED))
        if k == 13:  # an elimination refused at the village appraisal: monitored again
            steps += [(s, True, s) for s in ORDER[6:8]] + [
                (m.CaseStage.ELIMINATION_APPRAISAL, False, m.CaseStage.COUNTY_APPROVAL)
            ]
        included = closed = None
        for stage, approved, after in steps:
            notice = None
            if stage in (m.CaseStage.PUBLIC_NOTICE, m.CaseStage.ELIMINATION_NOTICE) and approved:
                notice = (day + dt.timedelta(days=1), day + dt.timedelta(days=NOTICE_DAYS))
                day = notice[1] + dt.timedelta(days=1)
            elif stage is not m.CaseStage.APPLICATION:
                day += dt.timedelta(days=3)
            await conn.execute(
                insert(m.CaseStep).values(
                    case_id=cid, stage=stage, approved=approved, stage_after=after, acted_on=day, user_name=f"{GEN} demo",
                    actor_level="admin", participants=[f"{GEN} 网格员", f"{GEN} 驻村干部"], notes=GEN,
                    notice_from=notice[0] if notice else None, notice_to=notice[1] if notice else None,
                )
            )  # fmt: skip
            if approved and stage is m.CaseStage.COUNTY_APPROVAL:
                included = day
            if after in (m.CaseStage.NOT_INCLUDED, m.CaseStage.ELIMINATION_CONFIRMATION):
                closed = day
            await conn.execute(
                update(m.MonitoringCase)
                .where(m.MonitoringCase.id == cid)
                .values(stage=after, stage_on=day, included_on=included, closed_on=closed, version=m.MonitoringCase.version + 1)
            )
        if included is not None:
            await conn.execute(
                insert(m.AssistanceMeasure).values(
                    household_id=hid, case_id=cid, type=list(m.MeasureType)[k % 11], responsible=f"{GEN} 县帮扶责任单位",
                    funds=Decimal("2000.00") + 500 * k, start_on=included + dt.timedelta(days=5),
                    status=m.MeasureStatus.COMPLETED if closed else m.MeasureStatus.IN_PROGRESS, notes=GEN,
                )
            )  # fmt: skip
        cases += 1
    # an inspection of Xide with a finding in every state
    county = households[0][1]
    iid = (
        await conn.execute(
            insert(m.Inspection)
            .values(county_code=county, kind=m.InspectionKind.UNANNOUNCED, starts_on=dt.date(2024, 9, 2),
                    ends_on=dt.date(2024, 9, 4), team=[f"{GEN} 省督导组"], notes=GEN)
            .returning(m.Inspection.id)
        )
    ).scalar_one()  # fmt: skip
    await conn.execute(
        insert(m.SpotCheck),
        [{"inspection_id": iid, "household_id": h, "site_id": None, "visited_on": dt.date(2024, 9, 3)} for h, _ in households[:2]]
        + [{"inspection_id": iid, "household_id": None, "site_id": site_id, "visited_on": dt.date(2024, 9, 3)}],
    )
    found, deadline = dt.date(2024, 9, 3), dt.date(2024, 10, 31)
    dates = [(None, None, None), (dt.date(2024, 9, 10), None, None), (dt.date(2024, 9, 10), dt.date(2024, 10, 20), None),
             (dt.date(2024, 9, 10), dt.date(2024, 10, 20), dt.date(2024, 11, 5))]  # fmt: skip
    await conn.execute(
        insert(m.Finding),
        [
            {"inspection_id": iid, "county_code": county, "kind": kind, "description": f"{GEN} demo finding ({state.value})",
             "unit": f"{GEN} 县乡村振兴局", "found_on": found, "deadline": deadline, "state": state,
             "rectifying_on": d[0], "rectified_on": d[1], "verified_on": d[2], "notes": GEN}
            for state, kind, d in zip(m.FindingState, list(m.FindingKind), dates, strict=False)
        ],
    )  # fmt: skip
    return {"grids": grids, "cases": cases, "findings": 4}
