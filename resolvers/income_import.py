"""Importing household incomes (家庭纯收入): one row per household and year, the way ``anju import households`` works.

Columns ``户编号 household_code``, ``年份 year``, ``家庭纯收入 net_income`` (yuan), ``家庭人口 household_size`` and
``调查日期 surveyed_on`` (``INCOME_COLUMNS``). Each row is checked with recordHouseholdIncome's own rules
(``income_fields``), staged by COPY, checked in SQL against the database (the household exists and is the viewer's; a
household and year once per file), then written with one ``UPDATE … FROM`` and one ``INSERT … SELECT``: a recorded
year's income is corrected (a blank size or survey date keeps the recorded one), a new one inserted (its size, when
blank, from the members present on the survey date: the table's trigger). Each written income leaves an audit row
(``importIncomes``, before and after) and bumps its household's ``version``. Same modes as the roster: atomic,
``valid_only`` (rows are records of their own), ``dry_run``; the same file twice writes nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

import models as m
from resolvers.errors import InvalidInput
from resolvers.household_import import (
    EXAMPLE_PREFIX,
    Column,
    ImportResult,
    Problem,
    _cell_text,
    _date,
    _int,
    _text,
    map_header,
    open_staging,
    staged_counts,
    write_staged,
)
from resolvers.mutations import client_error, income_fields
from resolvers.query import SessionMaker
from resolvers.tabular import FileLimits, open_table

ACTION = "importIncomes"


def _money(v: Any, field: str) -> Decimal | None:
    """A yuan cell: a number, or text with digits (``52,000.00``, ``52000``); never a float's binary noise."""
    if isinstance(v, int | float) and not isinstance(v, bool):
        return Decimal(str(v))
    s = _cell_text(v)
    if s is None:
        return None
    s = s.replace(",", "").replace("，", "").removeprefix("¥").removeprefix("￥").strip()
    if not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", s):
        raise InvalidInput(f"{field}: {s[:30]!r} is not an amount of yuan (e.g. 52000.00)", field=field)
    try:
        return Decimal(s)
    except InvalidOperation:
        raise InvalidInput(f"{field}: {s[:30]!r} is not an amount of yuan", field=field) from None


EXAMPLE = f"{EXAMPLE_PREFIX}-0001"
INCOME_COLUMNS: tuple[Column, ...] = (
    Column(
        "household_code", "户编号", "code", True, True, _text,
        "户编号（已登记的户）。Household code of a recorded household.", (EXAMPLE, EXAMPLE),
    ),
    Column("year", "年份", "year", True, True, _int, "收入年份，2000–今年。Calendar year of the income.", ("2023", "2024")),
    Column(
        "net_income", "家庭纯收入", "netIncome", True, True, _money,
        "家庭纯收入（元，最多 2 位小数，≥ 0）。Net income of the year, yuan.", ("48000.00", "52000.00"),
    ),
    Column(
        "household_size", "家庭人口", "householdSize", True, False, _int,
        "当年人均计算所用人口，1–99；空：调查日在册人数（新记录）或保留已记录的。Persons the per-capita figures divide by.",
        ("5", ""),
    ),
    Column(
        "surveyed_on", "调查日期", "surveyedOn", True, False, _date,
        "调查日期 YYYY-MM-DD，在当年或次年，不晚于今天。Survey date, in the year or the next.", ("2024-01-10", "2025-01-10"),
    ),
)  # fmt: skip
BY_KEY = {c.key: c for c in INCOME_COLUMNS}
FIELD_KEY = {"code": "household_code", "year": "year", "netIncome": "net_income", "householdSize": "household_size"}
FIELD_KEY |= {"surveyedOn": "surveyed_on"}

_CREATE = """
CREATE TEMP TABLE imp_income (
    row integer PRIMARY KEY, code text, year integer, net_income numeric(14, 2), household_size integer,
    surveyed_on date, bad boolean NOT NULL, household_id bigint, state text
) ON COMMIT DROP
"""
_STAGE = ("row", "code", "year", "net_income", "household_size", "surveyed_on", "bad")
_CHECK = """
SELECT i.row, i.code, i.year, h.id AS household_id, hidden.code IS NOT NULL AND h.id IS NULL AS hidden,
       first_value(i.row) OVER (PARTITION BY i.code, i.year ORDER BY i.row) AS first_row
FROM imp_income i
LEFT JOIN household h ON h.code = i.code
LEFT JOIN anju_recorded_household_codes(ARRAY(SELECT DISTINCT code FROM imp_income)) hidden(code) ON hidden.code = i.code
WHERE NOT i.bad
ORDER BY i.row
"""
# the columns a row sets: given cells replace, blank optional ones keep what is recorded
_NEW = {
    "net_income": "i.net_income",
    "household_size": "coalesce(i.household_size, hi.household_size)",
    "surveyed_on": "coalesce(i.surveyed_on, hi.surveyed_on)",
}
_CLASSIFY = f"""
UPDATE imp_income i SET state = CASE WHEN hi.household_id IS NULL THEN 'new'
    WHEN ({", ".join(f"hi.{c}" for c in _NEW)}) IS DISTINCT FROM ({", ".join(_NEW.values())}) THEN 'changed' ELSE 'same' END
FROM imp_income i2 LEFT JOIN household_income hi ON hi.household_id = i2.household_id AND hi.year = i2.year
WHERE i2.row = i.row AND NOT i.bad
"""
_UPDATE = (
    "UPDATE household_income hi SET "
    + ", ".join(f"{c} = {v}" for c, v in _NEW.items())
    + " FROM imp_income i WHERE i.state = 'changed' AND hi.household_id = i.household_id AND hi.year = i.year"
)
_INSERT = """
INSERT INTO household_income (household_id, year, net_income, household_size, surveyed_on)
SELECT household_id, year, net_income, household_size, surveyed_on FROM imp_income WHERE state = 'new' ORDER BY row
"""


