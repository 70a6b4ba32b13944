"""Importing employments (就业台账): one row per job spell of a member, the way ``anju import incomes`` works.

The member is named by its ID number (``身份证号 id_number``, matched by its HMAC hash like the roster's members); a
spell is the member's ``channel`` from ``start_on``: a row whose member, channel and start date are recorded corrects
that spell (end date, stable, facility, employer, region, wage; a blank cell keeps the stored value), any other row
records a new one. Each row is checked with recordEmployment's rules (``check_employment``: dates, wage, a channel's
required facility or employer), staged by COPY and checked in SQL (the member is recorded and the viewer's, the facility
exists, a spell once per file), then written set-based: one ``UPDATE … FROM``, one ``INSERT … SELECT`` (the triggers keep
``employment.household_id`` and ``household_status``), households' ``version`` bumped, one audit row per spell
(``importEmployments``). Atomic, ``valid_only`` (rows stand alone) and ``dry_run`` as the other imports.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

import models as m
from resolvers.errors import InvalidInput
from resolvers.household_import import (
    Column,
    ImportResult,
    Problem,
    _bool,
    _cell_text,
    _date,
    _id_number,
    _int,
    _labels,
    _text,
    map_header,
    open_staging,
    staged_counts,
    write_staged,
)
from resolvers.income_import import _money
from resolvers.mutations import check_employment, check_id_number, client_error
from resolvers.query import SessionMaker
from resolvers.tabular import FileLimits, open_table

ACTION = "importEmployments"
EXAMPLE_ID = "11010519491231002X"
"""The template's example rows name GB 11643's own example number; rows with it are skipped."""

_channel = _labels(
    m.EmploymentChannel,
    {
        "劳务输出": "LABOR_EXPORT",
        "帮扶车间": "WORKSHOP",
        "帮扶车间吸纳": "WORKSHOP",
        "自主创业": "SELF_EMPLOYMENT",
        "公益性岗位": "PUBLIC_WELFARE_POST",
        "就近企业务工": "LOCAL_ENTERPRISE",
        "就近企业": "LOCAL_ENTERPRISE",
        "灵活就业": "FLEXIBLE",
    },
)

EMPLOYMENT_COLUMNS: tuple[Column, ...] = (
    Column(
        "id_number", "身份证号", "idNumber", False, True, _id_number,
        "成员的 18 位身份证号（已登记的成员）；单元格设为文本。The member's ID number (a recorded member).",
        (EXAMPLE_ID, EXAMPLE_ID), "id",
    ),
    Column(
        "channel", "就业渠道", "channel", False, True, _channel,
        "劳务输出、帮扶车间、自主创业、公益性岗位、就近企业务工、灵活就业。Employment channel (LABOR_EXPORT, WORKSHOP, …).",
        ("帮扶车间", "劳务输出"),
    ),
    Column(
        "start_on", "开始日期", "startOn", False, True, _date,
        "开始日期 YYYY-MM-DD，不晚于今天；与成员、渠道一起标识一段就业。"
        "First day; with the member and channel it names the spell.",
        ("2024-05-01", "2023-03-01"),
    ),
    Column(
        "end_on", "结束日期", "endOn", False, False, _date,
        "结束日期；空：仍在就业（或保留已记录的）。Last day; blank: still lasting.", ("", "2023-12-31"),
    ),
    Column("stable", "是否稳定就业", "stable", False, True, _bool, "是 或 否。Stable employment (稳定就业).", ("是", "否")),
    Column(
        "facility_id", "设施编号", "facilityId", False, False, _int,
        "用工设施 id（帮扶车间必填）。The employing facility (required for WORKSHOP).", ("1", ""),
    ),
    Column(
        "employer_name", "用工单位", "employerName", False, False, _text,
        "用工单位（劳务输出、就近企业、公益性岗位无设施时必填）。Employer, where no facility.", ("", "浙江某服装厂 [example]"),
    ),
    Column(
        "outbound_region", "务工地区", "outboundRegion", False, False, _text,
        "劳务输出的务工地。Where a LABOR_EXPORT job is.", ("", "浙江省"),
    ),
    Column(
        "monthly_wage", "月工资", "monthlyWage", False, False, _money,
        "月工资（元，≥ 0，最多 2 位小数）。Yuan per month.", ("2100.00", "4500"),
    ),
)  # fmt: skip
BY_KEY = {c.key: c for c in EMPLOYMENT_COLUMNS}
FIELD_KEY = {c.field: c.key for c in EMPLOYMENT_COLUMNS}

_CREATE = """
CREATE TEMP TABLE imp_employment (
    row integer PRIMARY KEY, id_hash text, channel text, start_on date, end_on date, stable boolean, facility_id bigint,
    employer_name text, outbound_region text, monthly_wage numeric(14, 2), bad boolean NOT NULL,
    member_id bigint, household_id bigint, employment_id bigint, state text
) ON COMMIT DROP
"""
_STAGE = (
    "row", "id_hash", "channel", "start_on", "end_on", "stable", "facility_id", "employer_name", "outbound_region",
    "monthly_wage", "bad",
)  # fmt: skip
_CHECK = """
SELECT i.row, mb.id AS member_id, rec.hash IS NOT NULL AS recorded, i.facility_id, f.id IS NOT NULL AS facility_found,
       first_value(i.row) OVER (PARTITION BY i.id_hash, i.channel, i.start_on ORDER BY i.row) AS first_row
