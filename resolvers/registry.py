"""The household registry's writes: households registered, corrected and moved, members leaving, records corrected.

Employments and income linkages are corrected in place or deleted (distinct from endEmployment).

Built on ``resolvers.mutations``: every write claims the household's ``version`` in one transaction
(``in_transaction``/``claim_household``; stale → CONFLICT, nothing written), leaves one audit row, and
row-level security confines county officers to their areas (a household outside them → FORBIDDEN).

Rules (docs/api.md "Recording data"):

- A household lives in a village/community: ``adminCode`` is a 12-digit code of an admin area of level
  ``village`` (origin: a village or township).
- A dwelling lies within ``registry.location_tolerance_meters`` (geodesic) of the polygon of its admin area, or of
  the nearest ancestor that has one (Xide's villages have none: the county's).
- ``siteId`` and ``relocatedOn`` go together (a household at a site moved there on a date); the site is open on that date.
- Dates of events (joinedOn, leftOn, movedOn, relocatedOn, an employment's startOn) are not after today.
- Residence rows are the truth: a move inserts one, a correction of the current residence updates the latest one.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, cast

from geoalchemy2.shape import from_shape
from sqlalchemy import CursorResult, delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

import models as m
from resolvers.access import audit, audit_row, check_write_scope, row_json
from resolvers.admin_areas import check_area, check_near_area
from resolvers.errors import InvalidInput, NotFound
from resolvers.geometry import parse_geometry
from resolvers.mutations import (
    Written,
    WrittenRecord,
    check_employment,
    check_facility,
    check_joined,
    check_money,
    check_not_future,
    check_text,
    claim_household,
    claimed_image,
    in_transaction,
    member_fields,
)
from resolvers.query import SessionMaker, check_year

H, R = m.Household, m.HouseholdResidence


async def check_site_open(s: AsyncSession, site_id: int, on: dt.date | None, field: str = "siteId") -> None:
    """The relocation site exists and is open on ``on`` (the database's ``anju_open_on``; None: not closed at all).

    Raises:
        NotFound (no such site) or InvalidInput (closed or not yet open), naming ``field``.
    """
    S = m.RelocationSite
    is_open = func.anju_open_on(S.opened_on, S.closed_on, on) if on is not None else S.closed_on.is_(None)
    row = (await s.execute(select(S.opened_on, S.closed_on, is_open.label("open")).where(S.id == site_id))).first()
    problem = site_problem(site_id, on, row, field)
    if problem is not None:
        raise problem


def site_problem(site_id: int, on: dt.date | None, row: Any, field: str = "siteId") -> NotFound | InvalidInput | None:
    """What is wrong with moving in to site ``site_id`` on ``on``, given its row (opened_on, closed_on, open), or None.

    ``open`` is the database's ``anju_open_on(opened_on, closed_on, on)``; ``row`` None: no such site. The one
    wording of a site that is not open (``check_site_open`` and the roster import).
    """
    if row is None:
        return NotFound(f"{field}: relocation site {site_id} does not exist", field=field)
    if row.open:
        return None
    if row.closed_on is not None:
        return InvalidInput(f"{field}: relocation site {site_id} is closed from {row.closed_on} on", field=field)
    return InvalidInput(f"{field}: relocation site {site_id} opened only on {row.opened_on}, after {on}", field=field)


def _point(value: Any, field: str, max_vertices: int) -> Any:
    return parse_geometry(value, field, allowed=("Point",), max_vertices=max_vertices) if value is not None else None


def _prefixed(exc: InvalidInput, prefix: str) -> InvalidInput:
    field = f"{prefix}.{exc.field}" if exc.field else prefix
    return InvalidInput(f"{prefix}.{exc.message}", field=field)


MAX_MEMBERS = 50
"""A household holds 1..50 members (registerHousehold, the roster import)."""


def check_member_count(n: int) -> None:
    """A new household's member count: 1..``MAX_MEMBERS``. Raises InvalidInput naming members."""
    if n < 1:
        raise InvalidInput("members: a household has at least one member", field="members")
    if n > MAX_MEMBERS:
        raise InvalidInput(f"members: at most {MAX_MEMBERS}", field="members")


def household_fields(
    *,
    code: str | None,
    site_id: int | None,
    relocated_on: dt.date | None,
    today: dt.date,
    problems: list[InvalidInput] | None = None,
) -> dict[str, Any]:
    """A new household's own fields checked (registerHousehold and the roster import): the one definition.

    ``code`` 1..40 characters; ``site_id`` and ``relocated_on`` together; ``relocated_on`` not in the future.

    Args:
        code: 户编号.
        site_id: its relocation site, or None.
        relocated_on: the day it moved to the site, or None.
        today: Asia/Shanghai's today.
        problems: when given, each problem is appended (not raised), the field left out of the result.

    Returns:
        ``{"code": stripped code}`` (without it when the code is refused).

    Raises:
        InvalidInput naming the field (only when ``problems`` is None).
    """
    out: dict[str, Any] = {}

    def fail(exc: InvalidInput) -> None:
        if problems is None:
            raise exc
        problems.append(exc)

    try:
        out["code"] = check_text(code, "code", required=True, max_len=40)
    except InvalidInput as exc:
        fail(exc)
    if (site_id is None) != (relocated_on is None):
        fail(
            InvalidInput("relocatedOn: give siteId and relocatedOn together (the date it moved to the site)", field="relocatedOn")
        )
    if relocated_on is not None:
        try:
            check_not_future(relocated_on, "relocatedOn", today)
        except InvalidInput as exc:
            fail(exc)
    return out


async def register_household(
    sm: SessionMaker,
    *,
    code: str,
    admin_code: str,
    poverty_status: m.PovertyStatus,
    members: list[dict[str, Any]],
    today: dt.date,
    site_id: int | None = None,
    origin_admin_code: str | None = None,
    dwelling: Any = None,
    relocated_on: dt.date | None = None,
    tolerance_meters: float = 2000,
    id_number_key: bytes = b"",
    max_vertices: int = 10_000,
) -> Written:
    """Register a household (搬迁户) with its members in one transaction.

    Args:
        sm: the viewer's sessionmaker (row-level security confines county officers).
        code: 户编号, unique.
        admin_code: where it lives, a village (12 digits).
        poverty_status: 脱贫户 / 一般户.
        site_id: its relocation site (with relocated_on).
        relocated_on: the date it moved to the site (with site_id).
        origin_admin_code: the village/township it left.
        tolerance_meters: registry.location_tolerance_meters.
        max_vertices: features.max_vertices.
        id_number_key: the HMAC key of ID numbers.
        members: dicts of ``member_fields`` (name, gender, birth_year, relation, labor_force, skills, id_number, phone,
            joined_on — None: a member since before the records begin —, join_reason — default REGISTERED).
        dwelling: GeoJSON Point (WGS84), checked against ``admin_code``'s polygon (``tolerance_meters``).
        today: the date "in the future" is measured from (Asia/Shanghai).

    Returns:
        Written(household id, version 1). Residence rows come from the household's columns (a trigger): relocated, the
        origin village (``origin_admin_code``, else ``admin_code``) until ``relocated_on`` and the site since.

    Raises:
        InvalidInput naming the field (``members[i].<field>`` for a member), NotFound (siteId), Duplicate (code, idNumber),
        OutOfScope (adminCode outside the officer's areas: nothing written).
    """
    code_value = household_fields(code=code, site_id=site_id, relocated_on=relocated_on, today=today)["code"]
    check_member_count(len(members))
    point = _point(dwelling, "dwelling", max_vertices)
    rows: list[dict[str, Any]] = []
    for i, values in enumerate(members):
        try:
            fields = member_fields(
                {**values, "today": today, "this_year": today.year, "id_number_key": id_number_key}, creating=True
            )
            check_joined(fields, fields["birth_year"])
        except InvalidInput as exc:
            raise _prefixed(exc, f"members[{i}]") from None
        rows.append(fields)

    async def work(s: AsyncSession) -> Written:
        home = await check_area(s, admin_code, "adminCode")
        origin = (
            await check_area(s, origin_admin_code, "originAdminCode", (m.AdminLevel.VILLAGE, m.AdminLevel.TOWNSHIP))
            if origin_admin_code is not None
            else None
        )
        if site_id is not None:
            await check_site_open(s, site_id, relocated_on)
        if point is not None:
            await check_near_area(s, (point.x, point.y), home, tolerance_meters, "dwelling")
        h = m.Household(
            code=code_value,
            admin_code=home,
            site_id=site_id,
            origin_admin_code=origin,
            dwelling=from_shape(point, srid=m.SRID) if point is not None else None,
            relocated_on=relocated_on,
            poverty_status=poverty_status,
        )
        s.add(h)
        await s.flush()
        hid = int(h.id)
        added = [m.Member(household_id=hid, skills=f.pop("skills", []), **f) for f in rows]
        s.add_all(added)
        await s.flush()
        after = await row_json(s, "household", {"id": hid})
        assert after is not None
        after["members"] = [await row_json(s, "member", {"id": x.id}) for x in added]
        await audit(s, "registerHousehold", "household", hid, None, after)
        return Written(household_id=hid, version=1)

    return await in_transaction(sm, work)


async def _residences(s: AsyncSession, household_id: int) -> list[Any]:
    """The household's residence rows by valid_from, with ``open`` false for the -infinity row."""
    return list(
        (
            await s.execute(
                select(R.valid_from, R.site_id, R.admin_code, (R.valid_from > text("date '-infinity'")).label("bounded"))
                .where(R.household_id == household_id)
                .order_by(R.valid_from)
            )
        ).all()
    )


async def move_household(
    sm: SessionMaker,
    *,
    household_id: int,
    version: int,
    moved_on: dt.date,
    admin_code: str,
    today: dt.date,
    site_id: int | None = None,
    dwelling: Any = None,
    tolerance_meters: float = 2000,
    max_vertices: int = 10_000,
) -> Written:
    """A household moves on ``moved_on`` (dated): a residence row from that day at ``site_id``/``admin_code``/``dwelling``.

    Rules: movedOn after the latest residence's start and not after ``today``; adminCode a village; the site open on movedOn;
    the dwelling near adminCode's polygon.

    Raises:
        InvalidInput (movedOn, adminCode, siteId, dwelling), NotFound (householdId, siteId), StaleVersion, OutOfScope.
    """
    check_not_future(moved_on, "movedOn", today)
    point = _point(dwelling, "dwelling", max_vertices)

    async def work(s: AsyncSession) -> Written:
        new_version = await claim_household(s, household_id, version)
        home = await check_area(s, admin_code, "adminCode")
        if site_id is not None:
            await check_site_open(s, site_id, moved_on)
        if point is not None:
            await check_near_area(s, (point.x, point.y), home, tolerance_meters, "dwelling")
        latest = (await _residences(s, household_id))[-1]
        if latest.bounded and moved_on <= latest.valid_from:
            raise InvalidInput(
                f"movedOn: {moved_on} is not after {latest.valid_from}, when the current residence began", field="movedOn"
            )
        before = await claimed_image(s, "household", household_id, version)
        s.add(
            R(
                household_id=household_id,
                valid_from=moved_on,
                site_id=site_id,
                admin_code=home,
                dwelling=from_shape(point, srid=m.SRID) if point is not None else None,
            )
        )
        await s.flush()
        await audit_row(s, "moveHousehold", "household", household_id, before)
        return Written(household_id=household_id, version=new_version)

    return await in_transaction(sm, work)


HOUSEHOLD_FIELDS = ("code", "admin_code", "site_id", "dwelling", "origin_admin_code", "relocated_on", "poverty_status")
NOT_CLEARABLE = {"code": "code", "admin_code": "adminCode", "relocated_on": "relocatedOn", "poverty_status": "povertyStatus"}


async def update_household(
    sm: SessionMaker,
    *,
    household_id: int,
    version: int,
    values: dict[str, Any],
    today: dt.date,
    tolerance_meters: float = 2000,
    max_vertices: int = 10_000,
) -> Written:
    """Correct a household in place: the keys of ``values`` change (a None clears siteId, dwelling, originAdminCode).

    ``admin_code``/``site_id``/``dwelling`` correct the latest residence row (not a move); ``relocated_on`` moves the
    first site row's date (between its neighbours, not in the future); ``origin_admin_code`` also corrects the origin
    row of a relocated household; ``code`` and ``poverty_status`` are the household's own.

    Raises:
        InvalidInput naming the field (nothing to change, a field that cannot be cleared), NotFound, StaleVersion,
        Duplicate (code), OutOfScope.
    """
    unknown = set(values) - set(HOUSEHOLD_FIELDS)
    if unknown:
        raise ValueError(f"update_household: unknown fields {sorted(unknown)}")
    if not values:
        raise InvalidInput("input: nothing to change", field="input")
    for key, field in NOT_CLEARABLE.items():
        if key in values and values[key] is None:
            raise InvalidInput(f"{field}: cannot be cleared; give a value", field=field)
    own: dict[str, Any] = {}
    if "code" in values:
        own["code"] = check_text(values["code"], "code", required=True, max_len=40)
    if "poverty_status" in values:
        own["poverty_status"] = values["poverty_status"]
    if values.get("relocated_on") is not None:
        check_not_future(values["relocated_on"], "relocatedOn", today)
    point = _point(values.get("dwelling"), "dwelling", max_vertices)

    async def work(s: AsyncSession) -> Written:
        new_version = await claim_household(s, household_id, version)
        before = await claimed_image(s, "household", household_id, version)
        rows = await _residences(s, household_id)
        latest = rows[-1]
        residence: dict[str, Any] = {}
        home = latest.admin_code
        if "admin_code" in values:
            home = residence["admin_code"] = await check_area(s, values["admin_code"], "adminCode")
        if "site_id" in values:
            if values["site_id"] is not None:
                if not latest.bounded:
                    raise InvalidInput(
                        "siteId: the household has no dated residence to correct; record its relocation with "
                        "moveHousehold (movedOn: the day it moved in)",
                        field="siteId",
                    )
                await check_site_open(s, values["site_id"], latest.valid_from)
            residence["site_id"] = values["site_id"]
        if "dwelling" in values:
            if point is not None:
                await check_near_area(s, (point.x, point.y), home, tolerance_meters, "dwelling")
            residence["dwelling"] = from_shape(point, srid=m.SRID) if point is not None else None
        elif "admin_code" in values:  # the current dwelling must suit the corrected admin area
            xy = (
                await s.execute(
                    select(func.ST_X(R.dwelling), func.ST_Y(R.dwelling)).where(
                        R.household_id == household_id, R.valid_from == latest.valid_from
                    )
                )
            ).one()
            if xy[0] is not None:
                await check_near_area(s, (xy[0], xy[1]), home, tolerance_meters, "dwelling")
        if "origin_admin_code" in values:
            origin = values["origin_admin_code"]
            if origin is not None:
                origin = await check_area(s, origin, "originAdminCode", (m.AdminLevel.VILLAGE, m.AdminLevel.TOWNSHIP))
            own["origin_admin_code"] = origin
            first = rows[0]
            if len(rows) > 1 and not first.bounded and first.site_id is None:
                await s.execute(
                    update(R)
                    .where(R.household_id == household_id, R.valid_from == first.valid_from)
                    .values(admin_code=origin or home)
                    .execution_options(synchronize_session=False)
                )
        if own:
            await s.execute(update(H).where(H.id == household_id).values(**own).execution_options(synchronize_session=False))
        if residence:
            await s.execute(
                update(R)
                .where(R.household_id == household_id, R.valid_from == latest.valid_from)
                .values(**residence)
                .execution_options(synchronize_session=False)
            )
        if values.get("relocated_on") is not None:
            await _move_relocation(s, household_id, values["relocated_on"], await _residences(s, household_id))
        await audit_row(s, "updateHousehold", "household", household_id, before)
        return Written(household_id=household_id, version=new_version)

    return await in_transaction(sm, work)


async def _move_relocation(s: AsyncSession, household_id: int, new_date: dt.date, rows: list[Any]) -> None:
    """Move the first dated site row to ``new_date``, strictly between its neighbours' starts."""
    sited = [i for i, r in enumerate(rows) if r.bounded and r.site_id is not None]
    if not sited:
        raise InvalidInput(
            "relocatedOn: the household has no dated residence at a site; record the move with moveHousehold",
            field="relocatedOn",
        )
    i = sited[0]
    prev = rows[i - 1] if i > 0 else None
    nxt = rows[i + 1] if i + 1 < len(rows) else None
    if prev is not None and prev.bounded and new_date <= prev.valid_from:
        raise InvalidInput(
            f"relocatedOn: {new_date} is not after the previous residence's start {prev.valid_from}", field="relocatedOn"
        )
    if nxt is not None and new_date >= nxt.valid_from:
        raise InvalidInput(
            f"relocatedOn: {new_date} is not before the next residence's start {nxt.valid_from}", field="relocatedOn"
        )
    await check_site_open(s, rows[i].site_id, new_date, "relocatedOn")
    await s.execute(
        update(R)
        .where(R.household_id == household_id, R.valid_from == rows[i].valid_from)
        .values(valid_from=new_date)
        .execution_options(synchronize_session=False)
    )


async def member_leaves(
    sm: SessionMaker,
    *,
    member_id: int,
    version: int,
    left_on: dt.date,
    reason: m.LeaveReason,
    today: dt.date,
) -> WrittenRecord:
    """A member leaves the household on ``left_on`` (减员): not a member from that day on.

    Raises:
        InvalidInput (leftOn: in the future, not after joinedOn, or the member already left), NotFound (memberId),
        StaleVersion, OutOfScope.
    """
    check_not_future(left_on, "leftOn", today)

    async def work(s: AsyncSession) -> WrittenRecord:
        row = (
            await s.execute(select(m.Member.household_id, m.Member.joined_on, m.Member.left_on).where(m.Member.id == member_id))
        ).first()
        if row is None:
            await check_write_scope(s, "member", member_id, "memberId")
        new_version = await claim_household(s, row.household_id, version, field="memberId")
        if row.left_on is not None:
            raise InvalidInput(f"leftOn: member {member_id} already left on {row.left_on}", field="leftOn")
        if row.joined_on is not None and left_on <= row.joined_on:
            raise InvalidInput(f"leftOn: {left_on} is not after joinedOn {row.joined_on}", field="leftOn")
        before = await row_json(s, "member", {"id": member_id})
        await s.execute(
            update(m.Member)
            .where(m.Member.id == member_id)
            .values(left_on=left_on, leave_reason=reason)
            .execution_options(synchronize_session=False)
        )
        await audit_row(s, "memberLeaves", "member", member_id, before)
        return WrittenRecord(household_id=row.household_id, version=new_version, record_id=member_id)

    return await in_transaction(sm, work)


EMPLOYMENT_FIELDS = (
    "channel",
    "facility_id",
    "employer_name",
    "workplace",
    "outbound_region",
    "start_on",
    "end_on",
    "monthly_wage",
    "stable",
)
E = m.Employment


async def correct_employment(
    sm: SessionMaker,
    *,
    employment_id: int,
    version: int,
    values: dict[str, Any],
    today: dt.date,
    max_vertices: int = 10_000,
) -> WrittenRecord:
    """Fix a wrongly entered employment in place: the keys of ``values`` change (None clears a nullable field).

    The corrected record is checked whole with recordEmployment's rules (``check_employment``); audited with before/after.

    Raises:
        InvalidInput naming the field, NotFound (id, facilityId), StaleVersion, OutOfScope.
    """
    unknown = set(values) - set(EMPLOYMENT_FIELDS)
    if unknown:
        raise ValueError(f"correct_employment: unknown fields {sorted(unknown)}")
    if not values:
        raise InvalidInput("input: nothing to change", field="input")
    for key, field in (("channel", "channel"), ("start_on", "startOn"), ("stable", "stable")):
        if key in values and values[key] is None:
            raise InvalidInput(f"{field}: cannot be cleared; give a value", field=field)
    point = _point(values.get("workplace"), "workplace", max_vertices)

    async def work(s: AsyncSession) -> WrittenRecord:
        row = (
            await s.execute(
                select(
                    E.household_id,
                    E.channel,
                    E.facility_id,
                    E.employer_name,
                    E.outbound_region,
                    E.start_on,
                    E.end_on,
                    E.monthly_wage,
                ).where(E.id == employment_id)
            )
        ).first()
        if row is None:
            await check_write_scope(s, "employment", employment_id, "id")
        merged = {k: values.get(k, getattr(row, k)) for k in EMPLOYMENT_FIELDS if k not in ("workplace", "stable")}
        checked = check_employment(**merged, today=today)
        await check_facility(s, values.get("facility_id"))
        new_version = await claim_household(s, row.household_id, version, field="id")
        changes = {k: v for k, v in values.items() if k != "workplace"}
        changes.update({k: checked[k] for k in checked if k in values})
        if "workplace" in values:
            changes["workplace"] = from_shape(point, srid=m.SRID) if point is not None else None
        before = await row_json(s, "employment", {"id": employment_id})
        await s.execute(update(E).where(E.id == employment_id).values(**changes).execution_options(synchronize_session=False))
        await audit_row(s, "correctEmployment", "employment", employment_id, before)
        return WrittenRecord(household_id=row.household_id, version=new_version, record_id=employment_id)

    return await in_transaction(sm, work)


async def _delete_record(
    sm: SessionMaker, model: type[m.Employment] | type[m.IncomeLinkage], table: str, record_id: int, version: int, action: str
) -> WrittenRecord:
    field = "id"  # the input names the record by `id`

    async def work(s: AsyncSession) -> WrittenRecord:
        hid = await s.scalar(select(model.household_id).where(model.id == record_id))
        if hid is None:
            await check_write_scope(s, table, record_id, field)
        new_version = await claim_household(s, hid, version, field=field)
        before = await row_json(s, table, {"id": record_id})
        gone = cast(
            CursorResult[Any],
            await s.execute(delete(model).where(model.id == record_id).execution_options(synchronize_session=False)),
        )
        if gone.rowcount != 1:
            raise NotFound(f"{field}: {table.replace('_', ' ')} {record_id} was deleted meanwhile", field=field)
        await audit(s, action, table, record_id, before, None)
        return WrittenRecord(household_id=hid, version=new_version, record_id=record_id)

    return await in_transaction(sm, work)


async def delete_employment(sm: SessionMaker, *, employment_id: int, version: int) -> WrittenRecord:
    """Delete an employment that should never have been recorded (an ended spell is ``end_employment``).

    Raises:
        NotFound (id), StaleVersion, OutOfScope.
    """
    return await _delete_record(sm, E, "employment", employment_id, version, "deleteEmployment")


LINKAGE_FIELDS = ("mechanism", "year", "amount", "facility_id")


async def correct_income_linkage(
    sm: SessionMaker, *, income_linkage_id: int, version: int, values: dict[str, Any]
) -> WrittenRecord:
    """Fix a wrongly entered income linkage in place (yuan, year, mechanism, facility; None clears facilityId).

    Raises:
        InvalidInput naming the field, NotFound (id, facilityId), StaleVersion, OutOfScope.
    """
    unknown = set(values) - set(LINKAGE_FIELDS)
    if unknown:
        raise ValueError(f"correct_income_linkage: unknown fields {sorted(unknown)}")
    if not values:
        raise InvalidInput("input: nothing to change", field="input")
    changes = dict(values)
    for key in ("mechanism", "year", "amount"):
        if key in changes and changes[key] is None:
            raise InvalidInput(f"{key}: cannot be cleared; give a value", field=key)
    if "year" in changes:
        check_year(changes["year"])
    if "amount" in changes:
        changes["amount"] = check_money(cast(Decimal, changes["amount"]), "amount")

    async def work(s: AsyncSession) -> WrittenRecord:
        L = m.IncomeLinkage
        hid = await s.scalar(select(L.household_id).where(L.id == income_linkage_id))
        if hid is None:
            await check_write_scope(s, "income_linkage", income_linkage_id, "id")
        await check_facility(s, changes.get("facility_id"))
        new_version = await claim_household(s, hid, version, field="id")
        before = await row_json(s, "income_linkage", {"id": income_linkage_id})
        await s.execute(update(L).where(L.id == income_linkage_id).values(**changes).execution_options(synchronize_session=False))
        after = await row_json(s, "income_linkage", {"id": income_linkage_id})
        await audit(s, "correctIncomeLinkage", "income_linkage", income_linkage_id, before, after)
        return WrittenRecord(household_id=hid, version=new_version, record_id=income_linkage_id)

    return await in_transaction(sm, work)


async def delete_income_linkage(sm: SessionMaker, *, income_linkage_id: int, version: int) -> WrittenRecord:
    """Delete an income linkage that should never have been recorded.

    Raises:
        NotFound (id), StaleVersion, OutOfScope.
    """
    return await _delete_record(sm, m.IncomeLinkage, "income_linkage", income_linkage_id, version, "deleteIncomeLinkage")
