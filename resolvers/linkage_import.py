"""Importing income linkages (利益联结): one row per household, year, mechanism and facility, as the other imports.

A linkage is named by its household (``户编号``), ``year``, ``mechanism`` and ``facility_id`` (blank: none): a row whose
linkage is recorded corrects its amount, any other row records a new one (a household with two recorded linkages of the
same name: the lower id is corrected). Each row is checked with recordIncomeLinkage's rules (``check_year``,
``check_money``), staged by COPY and checked in SQL (household recorded and the viewer's, facility exists, a linkage once
per file), then written with one ``UPDATE … FROM`` and one ``INSERT … SELECT``, audited (``importIncomeLinkages``),
households' ``version`` bumped. Atomic, ``valid_only`` (rows stand alone) and ``dry_run`` as the other imports.
"""

from __future__ import annotations

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
    _int,
    _labels,
    _text,
    map_header,
    open_staging,
    staged_counts,
    write_staged,
)
from resolvers.income_import import _money
from resolvers.mutations import check_money, client_error
from resolvers.query import SessionMaker, check_year
from resolvers.tabular import FileLimits, open_table

ACTION = "importIncomeLinkages"
EXAMPLE = f"{EXAMPLE_PREFIX}-0001"

_mechanism = _labels(
    m.LinkageMechanism,
    {
        "工资": "WAGE",
        "务工工资": "WAGE",
        "分红": "DIVIDEND",
        "土地流转": "LAND_RENT",
        "土地租金": "LAND_RENT",
        "订单收购": "ORDER_PURCHASE",
        "资产收益": "ASSET_INCOME",
        "其他": "OTHER",
    },
)
LINKAGE_COLUMNS: tuple[Column, ...] = (
    Column(
        "household_code", "户编号", "code", True, True, _text,
        "户编号（已登记的户）。Household code of a recorded household.", (EXAMPLE, EXAMPLE),
    ),
    Column("year", "年份", "year", True, True, _int, "年份，2000–2100。Calendar year of the amount.", ("2024", "2024")),
    Column(
        "mechanism", "联结方式", "mechanism", True, True, _mechanism,
        "工资、分红、土地流转、订单收购、资产收益、其他。WAGE, DIVIDEND, LAND_RENT, ORDER_PURCHASE, ASSET_INCOME, OTHER.",
        ("分红", "土地流转"),
    ),
    Column(
        "amount", "金额", "amount", True, True, _money,
        "当年金额（元，≥ 0，最多 2 位小数）。Yuan in that year.", ("800.00", "1200"),
    ),
    Column(
        "facility_id", "设施编号", "facilityId", True, False, _int,
        "付款的设施或企业 id；空：无。The facility or enterprise paying it; blank: none.", ("2", ""),
    ),
)  # fmt: skip
BY_KEY = {c.key: c for c in LINKAGE_COLUMNS}
FIELD_KEY = {c.field: c.key for c in LINKAGE_COLUMNS}

_CREATE = """
CREATE TEMP TABLE imp_linkage (
    row integer PRIMARY KEY, code text, year integer, mechanism text, amount numeric(14, 2), facility_id bigint,
    bad boolean NOT NULL, household_id bigint, linkage_id bigint, state text
) ON COMMIT DROP
"""
_STAGE = ("row", "code", "year", "mechanism", "amount", "facility_id", "bad")
_CHECK = """
SELECT i.row, i.code, h.id AS household_id, hidden.code IS NOT NULL AND h.id IS NULL AS hidden, i.facility_id,
       f.id IS NOT NULL AS facility_found,
       first_value(i.row) OVER (PARTITION BY i.code, i.year, i.mechanism, coalesce(i.facility_id, 0) ORDER BY i.row)
           AS first_row
FROM imp_linkage i
LEFT JOIN household h ON h.code = i.code
LEFT JOIN anju_recorded_household_codes(ARRAY(SELECT DISTINCT code FROM imp_linkage)) hidden(code) ON hidden.code = i.code
LEFT JOIN facility f ON f.id = i.facility_id
WHERE NOT i.bad
ORDER BY i.row
"""
_MATCH = """
UPDATE imp_linkage i SET household_id = h.id,
    linkage_id = (SELECT min(l.id) FROM income_linkage l WHERE l.household_id = h.id AND l.year = i.year
                  AND l.mechanism = CAST(i.mechanism AS linkage_mechanism) AND l.facility_id IS NOT DISTINCT FROM i.facility_id)
FROM household h WHERE h.code = i.code AND NOT i.bad
"""
_CLASSIFY = """
UPDATE imp_linkage i SET state = CASE WHEN l.id IS NULL THEN 'new' WHEN l.amount IS DISTINCT FROM i.amount THEN 'changed'
                                      ELSE 'same' END
FROM imp_linkage i2 LEFT JOIN income_linkage l ON l.id = i2.linkage_id
WHERE i2.row = i.row AND NOT i.bad
"""
_UPDATE = "UPDATE income_linkage l SET amount = i.amount FROM imp_linkage i WHERE i.state = 'changed' AND l.id = i.linkage_id"
_INSERT = """
WITH new AS (
    INSERT INTO income_linkage (household_id, facility_id, mechanism, year, amount)
    SELECT household_id, facility_id, CAST(mechanism AS linkage_mechanism), year, amount FROM imp_linkage
    WHERE state = 'new' ORDER BY row
    RETURNING id, household_id, facility_id, mechanism, year
)
UPDATE imp_linkage i SET linkage_id = new.id FROM new
WHERE i.state = 'new' AND new.household_id = i.household_id AND new.year = i.year
  AND new.mechanism = CAST(i.mechanism AS linkage_mechanism) AND new.facility_id IS NOT DISTINCT FROM i.facility_id
"""