FROM imp_employment i
LEFT JOIN member mb ON mb.id_number_hash = i.id_hash
LEFT JOIN anju_recorded_id_hashes(ARRAY(SELECT DISTINCT id_hash FROM imp_employment)) rec(hash) ON rec.hash = i.id_hash
LEFT JOIN facility f ON f.id = i.facility_id
WHERE NOT i.bad
ORDER BY i.row
"""
_MATCH = """
UPDATE imp_employment i SET member_id = mb.id, household_id = mb.household_id,
    employment_id = (SELECT min(e.id) FROM employment e
                     WHERE e.member_id = mb.id AND e.channel = CAST(i.channel AS employment_channel) AND e.start_on = i.start_on)
FROM member mb WHERE mb.id_number_hash = i.id_hash AND NOT i.bad
"""
_NEW = {
    "end_on": "coalesce(i.end_on, e.end_on)",
    "stable": "i.stable",
    "facility_id": "coalesce(i.facility_id, e.facility_id)",
    "employer_name": "coalesce(i.employer_name, e.employer_name)",
    "outbound_region": "coalesce(i.outbound_region, e.outbound_region)",
    "monthly_wage": "coalesce(i.monthly_wage, e.monthly_wage)",
}
_CLASSIFY = f"""
UPDATE imp_employment i SET state = CASE WHEN e.id IS NULL THEN 'new'
    WHEN ({", ".join(f"e.{c}" for c in _NEW)}) IS DISTINCT FROM ({", ".join(_NEW.values())}) THEN 'changed' ELSE 'same' END
FROM imp_employment i2 LEFT JOIN employment e ON e.id = i2.employment_id
WHERE i2.row = i.row AND NOT i.bad
"""
_UPDATE = (
    "UPDATE employment e SET "
    + ", ".join(f"{c} = {v}" for c, v in _NEW.items())
    + " FROM imp_employment i WHERE i.state = 'changed' AND e.id = i.employment_id"
)
_INSERT = """
WITH new AS (
    INSERT INTO employment (member_id, household_id, channel, facility_id, employer_name, outbound_region, start_on, end_on,
                            monthly_wage, stable)
    SELECT member_id, household_id, CAST(channel AS employment_channel), facility_id, employer_name, outbound_region,
           start_on, end_on, monthly_wage, stable
    FROM imp_employment WHERE state = 'new' ORDER BY row
    RETURNING id, member_id, channel, start_on
)
UPDATE imp_employment i SET employment_id = new.id FROM new
WHERE i.state = 'new' AND new.member_id = i.member_id AND new.channel = CAST(i.channel AS employment_channel)
  AND new.start_on = i.start_on
