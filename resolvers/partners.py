"""East-west cooperation (东西部协作): partners, their paired counties and projects; the audit log.

Reads run in the viewer's scope (row-level security, migration 0007): a partner viewer sees its own
partner row, pairings and projects only; admins see all; other roles see no partner. Writes are for
admins and are audited in their transaction (``mutations.in_transaction``).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

import models as m
from resolvers.access import audit, audit_row, row_json
from resolvers.errors import InvalidInput, NotFound
from resolvers.mutations import check_county, check_money, check_text, in_transaction
from resolvers.paging import Page, PageArgs
from resolvers.query import AnySelect, SessionMaker, check_year, fetch_page, lists_by_keys, rows_by_keys
from resolvers.rows import AuditRow, PartnerRow, ProjectRow, YearFundsRow

P, PC, PR, AL = m.CooperationPartner, m.PartnerCounty, m.CooperationProject, m.AuditLog


def partner_select() -> AnySelect:
    """Row: id, name, region, kind."""
    return select(P.id, P.name, P.region, P.kind)


def project_select() -> AnySelect:
    """Cooperation projects.

    Row: id, partner_id, name, county_code, facility_id, site_id, year, funds (yuan), households_benefited,
    self_raised_share (0..1).
    """
    return select(
        PR.id,
        PR.partner_id,
        PR.name,
        PR.county_code,
        PR.facility_id,
        PR.site_id,
        PR.year,
        PR.funds,
        PR.households_benefited,
        PR.self_raised_share,
    )


async def partners_page(sm: SessionMaker, args: PageArgs) -> Page[PartnerRow]:
    """The partners the viewer may see, by id."""
    return await fetch_page(sm, partner_select(), P.id, args, kind="cooperation_partner", build=PartnerRow.of)


async def partners_by_ids(sm: SessionMaker, ids: Sequence[int]) -> list[PartnerRow | None]:
    """Batch: partners aligned with ``ids`` (None when missing or not the viewer's to see)."""
    return await rows_by_keys(sm, partner_select(), P.id, ids, build=PartnerRow.of)


async def paired_counties_by_partner_ids(sm: SessionMaker, ids: Sequence[int]) -> list[list[str]]:
    """Batch: each partner's paired county codes, by code."""
    return await lists_by_keys(
        sm,
        select(PC.partner_id, PC.county_code),
        PC.partner_id,
        ids,
        build=lambda r: str(r.county_code),
        order=[PC.county_code],
    )


async def projects_by_partner_ids(
    sm: SessionMaker,
    keys: Sequence[tuple[int, int | None]],
) -> list[list[ProjectRow]]:
    """Batch: each (partner id, year or None) → its projects of that year (all years when None), by year, id."""
    out: dict[tuple[int, int | None], list[ProjectRow]] = {}
    by_year: dict[int | None, list[int]] = {}
    for pid, year in keys:
        by_year.setdefault(year, []).append(pid)
    for year, pids in by_year.items():
        q = project_select() if year is None else project_select().where(PR.year == year)
        lists = await lists_by_keys(sm, q, PR.partner_id, pids, build=ProjectRow.of, order=[PR.year, PR.id])
        for pid, lst in zip(pids, lists, strict=True):
            out[(pid, year)] = lst
    return [out[k] for k in keys]


async def funds_by_year_by_partner_ids(sm: SessionMaker, ids: Sequence[int]) -> list[list[YearFundsRow]]:
    """Batch: each partner's project funds per year: rows (partner_id.

    Year, funds yuan, projects, households_benefited), by year; one grouped statement.
    """
    q = select(
        PR.partner_id,
        PR.year,
        func.sum(PR.funds).label("funds"),
        func.count().label("projects"),
        func.coalesce(func.sum(PR.households_benefited), 0).label("households_benefited"),
    ).group_by(PR.partner_id, PR.year)
    return await lists_by_keys(sm, q, PR.partner_id, ids, build=YearFundsRow.of, order=[PR.year])


# --------------------------------------------------------------------------- admin writes


async def record_partner(
    sm: SessionMaker,
    *,
    name: str,
    region: str | None,
    kind: m.PartnerKind,
) -> int:
    """Create a cooperation partner. Raises InvalidInput (name empty, too long or taken)."""
    name_ = check_text(name, "name", required=True, max_len=200)
    region_ = check_text(region, "region", max_len=200)

    async def work(s: AsyncSession) -> int:
        if await s.scalar(select(P.id).where(P.name == name_)) is not None:
            raise InvalidInput(f"name: a partner named {name_!r} exists already", field="name")
        pid = int((await s.execute(insert(P).values(name=name_, region=region_, kind=kind).returning(P.id))).scalar_one())
        await audit_row(s, "recordCooperationPartner", "cooperation_partner", pid, None)
        return pid

    return await in_transaction(sm, work)


async def _partner(s: AsyncSession, partner_id: int, field: str = "partnerId") -> None:
    if await s.scalar(select(P.id).where(P.id == partner_id)) is None:
        raise NotFound(f"{field}: no cooperation partner {partner_id}", field=field)


async def pair_county(sm: SessionMaker, *, partner_id: int, county_code: str, paired: bool) -> None:
    """Pair (``paired``) or unpair a partner and a county. Idempotent: pairing twice writes nothing new.

    Raises:
        NotFound (partnerId, countyCode), InvalidInput (countyCode not a county).
    """

    async def work(s: AsyncSession) -> None:
        await _partner(s, partner_id)
        county = await check_county(s, county_code)
        key = {"partner_id": partner_id, "county_code": county}
        before = await row_json(s, "partner_county", key)
        if paired and before is None:
            await s.execute(insert(PC).values(**key))
        elif not paired and before is not None:
            await s.execute(delete(PC).where(PC.partner_id == partner_id, PC.county_code == county))
        else:
            return
        await audit(
            s,
            "pairPartnerCounty" if paired else "unpairPartnerCounty",
            "partner_county",
            f"{partner_id}/{county}",
            before,
            await row_json(s, "partner_county", key),
        )

    await in_transaction(sm, work)


SHARE_STEP = Decimal("0.001")  # cooperation_project.self_raised_share numeric(4,3)


async def record_project(
    sm: SessionMaker,
    *,
    partner_id: int,
    name: str,
    county_code: str,
    year: int,
    funds: Decimal,
    households_benefited: int | None = None,
    facility_id: int | None = None,
    site_id: int | None = None,
    self_raised_share: Decimal | None = None,
) -> int:
    """Record a project a partner funds (funds in yuan) in one of its paired counties.

    Optionally linked to a facility or site in that county.

    Raises:
        InvalidInput (name, year, funds, householdsBenefited < 0, share outside 0..1, county not paired,
        facility/site in another county), NotFound (partnerId, countyCode, facilityId, siteId).
    """
    name_ = check_text(name, "name", required=True, max_len=200)
    check_year(year)
    funds_ = check_money(funds, "funds")
    if households_benefited is not None and households_benefited < 0:
        raise InvalidInput("householdsBenefited: must be >= 0", field="householdsBenefited")
    if self_raised_share is not None and not (self_raised_share.is_finite() and 0 <= self_raised_share <= 1):
        raise InvalidInput("selfRaisedShare: a share between 0 and 1 (0.7 = 70 %)", field="selfRaisedShare")
    if self_raised_share is not None and self_raised_share != self_raised_share.quantize(SHARE_STEP):
        # numeric(4,3) would round 0.9996 to 1.000 (no co-funding at all): refused, not rounded
        raise InvalidInput(
            f"selfRaisedShare: {self_raised_share} has more than 3 decimals (0.001 = 0.1 %)", field="selfRaisedShare"
        )

    async def work(s: AsyncSession) -> int:
        await _partner(s, partner_id)
        county = await check_county(s, county_code)
        if await s.scalar(select(PC.county_code).where(PC.partner_id == partner_id, PC.county_code == county)) is None:
            raise InvalidInput(
                f"countyCode: {county_code} is not paired with partner {partner_id}; pair it first", field="countyCode"
            )
        places: tuple[tuple[str, type[m.Facility] | type[m.RelocationSite], int | None], ...] = (
            ("facilityId", m.Facility, facility_id),
            ("siteId", m.RelocationSite, site_id),
        )
        for field, model, key in places:
            if key is None:
                continue
            code = await s.scalar(select(model.admin_code).where(model.id == key))
            if code is None:
                raise NotFound(f"{field}: no such record {key}", field=field)
            if not code.startswith(county):
                raise InvalidInput(f"{field}: {key} lies outside county {county}", field=field)
        pid = int(
            (
                await s.execute(
                    insert(PR)
                    .values(
                        partner_id=partner_id,
                        name=name_,
                        county_code=county,
                        year=year,
                        funds=funds_,
                        households_benefited=households_benefited,
                        facility_id=facility_id,
                        site_id=site_id,
                        self_raised_share=self_raised_share,
                    )
                    .returning(PR.id)
                )
            ).scalar_one()
        )
        await audit_row(s, "recordCooperationProject", "cooperation_project", pid, None)
        return pid

    return await in_transaction(sm, work)


# --------------------------------------------------------------------------- audit log


def audit_select() -> AnySelect:
    """Row: id, at (timestamptz), user_name, role, action, entity, entity_id, before, after (JSON or None)."""
    return select(AL.id, AL.at, AL.user_name, AL.role, AL.action, AL.entity, AL.entity_id, AL.before, AL.after)


async def audit_page(
    sm: SessionMaker,
    args: PageArgs,
    *,
    entity: str | None,
    entity_id: str | None,
) -> Page[AuditRow]:
    """Audit rows, oldest first (by id), optionally of one entity kind and record."""
    q = audit_select()
    if entity is not None:
        q = q.where(AL.entity == entity)
    if entity_id is not None:
        q = q.where(AL.entity_id == entity_id)
    return await fetch_page(sm, q, AL.id, args, kind="audit_log", build=AuditRow.of)