async def import_linkages(
    sm: SessionMaker,
    path: str | Path,
    *,
    limits: FileLimits,
    encoding: str | None = None,
    dry_run: bool = False,
    valid_only: bool = False,
) -> ImportResult:
    """Import income linkages (one row per household, year, mechanism and facility) in one transaction.

    Args:
        sm: the importing viewer's sessionmaker (a county officer: its households only), or the plain one (system).
        path: ``.csv`` (UTF-8 or GB18030 by the strict rule) or ``.xlsx``.
        limits: settings ``imports``.
        encoding: a CSV's encoding, overriding the rule.
        dry_run: check and count, write nothing.
        valid_only: write the rows that pass, report the others.

    Returns:
        ``ImportResult`` with ``records``: linkages inserted / updated / unchanged / rejected, and the problems.

    Raises:
        FileRefused: the file as a whole; OutOfScope: planners and partners, or a write refused by row-level security.

    Source: writes income_linkage, household (version), audit_log.
    """
    table = open_table(path, limits, encoding=encoding)
    index = map_header(table.header, LINKAGE_COLUMNS)
    problems: list[tuple[int, str, str, str]] = []
    result = ImportResult(table.kind, table.encoding, 0, 0, dry_run=dry_run, valid_only=valid_only)

    def column(key: str) -> str:
        i = index.get(key)
        return table.header[i] if i is not None else BY_KEY[key].header

    def add(number: int, key: str, value: Any, message: str) -> None:
        problems.append((number, column(key), (_cell_text(value) or "")[:100], message))

    def stage() -> Any:
        for number, cells in table.rows:
            raw = {k: cells[i] if i < len(cells) else None for k, i in index.items()}
            code = _cell_text(raw.get("household_code"))
            if code is not None and code.startswith(EXAMPLE_PREFIX):
                result.example_rows += 1
                continue
            result.rows += 1
            v: dict[str, Any] = {}
            failed: set[str] = set()
            for c in LINKAGE_COLUMNS:
                try:
                    v[c.key] = c.parse(raw.get(c.key), c.field)
                except InvalidInput as exc:
                    add(number, c.key, raw.get(c.key), exc.message)
                    v[c.key] = None
                    failed.add(c.key)
            for key in ("household_code", "year", "mechanism", "amount"):
                if v[key] is None and key not in failed:
                    add(number, key, None, f"{BY_KEY[key].field}: required")
                    failed.add(key)
            for key in ("year", "amount"):  # recordIncomeLinkage's rules
                if key not in failed:
                    try:
                        v[key] = check_year(v[key]) if key == "year" else check_money(v[key], "amount")
                    except InvalidInput as exc:
                        add(number, key, raw.get(key), exc.message)
                        failed.add(key)
            mechanism = v["mechanism"].value if v["mechanism"] is not None else None
            yield (number, v["household_code"], v["year"], mechanism, v["amount"], v["facility_id"], bool(failed))

    try:
        async with sm() as s:
            scoped = await open_staging(s, _CREATE, "imp_linkage", stage(), _STAGE)
            await s.execute(text("ANALYZE imp_linkage"))
            for r in (await s.execute(text(_CHECK))).all():
                if r.first_row < r.row:
                    add(
                        r.row,
                        "mechanism",
                        None,
                        f"mechanism: the same household, year, mechanism and facility as row {r.first_row}",
                    )
                elif r.hidden:
                    add(r.row, "household_code", r.code, f"code: household {r.code} is recorded outside your areas")
                elif r.household_id is None:
                    where = " you may write" if scoped else ""
                    add(r.row, "household_code", r.code, f"code: no household{where} has code {r.code[:40]!r}")
                elif r.facility_id is not None and not r.facility_found:
                    add(r.row, "facility_id", r.facility_id, f"facilityId: facility {r.facility_id} does not exist")
            await s.execute(
                text("UPDATE imp_linkage SET bad = true WHERE row = ANY(CAST(:rows AS integer[]))"),
                {"rows": sorted({p[0] for p in problems})},
            )
            await s.execute(text(_MATCH))
            await s.execute(text(_CLASSIFY))
            result.records = await staged_counts(s, "imp_linkage")
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
    """Corrections, new linkages, household versions, then one audit row per linkage written (before and after)."""
    await write_staged(
        s,
        staging="imp_linkage",
        table=m.IncomeLinkage.__table__,
        entity="income_linkage",
        action=ACTION,
        keys=(("linkage_id", "id"),),
        statements=(_UPDATE, _INSERT),
    )