"""


async def import_employments(
    sm: SessionMaker,
    path: str | Path,
    *,
    limits: FileLimits,
    today: dt.date,
    id_number_key: bytes,
    encoding: str | None = None,
    dry_run: bool = False,
    valid_only: bool = False,
) -> ImportResult:
    """Import employments (one row per spell of a member named by ID number) in one transaction.

    Args:
        sm: the importing viewer's sessionmaker (a county officer: members of its households only), or the plain one.
        path: ``.csv`` (UTF-8 or GB18030 by the strict rule) or ``.xlsx``.
        limits: settings ``imports``.
        today: Asia/Shanghai's date (a start after it is refused).
        id_number_key: the HMAC key of ID numbers (settings ``privacy.id_number_key``).
        encoding: a CSV's encoding, overriding the rule.
        dry_run: check and count, write nothing.
        valid_only: write the rows that pass, report the others.

    Returns:
        ``ImportResult`` with ``records``: employments inserted / updated / unchanged / rejected, and the problems.

    Raises:
        FileRefused: the file as a whole; OutOfScope: planners and partners, or a write refused by row-level security.

    Source: writes employment (household_status by its triggers), household (version), audit_log.
    """
    table = open_table(path, limits, encoding=encoding)
    index = map_header(table.header, EMPLOYMENT_COLUMNS)
    problems: list[tuple[int, str, str, str, str | None]] = []
    result = ImportResult(table.kind, table.encoding, 0, 0, dry_run=dry_run, valid_only=valid_only)

    def column(key: str) -> str:
        i = index.get(key)
        return table.header[i] if i is not None else BY_KEY[key].header

    def add(number: int, key: str, value: Any, message: str) -> None:
        problems.append((number, column(key), (_cell_text(value) or "")[:100], message, BY_KEY[key].mask))

    def stage() -> Any:
        for number, cells in table.rows:
            raw = {k: cells[i] if i < len(cells) else None for k, i in index.items()}
            if (_cell_text(raw.get("id_number")) or "").upper() == EXAMPLE_ID:
                result.example_rows += 1
                continue
            result.rows += 1
            v: dict[str, Any] = {}
            failed = False
            for c in EMPLOYMENT_COLUMNS:
                try:
                    v[c.key] = c.parse(raw.get(c.key), c.field)
                except InvalidInput as exc:
                    add(number, c.key, raw.get(c.key), exc.message)
                    v[c.key], failed = None, True
            for key in ("id_number", "channel", "start_on", "stable"):
                if v[key] is None and not any(p[0] == number and p[1] == column(key) for p in problems):
                    add(number, key, None, f"{BY_KEY[key].field}: required")
                    failed = True
            id_hash = None
            if v["id_number"] is not None:
                try:
                    id_hash = check_id_number(v["id_number"], id_number_key)[0]
                except InvalidInput as exc:
                    add(number, "id_number", raw.get("id_number"), exc.message)
                    failed = True
            checked: dict[str, Any] = {}
            if not failed:
                try:
                    checked = check_employment(
                        channel=v["channel"], start_on=v["start_on"], end_on=v["end_on"], facility_id=v["facility_id"],
                        employer_name=v["employer_name"], outbound_region=v["outbound_region"],
                        monthly_wage=v["monthly_wage"], today=today,
                    )  # fmt: skip
                except InvalidInput as exc:
                    key = FIELD_KEY.get(exc.field or "", "channel")
                    add(number, key, raw.get(key), exc.message)
                    failed = True
            yield (
                number, id_hash, v["channel"].value if v["channel"] else None, v["start_on"], v["end_on"], v["stable"],
                v["facility_id"], checked.get("employer_name"), checked.get("outbound_region"), checked.get("monthly_wage"),
                failed,
            )  # fmt: skip

    try:
        async with sm() as s:
            await open_staging(s, _CREATE, "imp_employment", stage(), _STAGE)
            await s.execute(text("ANALYZE imp_employment"))
            for r in (await s.execute(text(_CHECK))).all():
                if r.first_row < r.row:
                    add(
                        r.row,
                        "start_on",
                        None,
                        f"startOn: the same member, channel and start as row {r.first_row}; one spell once",
                    )
                elif r.member_id is None and r.recorded:
                    add(r.row, "id_number", None, "idNumber: the member is recorded outside your areas")
                elif r.member_id is None:
                    add(r.row, "id_number", None, "idNumber: no member has this ID number; register the household first")
                elif r.facility_id is not None and not r.facility_found:
                    add(r.row, "facility_id", r.facility_id, f"facilityId: facility {r.facility_id} does not exist")
            await s.execute(
                text("UPDATE imp_employment SET bad = true WHERE row = ANY(CAST(:rows AS integer[]))"),
                {"rows": sorted({p[0] for p in problems})},
            )
            await s.execute(text(_MATCH))
            await s.execute(text(_CLASSIFY))
            result.records = await staged_counts(s, "imp_employment")
            result.problems = await _masked(s, problems)
            if (problems and not valid_only) or dry_run:
                return result
            await _write(s)
            await s.commit()
            result.written = True
    except DBAPIError as exc:
        client = client_error(exc)
        if client is None:
            raise
        raise client from None
    return result


async def _masked(s: Any, problems: list[tuple[int, str, str, str, str | None]]) -> list[Problem]:
    """Problems sorted by row, ID numbers showing their last 4 characters only."""
    out = [
        Problem(row, col, ("*" * max(len(value) - 4, 0) + value[-4:]) if mask == "id" else value, reason)
        for row, col, value, reason, mask in problems
    ]
    return sorted(out, key=lambda p: (p.row or 0, p.column))


async def _write(s: Any) -> None:
    """Corrections, new spells, household versions, then one audit row per spell written (before and after)."""
    await write_staged(
        s,
        staging="imp_employment",
        table=m.Employment.__table__,
        entity="employment",
        action=ACTION,
        keys=(("employment_id", "id"),),
        statements=(_UPDATE, _INSERT),
    )
