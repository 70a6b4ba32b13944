"""Writes by the people who keep household records.

Employments, income linkages, incomes, monitoring status and members.

Every write runs in one transaction and first claims the household's ``version`` (optimistic
locking): ``UPDATE household SET version = version + 1 WHERE id = :id AND version = :expected``.
A stale version raises ``StaleVersion`` (CONFLICT) and writes nothing, so two officers editing
the same household at once cannot overwrite each other: one wins, the other is told. Inputs are
validated before anything is written; errors name the field.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, NoReturn, TypeVar, cast, overload

import phonenumbers
from geoalchemy2.shape import from_shape
from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError
from stdnum.cn import ric
from stdnum.exceptions import ValidationError

import models as m
from resolvers import idempotency
from resolvers.access import audit, audit_row, check_write_scope, id_number_hash, row_json
from resolvers.errors import (
    DATA_EXCEPTION_CLASS,
    DEADLOCK_DETECTED,
    INSUFFICIENT_PRIVILEGE,
    INTEGRITY_CLASS,
    SERIALIZATION_FAILURE,
    UNIQUE_VIOLATION,
    AnjuError,
    Duplicate,
    InvalidInput,
    NotFound,
    OutOfScope,
    StaleVersion,
    constraint_name,
    sqlstate,
)
from resolvers.geometry import parse_geometry
from resolvers.query import SessionMaker, area_code_prefix, check_date, check_period, check_text_arg, check_year

H = m.Household
MAX_MONEY = Decimal("999999999999.99")  # numeric(14,2)
EMPLOYER_REQUIRED = {
    m.EmploymentChannel.LABOR_EXPORT,
    m.EmploymentChannel.LOCAL_ENTERPRISE,
    m.EmploymentChannel.PUBLIC_WELFARE_POST,
}
FACILITY_REQUIRED = {m.EmploymentChannel.WORKSHOP}
T = TypeVar("T")


@overload
def check_money(value: Decimal, field: str, *, required: Literal[True] = ...) -> Decimal: ...


@overload
def check_money(value: Decimal | None, field: str, *, required: bool = ...) -> Decimal | None: ...


def check_money(value: Decimal | None, field: str, *, required: bool = True) -> Decimal | None:
    """Yuan: finite, >= 0, at most 2 decimals, fits numeric(14,2). Raises InvalidInput naming ``field``."""
    if value is None:
        if required:
            raise InvalidInput(f"{field}: required (yuan)", field=field)
        return None
    if not value.is_finite() or value < 0:
        raise InvalidInput(f"{field}: {value} must be a finite amount >= 0 (yuan)", field=field)
    if value > MAX_MONEY:
        raise InvalidInput(f"{field}: {value} exceeds {MAX_MONEY} yuan", field=field)
    if value != value.quantize(Decimal("0.01")):
        raise InvalidInput(f"{field}: {value} has more than 2 decimals (yuan, fen precision)", field=field)
    return value.quantize(Decimal("0.01"))


def check_text(value: str | None, field: str, *, required: bool = False, max_len: int = 200) -> str | None:
    """``value`` stripped, None when blank (InvalidInput naming ``field`` when required or longer than ``max_len``)."""
    if value is None or value.strip() == "":
        if required:
            raise InvalidInput(f"{field}: required, 1 to {max_len} characters", field=field)
        return None
    value = check_text_arg(value.strip(), field)
    if len(value) > max_len:
        raise InvalidInput(f"{field}: expected 1 to {max_len} characters", field=field)
    return value


Missing = Callable[[AsyncSession, str, int, str], Awaitable[NoReturn]]
"""Raises why a record (table, id) is not there to write: NotFound or OutOfScope naming the field."""


async def claim_version(
    s: AsyncSession, model: Any, key: int, expected: int, field: str, *, missing: Missing = check_write_scope
) -> int:
    """Bump a record's version if it is still ``expected``; return the new version. The one optimistic lock.

    ``model``: a mapped class with ``id`` and ``version`` (household, site, facility, monitoring case, finding, plan
    target). ``UPDATE … SET version = version + 1 WHERE id = :id AND version = :expected``: the row stays locked until the
    transaction ends, so two writers of the same record serialise and the second finds the version changed.

    Raises:
        NotFound: no such record. OutOfScope: it exists outside the viewer's areas (row-level security hides it, for
        reading or for writing). Both from ``missing(s, table, key, field)``. StaleVersion: someone changed it since
        ``expected``.
    """
    # A committed version other than ``expected`` is stale already (versions only grow): answer at once instead of
    # queueing on the row lock behind the writer that made it so (1,000 racing edits of one household otherwise
    # serialise on that lock, and wait for pooled connections, behind each other).
    seen = await s.scalar(select(model.version).where(model.id == key))
    if seen is not None and seen != expected:
        raise StaleVersion(
            f"version: {str(model.__tablename__).replace('_', ' ')} {key} is at version {seen}, not {expected}; "
            "reload it and apply your change again",
            field="version",
        )
    new = await s.scalar(
        update(model)
        .where(model.id == key, model.version == expected)
        .values(version=model.version + 1)
        .returning(model.version)
        .execution_options(synchronize_session=False)
    )
    if new is not None:
        return int(new)
    table = str(model.__tablename__)
    current = await s.scalar(select(model.version).where(model.id == key))
    if current is None or current == expected:  # not there, or not the viewer's to write
        await missing(s, table, key, field)
    raise StaleVersion(
        f"version: {table.replace('_', ' ')} {key} is at version {current}, not {expected}; "
        "reload it and apply your change again",
        field="version",
    )


async def claimed_image(s: AsyncSession, table: str, key: int, expected: int) -> dict[str, Any]:
    """The audit image (``row_json``) of a record ``claim_version`` just claimed at ``expected``, as before the claim.

    Exact: the claim changed nothing but the version, and holds the row's lock.
    """
    image = await row_json(s, table, {"id": key})
    assert image is not None  # claimed in this transaction
    return {**image, "version": expected}


async def claim_household(s: AsyncSession, household_id: int, expected_version: int, field: str = "householdId") -> int:
    """``claim_version`` of a household (every write to a household's records claims the household)."""
    return await claim_version(s, H, household_id, expected_version, field)


async def member_household(s: AsyncSession, member_id: int, field: str = "memberId") -> int:
    """The household of member ``member_id``. Raises NotFound or OutOfScope (``field``) when the viewer cannot see it."""
    hid = await s.scalar(select(m.Member.household_id).where(m.Member.id == member_id))
    if hid is None:
        await check_write_scope(s, "member", member_id, field)
    return hid


async def check_county(s: AsyncSession, code: str, field: str = "countyCode") -> str:
    """``code`` when it names a county (an admin area of level COUNTY, 6 digits) — the one check of a county code.

    Raises:
        InvalidInput: a malformed code, or an admin area of another level, naming ``field``. NotFound: no such area.
    """
    area_code_prefix(code, field)  # its shape; the area is looked up by the code itself (a prefecture's prefix is no code)
    level = await s.scalar(select(m.AdminArea.level).where(m.AdminArea.code == code))
    if level is None:
        raise NotFound(f"{field}: no admin area {code}", field=field)
    if level is not m.AdminLevel.COUNTY:
        raise InvalidInput(f"{field}: {code} is a {level.value}, not a county", field=field)
    return code


async def check_facility(s: AsyncSession, facility_id: int | None, field: str = "facilityId") -> None:
    """The facility exists (None: nothing to check). Raises NotFound naming ``field``."""
    if facility_id is not None and await s.scalar(select(m.Facility.id).where(m.Facility.id == facility_id)) is None:
        raise NotFound(f"{field}: facility {facility_id} does not exist", field=field)


@idempotency.result_type
@dataclass(frozen=True, slots=True)
class Written:
    """What a mutation wrote: its household and the household's new version."""

    household_id: int
    version: int


@idempotency.result_type
@dataclass(frozen=True, slots=True)
class WrittenRecord(Written):
    """A mutation that wrote one record (employment, income linkage, member): also the record's id."""

    record_id: int


async def _insert(s: AsyncSession, record: m.Employment | m.IncomeLinkage | m.Member, action: str, table: str) -> int:
    """Add a new record in ``s``, flush it (giving its id) and audit it as ``action``; its id."""
    s.add(record)
    await s.flush()
    await audit_row(s, action, table, record.id, None)
    return int(record.id)


async def in_transaction(sm: SessionMaker, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """``await work(session)`` in one transaction (the change.

    The household's version and the audit row commit together or not at all); database rule violations become InvalidInput (a row
    outside the viewer's scope OutOfScope, a second ID number Duplicate), never SQL text.

    Inside a create given an ``idempotencyKey`` (``resolvers.idempotency.CURRENT``) the key is claimed first and the
    result stored under it, in the same transaction; a key committed before raises ``idempotency.Replayed`` with its result.
    """
    once = idempotency.CURRENT.get()
    try:
        async with sm() as s, s.begin():
            if once is None:
                return await work(s)
            await idempotency.claim(s, once)
            result = await work(s)
            await idempotency.store(s, once, result)
            return result
    except StaleDataError:  # an ORM flush found the household's version_id_col changed
        raise StaleVersion(
            "version: another edit changed the household first; reload it and apply your change again", field="version"
        ) from None
    except DBAPIError as exc:
        client = client_error(exc)
        if client is None:
            raise
        raise client from None


def client_error(exc: DBAPIError) -> AnjuError | None:
    """The client error of a database rule violation, by its SQLSTATE (never by message text).

    None when the database failed for another reason (→ INTERNAL).
    """
    code = sqlstate(exc) or ""
    if code == INSUFFICIENT_PRIVILEGE:  # row-level security refused the row
        return OutOfScope("the change touches a record outside your areas; nothing was written")
    if code == UNIQUE_VIOLATION and constraint_name(exc) == "uq_member_id_number_hash":
        return Duplicate("idNumber: this ID number is already recorded for another member; nothing was written", field="idNumber")
    if code == UNIQUE_VIOLATION and constraint_name(exc) == "uq_household_code":
        return Duplicate("code: another household already has this code (户编号 are unique); nothing was written", field="code")
    if code.startswith(INTEGRITY_CLASS):  # unique, foreign key, check, not null, exclusion
        return InvalidInput("input violates a data rule (e.g. a date order or a duplicate); nothing was written")
    if code.startswith(DATA_EXCEPTION_CLASS):  # numeric_value_out_of_range and other data exceptions
        return InvalidInput("a value is out of range; nothing was written")
    if code in (SERIALIZATION_FAILURE, DEADLOCK_DETECTED):
        return StaleVersion("another change to the same records ran at the same time; nothing was written, try again")
    return None


def check_not_future(value: dt.date, field: str, today: dt.date) -> dt.date:
    """A date of something that has happened: 1900..2100 and not after ``today``. Raises InvalidInput naming ``field``."""
    check_date(value, field)
    if value > today:
        raise InvalidInput(f"{field}: {value} is in the future (today is {today})", field=field)
    return value


def _dates(start_on: dt.date, end_on: dt.date | None, today: dt.date | None = None) -> None:
    if not dt.date(1950, 1, 1) <= start_on <= dt.date(2100, 12, 31):
        raise InvalidInput(f"startOn: {start_on} is outside 1950-01-01..2100-12-31", field="startOn")
    if today is not None and start_on > today:
        raise InvalidInput(f"startOn: {start_on} is in the future (today is {today})", field="startOn")
    if end_on is not None:
        check_date(end_on, "endOn")
    check_period(start_on, end_on)


async def record_employment(
    sm: SessionMaker,
    *,
    member_id: int,
    version: int,
    channel: m.EmploymentChannel,
    start_on: dt.date,
    stable: bool,
    end_on: dt.date | None = None,
    facility_id: int | None = None,
    employer_name: str | None = None,
    workplace: Any = None,
    outbound_region: str | None = None,
    monthly_wage: Decimal | None = None,
    max_vertices: int = 10_000,
    today: dt.date | None = None,
) -> WrittenRecord:
    """Record a member's employment spell (就业).

    Rules: endOn >= startOn; startOn not after ``today`` (when given); monthlyWage yuan >= 0 with <= 2 decimals; WORKSHOP
    needs facilityId; LABOR_EXPORT, LOCAL_ENTERPRISE and PUBLIC_WELFARE_POST need employerName or facilityId;
    workplace a GeoJSON Point (WGS84).

    Raises:
        InvalidInput / InvalidGeometry (BAD_USER_INPUT), NotFound (memberId, facilityId), StaleVersion.
    """
    checked = check_employment(
        channel=channel,
        start_on=start_on,
        end_on=end_on,
        facility_id=facility_id,
        employer_name=employer_name,
        outbound_region=outbound_region,
        monthly_wage=monthly_wage,
        today=today,
    )
    employer, region, wage = checked["employer_name"], checked["outbound_region"], checked["monthly_wage"]
    point = (
        parse_geometry(workplace, "workplace", allowed=("Point",), max_vertices=max_vertices) if workplace is not None else None
    )

    async def work(s: AsyncSession) -> WrittenRecord:
        hid = await member_household(s, member_id)
        await check_facility(s, facility_id)
        new_version = await claim_household(s, hid, version, field="memberId")
        e = m.Employment(
            member_id=member_id,
            household_id=hid,
            channel=channel,
            facility_id=facility_id,
            employer_name=employer,
            workplace=from_shape(point, srid=m.SRID) if point is not None else None,
            outbound_region=region,
            start_on=start_on,
            end_on=end_on,
            monthly_wage=wage,
            stable=stable,
        )
        return WrittenRecord(
            household_id=hid, version=new_version, record_id=await _insert(s, e, "recordEmployment", "employment")
        )

    return await in_transaction(sm, work)


def check_employment(
    *,
    channel: m.EmploymentChannel,
    start_on: dt.date,
    end_on: dt.date | None,
    facility_id: int | None,
    employer_name: str | None,
    outbound_region: str | None,
    monthly_wage: Decimal | None,
    today: dt.date | None,
) -> dict[str, Any]:
    """An employment's fields checked together (recordEmployment and correctEmployment).

    Returns:
        The column values to store: employer_name and outbound_region stripped (None when blank), monthly_wage quantized.

    Raises:
        InvalidInput naming the field (dates, money, a channel's required facilityId/employerName).
    """
    _dates(start_on, end_on, today)
    wage = check_money(monthly_wage, "monthlyWage", required=False)
    employer = check_text(employer_name, "employerName")
    region = check_text(outbound_region, "outboundRegion")
    if channel in FACILITY_REQUIRED and facility_id is None:
        raise InvalidInput(
            f"facilityId: required for channel {channel.name} (the workshop employing the member)", field="facilityId"
        )
    if channel in EMPLOYER_REQUIRED and facility_id is None and employer is None:
        raise InvalidInput(f"employerName: required for channel {channel.name} when no facilityId is given", field="employerName")
    return {"employer_name": employer, "outbound_region": region, "monthly_wage": wage}


async def end_employment(
    sm: SessionMaker,
    *,
    employment_id: int,
    version: int,
    end_on: dt.date,
) -> WrittenRecord:
    """Set the end date of an open employment spell.

    Raises:
        NotFound (employmentId); InvalidInput (endOn before startOn); StaleVersion (household changed, or
        the spell already ended — end dates are not overwritten).
    """

    async def work(s: AsyncSession) -> WrittenRecord:
        row = (
            await s.execute(
                select(m.Employment.start_on, m.Employment.end_on, m.Member.household_id)
                .join(m.Member, m.Member.id == m.Employment.member_id)
                .where(m.Employment.id == employment_id)
            )
        ).first()
        if row is None:
            await check_write_scope(s, "employment", employment_id, "employmentId")
        if row.end_on is not None:
            raise StaleVersion(f"endOn: employment {employment_id} already ended on {row.end_on}", field="endOn")
        check_date(end_on, "endOn")
        check_period(row.start_on, end_on)
        new_version = await claim_household(s, row.household_id, version, field="employmentId")
        before = await row_json(s, "employment", {"id": employment_id})
        ended = cast(
            CursorResult[Any],  # an UPDATE's result
            await s.execute(
                update(m.Employment)
                .where(m.Employment.id == employment_id, m.Employment.end_on.is_(None))
                .values(end_on=end_on)
                .execution_options(synchronize_session=False)
            ),
        )
        if ended.rowcount != 1:  # ended by someone else since we read it: not overwritten
            raise StaleVersion(f"endOn: employment {employment_id} was ended meanwhile", field="endOn")
        await audit_row(s, "endEmployment", "employment", employment_id, before)
        return WrittenRecord(household_id=row.household_id, version=new_version, record_id=employment_id)

    return await in_transaction(sm, work)


async def record_income_linkage(
    sm: SessionMaker,
    *,
    household_id: int,
    version: int,
    mechanism: m.LinkageMechanism,
    year: int,
    amount: Decimal,
    facility_id: int | None = None,
) -> WrittenRecord:
    """Record an income linkage (利益联结): yuan a household draws in ``year`` through ``mechanism``.

    Raises:
        InvalidInput (amount, year), NotFound (householdId, facilityId), StaleVersion.
    """
    check_year(year)
    value = check_money(amount, "amount")

    async def work(s: AsyncSession) -> WrittenRecord:
        await check_facility(s, facility_id)
        new_version = await claim_household(s, household_id, version)
        link = m.IncomeLinkage(household_id=household_id, facility_id=facility_id, mechanism=mechanism, year=year, amount=value)
        link_id = await _insert(s, link, "recordIncomeLinkage", "income_linkage")
        return WrittenRecord(household_id=household_id, version=new_version, record_id=link_id)

    return await in_transaction(sm, work)


def income_fields(
    *,
    year: int | None,
    net_income: Decimal | None,
    household_size: int | None,
    surveyed_on: dt.date | None,
    today: dt.date,
    problems: list[InvalidInput] | None = None,
) -> dict[str, Any]:
    """A household income's fields checked (recordHouseholdIncome and the income import): the one definition.

    ``year`` 2000..2100 and begun; ``net_income`` yuan (``check_money``); ``household_size`` 1..99 persons or None;
    ``surveyed_on`` not in the future, in ``year`` or the year after.

    Args:
        year: the income's calendar year.
        net_income: yuan (家庭纯收入).
        household_size: persons the year's per-capita figures divide by, or None.
        surveyed_on: the survey's date, or None.
        today: Asia/Shanghai's today.
        problems: when given, each problem is appended (not raised) and its field left out of the result.

    Returns:
        ``{"year", "net_income" (quantized)}`` for the fields that pass.

    Raises:
        InvalidInput naming the field (only when ``problems`` is None).
    """
    out: dict[str, Any] = {}

    def checked(name: str, check: Callable[[], Any]) -> None:
        try:
            out[name] = check()
        except InvalidInput as exc:
            if problems is None:
                raise
            problems.append(exc)

    def year_begun() -> int:
        if year is None:
            raise InvalidInput("year: required", field="year")
        check_year(year)
        if year > today.year:
            raise InvalidInput(f"year: {year} has not begun; record a year's income once it is surveyed", field="year")
        return year

    def size() -> int | None:
        if household_size is not None and not 1 <= household_size <= 99:
            raise InvalidInput(f"householdSize: {household_size} is outside 1..99 persons", field="householdSize")
        return household_size

    def surveyed() -> dt.date | None:
        if surveyed_on is not None:
            check_not_future(surveyed_on, "surveyedOn", today)
            if year is not None and surveyed_on.year not in (year, year + 1):
                raise InvalidInput(
                    f"surveyedOn: {surveyed_on} is not in {year} or {year + 1} (a year's income is surveyed then)",
                    field="surveyedOn",
                )
        return surveyed_on

    checked("year", year_begun)
    checked("net_income", lambda: check_money(net_income, "netIncome"))
    checked("household_size", size)
    checked("surveyed_on", surveyed)
    return out


async def record_household_income(
    sm: SessionMaker,
    *,
    household_id: int,
    version: int,
    year: int,
    net_income: Decimal,
    household_size: int | None = None,
    surveyed_on: dt.date | None = None,
    today: dt.date | None = None,
) -> Written:
    """Record (or correct) a household's surveyed net income of ``year`` (家庭纯收入), yuan.

    ``household_size`` (persons, 1..99) is what the year's per-capita figures divide by; omitted, a new record takes the
    members present on ``surveyed_on`` (else the year's end) and a correction keeps the size recorded. ``surveyed_on`` lies
    in ``year`` or the year after and not after ``today``.

    Raises:
        InvalidInput (netIncome, year, householdSize, surveyedOn), NotFound (householdId), StaleVersion.
    """
    value = income_fields(
        year=year, net_income=net_income, household_size=household_size, surveyed_on=surveyed_on, today=today or dt.date.today()
    )["net_income"]
    extra: dict[str, Any] = {}
    if household_size is not None:
        extra["household_size"] = household_size
    if surveyed_on is not None:
        extra["surveyed_on"] = surveyed_on

    async def work(s: AsyncSession) -> Written:
        new_version = await claim_household(s, household_id, version)
        key = {"household_id": household_id, "year": year}
        before = await row_json(s, "household_income", key)
        await s.merge(m.HouseholdIncome(household_id=household_id, year=year, net_income=value, **extra))
        await s.flush()
        await audit(
            s,
            "recordHouseholdIncome",
            "household_income",
            f"{household_id}/{year}",
            before,
            await row_json(s, "household_income", key),
        )
        return Written(household_id=household_id, version=new_version)

    return await in_transaction(sm, work)


async def set_monitoring_status(
    sm: SessionMaker,
    *,
    household_id: int,
    version: int,
    category: m.MonitoringCategory | None,
    risk_eliminated: bool | None,
) -> Written:
    """Put a household under monitoring (防返贫监测) with a category and whether its risk is eliminated.

    Or take it off (category and riskEliminated both null).

    Raises:
        InvalidInput (riskEliminated without category or the reverse), NotFound, StaleVersion.
    """
    if (category is None) != (risk_eliminated is None):
        raise InvalidInput(
            "riskEliminated: give it together with category, or leave both null to end monitoring", field="riskEliminated"
        )

    async def work(s: AsyncSession) -> Written:
        new_version = await claim_household(s, household_id, version)
        before = await claimed_image(s, "household", household_id, version)
        await s.execute(
            update(H)
            .where(H.id == household_id)
            .values(monitoring_category=category, risk_eliminated=risk_eliminated)
            .execution_options(synchronize_session=False)
        )
        await audit_row(s, "setMonitoringStatus", "household", household_id, before)
        return Written(household_id=household_id, version=new_version)

    return await in_transaction(sm, work)


@functools.lru_cache(maxsize=8192)
def _birth_place_known(region: str, year: int) -> bool:
    """python-stdnum's birth-place rule for a region code (6 digits) and birth year: a county of that code existed then."""
    try:
        ric.get_birth_place(f"{region}{year:04d}01010000")
    except ValidationError:
        return False
    return True


_RIC_BODY = re.compile(r"[0-9]{17}[0-9X]")


def valid_ric(number: str) -> bool:
    """``stdnum.cn.ric.is_valid`` for an 18-character number (upper case, no separators), fast for a roster's thousands.

    The same checks in python-stdnum's order — length and digits, check digit (``ric.calc_check_digit``), birth date
    (``ric.get_birth_date``), birth place in the birth year (``ric.get_birth_place``) — with the birth-place table lookup
    (≈ 0.2 ms) cached per (region, year). tests/test_household_import.py checks it agrees with ``ric.is_valid``.
    """
    if not _RIC_BODY.fullmatch(number) or number[-1] != ric.calc_check_digit(number):
        return False
    try:  # ric.get_birth_date without its cleaning pass (the number is compact already): digits 7–14, YYYYMMDD
        born = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return _birth_place_known(number[:6], born.year)


def check_id_number(value: str, key: bytes, field: str = "idNumber") -> tuple[str, str]:
    """A resident identity card number (GB 11643-1999.

    18 characters, check digit) as what is stored: (HMAC hash, last 4 characters). Raises InvalidInput naming ``field`` (the
    number is not echoed).
    """
    number = value.strip().upper()
    if not valid_ric(number):
        raise InvalidInput(f"{field}: not a valid 18-character resident identity card number (GB 11643 check digit)", field=field)
    if not key:
        raise InvalidInput(f"{field}: ID numbers cannot be recorded: no ID-number key is configured", field=field)
    return id_number_hash(key, number), number[-4:]


_MOBILE_DIGITS = re.compile(r"1[0-9]{10}")


def check_phone(value: str, field: str = "phone") -> str:
    """A Chinese mobile or landline number (libphonenumber), stored in national digits (13812345678, 01012345678).

    Raises InvalidInput naming ``field``.
    """
    if _MOBILE_DIGITS.fullmatch(value):
        # eleven digits starting with 1: what phonenumbers.parse(value, "CN") returns (no trunk 0, no country code can
        # start with 1 here, no extension), without its ≈ 90 µs of normalising (a roster's thousands of numbers)
        parsed = phonenumbers.PhoneNumber(country_code=86, national_number=int(value))
    else:
        try:
            parsed = phonenumbers.parse(value, "CN")
        except phonenumbers.NumberParseException:
            parsed = None
    if parsed is None or parsed.country_code != 86 or not phonenumbers.is_valid_number(parsed):
        raise InvalidInput(f"{field}: not a valid Chinese phone number", field=field)
    if parsed.extension:
        raise InvalidInput(f"{field}: give the number without an extension", field=field)
    national = str(parsed.national_number)
    if len(national) == 11 and national[0] == "1":  # a mobile: its national format is these digits (138 1234 5678)
        return national
    # national format keeps a landline's trunk 0 (010 1234 5678 → 01012345678; mobiles 13812345678)
    return re.sub(r"\D", "", phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL))


CAMEL = {"birth_year": "birthYear", "labor_force": "laborForce", "joined_on": "joinedOn", "join_reason": "joinReason"}
CLEARED: dict[str, dict[str, Any]] = {
    "phone": {"phone": None},
    "id_number": {"id_number_hash": None, "id_number_last4": None},
    "skills": {"skills": []},
}
"""Member fields a correction may clear (an explicit null), and the columns that clears."""


def member_fields(values: dict[str, Any], *, creating: bool, problems: list[InvalidInput] | None = None) -> dict[str, Any]:
    """A member's fields checked, as the columns to store.

    Creating, None means "not given"; correcting (``creating=False``), a key present with None clears the field where
    that is allowed (phone, idNumber, skills) and is refused otherwise. ``this_year``, ``today`` and ``id_number_key``
    ride along in ``values``. The one definition of a member's rules: addMember, updateMember, registerHousehold and
    the roster import (``resolvers/household_import.py``) all check members here.

    Args:
        values: the member's fields by column name (``name``, ``birth_year``, ``id_number``, …).
        creating: a new member (required fields must be there) or a correction.
        problems: when given, every field's problem is appended here (the field left out of the result) instead of
            the first one being raised: an import reports all the problems of a row at once.

    Raises:
        InvalidInput naming the field (only when ``problems`` is None).
    """
    out: dict[str, Any] = {}
    values = dict(values)
    this_year = values.pop("this_year", None) or dt.date.today().year
    today = values.pop("today", None) or dt.date.today()
    key = values.pop("id_number_key", b"")

    def checked(name: str, check: Callable[[], Any]) -> None:
        try:
            out[name] = check()
        except InvalidInput as exc:
            if problems is None:
                raise
            problems.append(exc)

    if not creating:
        for name in [k for k, v in values.items() if v is None]:
            del values[name]
            if name not in CLEARED:
                raise InvalidInput(f"{CAMEL.get(name, name)}: cannot be cleared; give a value", field=CAMEL.get(name, name))
            out.update(CLEARED[name])
    if values.get("id_number") is not None:
        checked("id_number", lambda: check_id_number(values["id_number"], key))
        if "id_number" in out:
            out["id_number_hash"], out["id_number_last4"] = out.pop("id_number")
    if values.get("phone") is not None:
        checked("phone", lambda: check_phone(values["phone"]))
    if "name" in values or creating:
        checked("name", lambda: check_text(values.get("name"), "name", required=True, max_len=50))
    if values.get("birth_year") is not None or creating:
        checked("birth_year", lambda: check_birth_year(values.get("birth_year"), this_year))
    for name in ("gender", "relation", "labor_force"):
        if values.get(name) is not None:
            out[name] = values[name]
        elif creating:
            checked(name, functools.partial(_required, CAMEL.get(name, name)))
    if values.get("skills") is not None:
        checked("skills", lambda: check_skills(values["skills"]))
    if values.get("joined_on") is not None:
        checked("joined_on", lambda: check_not_future(values["joined_on"], "joinedOn", today))
    if values.get("join_reason") is not None:
        out["join_reason"] = values["join_reason"]
    elif creating:
        out["join_reason"] = m.JoinReason.REGISTERED
    return out


def _required(field: str) -> NoReturn:
    raise InvalidInput(f"{field}: required", field=field)


def check_birth_year(value: int | None, this_year: int) -> int:
    """A member's year of birth: 1900..``this_year``. Raises InvalidInput naming birthYear."""
    if value is None or not 1900 <= value <= this_year:
        raise InvalidInput(f"birthYear: {value} is outside 1900..{this_year}", field="birthYear")
    return value


def check_skills(values: list[str | None]) -> list[str]:
    """A member's skills: at most 20, each 1..50 characters (stripped). Raises InvalidInput naming skills."""
    skills = [check_text(x, "skills", required=True, max_len=50) for x in values]
    if len(skills) > 20:
        raise InvalidInput("skills: at most 20", field="skills")
    return [s for s in skills if s is not None]


def check_joined(fields: dict[str, Any], birth_year: int) -> None:
    """JoinedOn against the birth year: not before it; a BIRTH member joined in the year of birth (joinedOn = birth date).

    Raises:
        InvalidInput naming joinedOn.
    """
    joined = fields.get("joined_on")
    if fields.get("join_reason") is m.JoinReason.BIRTH and (joined is None or joined.year != birth_year):
        raise InvalidInput(
            f"joinedOn: a member joining by BIRTH joins on the birth date, in birthYear {birth_year} (got {joined})",
            field="joinedOn",
        )
    if joined is not None and joined.year < birth_year:
        raise InvalidInput(f"joinedOn: {joined} is before birthYear {birth_year}", field="joinedOn")


async def add_member(sm: SessionMaker, *, household_id: int, version: int, **values: Any) -> WrittenRecord:
    """Add a member (家庭成员) to a household: name, gender, birth_year, relation, labor_force, skills, joined_on, join_reason.

    ``joined_on`` defaults to ``today`` (the member is in the household from the day recorded, so earlier years' sizes
    stay as they were); ``join_reason`` to REGISTERED. A BIRTH member joins on the birth date.

    Raises:
        InvalidInput (the field named; joinedOn in the future or not matching a BIRTH), NotFound (householdId), StaleVersion.
    """
    today = values.get("today") or dt.date.today()
    fields = member_fields(values, creating=True)
    fields.setdefault("joined_on", today)
    check_joined(fields, fields["birth_year"])

    async def work(s: AsyncSession) -> WrittenRecord:
        new_version = await claim_household(s, household_id, version)
        member = m.Member(household_id=household_id, skills=fields.pop("skills", []), **fields)
        member_id = await _insert(s, member, "addMember", "member")
        return WrittenRecord(household_id=household_id, version=new_version, record_id=member_id)

    return await in_transaction(sm, work)


async def update_member(sm: SessionMaker, *, member_id: int, version: int, **values: Any) -> WrittenRecord:
    """Change a member's given fields (others stay as they are); a given None clears phone, idNumber or skills.

    Raises:
        InvalidInput (the field named; nothing to change), NotFound (memberId), StaleVersion.
    """
    fields = member_fields(values, creating=False)
    if not fields:
        raise InvalidInput("input: nothing to change", field="input")

    async def work(s: AsyncSession) -> WrittenRecord:
        hid = await member_household(s, member_id)
        new_version = await claim_household(s, hid, version, field="memberId")
        before = await row_json(s, "member", {"id": member_id})
        await s.execute(
            update(m.Member).where(m.Member.id == member_id).values(**fields).execution_options(synchronize_session=False)
        )
        await audit_row(s, "updateMember", "member", member_id, before)
        return WrittenRecord(household_id=hid, version=new_version, record_id=member_id)

    return await in_transaction(sm, work)