async def import_incomes(
    sm: SessionMaker,
    path: str | Path,
    *,
    limits: FileLimits,
    today: dt.date,
    encoding: str | None = None,
    dry_run: bool = False,
    valid_only: bool = False,
) -> ImportResult:
    """Import household incomes (one row per household and year) in one transaction.

    Args:
        sm: the importing viewer's sessionmaker (a county officer: its households only), or the plain one (system).
        path: ``.csv`` (UTF-8 or GB18030 by the strict rule; ``encoding`` overrides) or ``.xlsx``.
        limits: settings ``imports``.
        today: Asia/Shanghai's date (a year not begun and a survey date after it are refused).
        encoding: a CSV's encoding, overriding the rule.
        dry_run: check and count, write nothing.
        valid_only: write the rows that pass, report the others (default: any problem → nothing written).

    Returns:
        ``ImportResult`` with ``records``: incomes inserted / updated / unchanged / rejected, and the problems.

    Raises:
        FileRefused: the file as a whole; OutOfScope: planners and partners; Duplicate/OutOfScope from a write that a
        unique index or row-level security refused meanwhile. Nothing written in any of these cases.

    Source: writes household_income, household (version), audit_log.
    """
    table = open_table(path, limits, encoding=encoding)
    index = map_header(table.header, INCOME_COLUMNS)
    problems: list[tuple[int, str, str, str]] = []
    result = ImportResult(table.kind, table.encoding, 0, 0, dry_run=dry_run, valid_only=valid_only)

    def column(key: str) -> str:
        i = index.get(key)
        return table.header[i] if i is not None else BY_KEY[key].header

    def stage() -> Any:
        for number, cells in table.rows:
            raw = {k: cells[i] if i < len(cells) else None for k, i in index.items()}
            code = _cell_text(raw.get("household_code"))
            if code is not None and code.startswith(EXAMPLE_PREFIX):
                result.example_rows += 1
                continue
            result.rows += 1
            v: dict[str, Any] = {}
            found: list[InvalidInput] = []
            for c in INCOME_COLUMNS:
                try:
                    v[c.key] = c.parse(raw.get(c.key), c.field)
                except InvalidInput as exc:
                    found.append(exc)
                    v[c.key] = None
            failed = {FIELD_KEY.get(p.field or "", "household_code") for p in found}
            if v["household_code"] is None and "household_code" not in failed:
                found.append(InvalidInput("code: required", field="code"))
            rule: list[InvalidInput] = []
            checked = income_fields(
                year=v["year"], net_income=v["net_income"], household_size=v["household_size"],
                surveyed_on=v["surveyed_on"], today=today, problems=rule,
            )  # fmt: skip
            found += [p for p in rule if FIELD_KEY.get(p.field or "", "household_code") not in failed]
            for problem in found:
                key = FIELD_KEY.get(problem.field or "", "household_code")
                problems.append((number, column(key), (_cell_text(raw.get(key)) or "")[:100], problem.message))
            yield (number, v["household_code"], checked.get("year"), checked.get("net_income"), v["household_size"],
                   v["surveyed_on"], bool(found))  # fmt: skip

    try:
        async with sm() as s:
            scoped = await open_staging(s, _CREATE, "imp_income", stage(), _STAGE)
            await s.execute(text("ANALYZE imp_income"))
            for r in (await s.execute(text(_CHECK))).all():
                if r.first_row < r.row:
                    msg = f"year: household {r.code} and year {r.year} are also in row {r.first_row}; one income per year"
                    problems.append((r.row, column("year"), str(r.year), msg))
                elif r.hidden:
                    problems.append(
                        (r.row, column("household_code"), r.code, f"code: household {r.code} is recorded outside your areas")
                    )
                elif r.household_id is None:
                    where = " you may write" if scoped else ""
                    problems.append(
                        (r.row, column("household_code"), r.code, f"code: no household{where} has code {r.code[:40]!r}")
                    )
            bad_rows = sorted({p[0] for p in problems})
            await s.execute(
                text("UPDATE imp_income i SET bad = true WHERE i.row = ANY(CAST(:rows AS integer[]))"),
                {"rows": bad_rows},
            )
            await s.execute(
                text("UPDATE imp_income i SET household_id = h.id FROM household h WHERE h.code = i.code AND NOT i.bad")
            )
            await s.execute(text(_CLASSIFY))
            result.records = await staged_counts(s, "imp_income")
            result.problems = sorted((Problem(*p) for p in problems), key=lambda p: (p.row or 0, p.column))
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


async def _write(s: Any) -> None:
    """Corrections, new incomes, household versions, then one audit row per income written (before and after)."""
    await write_staged(
        s,
        staging="imp_income",
        table=m.HouseholdIncome.__table__,
        entity="household_income",
        action=ACTION,
        keys=(("household_id", "household_id"), ("year", "year")),
        statements=(_UPDATE, _INSERT),
    )
