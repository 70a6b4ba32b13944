"""Importing a household roster (花名册): households with their members from a CSV or XLSX file, at COPY speed.

Layout: one row per member, the household's columns repeated on each of its rows (the layout of the national
monitoring system's exports and of county ledgers); headers Chinese first with English beside them
(``户编号 household_code``), either form accepted (``COLUMNS``; ``write_template`` writes the documented template).

Steps, in one transaction:

1. Read (``resolvers/tabular.py``: encoding, limits, XLSX streamed) and check each row in Python with the registry's own
   rules — ``household_fields`` and ``check_member_count`` (registerHousehold), ``member_fields``/``check_joined``
   (addMember: ID-number check digit and HMAC, phone numbers, names, years, dates), ``check_position`` (dwelling) —
   collecting every problem of a row instead of stopping at the first; rows stream straight into a temporary table
   (asyncpg COPY), never a statement per row.
2. Check in SQL over all rows at once: the household columns agree across a household's rows; admin codes exist at the
   right level (``area_problem``), sites are open on the relocation date (``anju_open_on``, ``site_problem``), dwellings
   lie near their area (``anju_area_distance``, ``outside_area_problem``); the officer's areas (the row-level-security
   predicate); codes and ID numbers recorded elsewhere (``anju_recorded_household_codes``/``anju_recorded_id_hashes``);
   an existing household is not moved by an import (moveHousehold/updateHousehold do that, dated).
3. Write with a handful of set-based statements: ``INSERT … SELECT`` new households and members, ``UPDATE … FROM`` changed
   ones, one audit row per household or member written (``row_json_sql``: the audit log's form), versions bumped. The
   statement triggers keep residences and member counts exact; ``household_status`` is refreshed once, for every
   household written, after the last write (``anju_status_deferred``: the triggers' own function, called once); the
   new households' ``located_code`` comes from one spatial join (``anju_locate_each``, the rule of the household
   trigger's ``anju_locate``, which leaves it as given: ``anju_located_given``).

The Python pass is what remains per row (≈ 60–130 µs a member row on this machine, most of it the ID number's check
digit and HMAC and libphonenumber's validity test): the registry's rules stay the one definition the mutations call
(``member_fields``), and neither an HMAC under the service's key nor libphonenumber's metadata has a PostgreSQL twin.
A big CSV file is read and checked by one process per CPU (``resolvers/parallel_read.py``: the file cut between
records, each part through the same reader and rules, the records streamed to the one COPY). bench/import_export.py
times each phase beside ``COPY``.

Matching: households by code (户编号), members by their recorded id (成员编号 member_id, which exported rosters carry:
``resolvers/exports.py``), else by ID-number hash; a member row with neither matches the present member of that
household with the same name and birth year. A dwelling counts as unchanged within 1e-9° (0.1 mm: spreadsheets keep
15 significant digits of a coordinate). A blank optional cell never clears a stored value, and
members missing from the file stay (a member leaving is a dated event: memberLeaves). So the same file twice writes
nothing the second time, and a changed row updates its record (audited, the household's ``version`` bumped).

Modes: atomic (any problem → nothing written); ``valid_only`` (households with a problem row are left out whole, the
others written); ``dry_run`` (everything checked and counted, nothing written). Rows whose household code starts with
``示例`` are the template's example rows: skipped.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import functools
import re
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

import models as m
from resolvers.access import Role, Viewer, audit_who, row_json_sql, viewer_of
from resolvers.admin_areas import area_problem, area_shape_problem, outside_area_problem
from resolvers.errors import AnjuError, InvalidInput, OutOfScope
from resolvers.geometry import check_position
from resolvers.mutations import check_joined, client_error, member_fields
from resolvers.parallel_read import read_in_parts
from resolvers.query import SessionMaker
from resolvers.registry import MAX_MEMBERS, check_member_count, household_fields, site_problem
from resolvers.tabular import GEO_KINDS, GEOMETRY, FileLimits, FileRefused, Table, open_table

EXAMPLE_PREFIX = "示例"
"""Household codes starting with this mark the template's example rows, which an import skips."""
ACTION = "importHouseholds"
"""The audit log's action of every row an import writes."""


# --------------------------------------------------------------------------- cell parsers


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet would read as a formula at the start of a cell: an export prefixes such text with ``'``
(``resolvers.exports.spreadsheet_safe``), and a cell read back drops that one quote again."""


def _cell_text(v: Any) -> str | None:
    """A cell as stripped text (None when blank); whole numbers without ``.0`` (a code typed as a number).

    A ``'`` in front of ``= + - @``, tab or CR (an export's neutralised formula-looking text) is dropped.
    """
    if type(v) is str:  # the common case (every CSV cell): no other conversion applies
        if v[:1] == "'" and v[1:2] and v[1] in FORMULA_START:
            v = v[1:]
        return v.strip() or None
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, dt.datetime):
        v = v.date()
    s = str(v).strip()
    return s or None


def _text(v: Any, field: str) -> str | None:
    return _cell_text(v)


_WHOLE = re.compile(r"[0-9]{1,9}")
_SKILL_SEPARATORS = re.compile(r"[、,，;；/]")


def _int(v: Any, field: str) -> int | None:
    if isinstance(v, bool):
        raise InvalidInput(f"{field}: {v!r} is not a whole number", field=field)
    if isinstance(v, int | float) and float(v).is_integer():
        return int(v)
    s = _cell_text(v)
    if s is None:
        return None
    if not _WHOLE.fullmatch(s):
        raise InvalidInput(f"{field}: {s[:30]!r} is not a whole number", field=field)
    return int(s)


_DATE = re.compile(r"([0-9]{4})[-/.年]([0-9]{1,2})[-/.月]([0-9]{1,2})日?")


def _date(v: Any, field: str) -> dt.date | None:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    s = _cell_text(v)
    if s is None:
        return None
    match = _DATE.fullmatch(s)
    try:
        if match is None:
            raise ValueError
        return dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise InvalidInput(f"{field}: {s[:30]!r} is not a date; expected YYYY-MM-DD (e.g. 2024-03-01)", field=field) from None


def _float(v: Any, field: str) -> float | None:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    s = _cell_text(v)
    if s is None:
        return None
    try:
        return float(s)
    except ValueError:
        raise InvalidInput(f"{field}: {s[:30]!r} is not a number (decimal degrees, WGS84)", field=field) from None


def _labels(enum: type[Any], words: dict[str, str]) -> Callable[[Any, str], Any]:
    """A parser of an enum cell: the Chinese words given, the GraphQL names (``HEAD``) and the stored values (``head``)."""
    table = {k: enum[v] for k, v in words.items()} | {e.name.lower(): e for e in enum} | {e.value: e for e in enum}
    shown = "、".join(dict.fromkeys(words)) + " (or " + ", ".join(e.name for e in enum) + ")"

    def parse(v: Any, field: str) -> Any:
        s = _cell_text(v)
        if s is None:
            return None
        found = table.get(s.lower().replace(" ", "_"))
        if found is None:
            raise InvalidInput(f"{field}: {s[:30]!r} is not one of {shown}", field=field)
        return found

    parse.choices = shown  # type: ignore[attr-defined]
    # each member's first word (``CHILD`` → 子女): what an export writes, so that the file reads back as it was
    parse.words = {enum[v]: k for k, v in reversed(words.items())}  # type: ignore[attr-defined]
    return parse


_gender = _labels(m.Gender, {"男": "MALE", "女": "FEMALE"})
_relation = _labels(
    m.Relation,
    {
        "户主": "HEAD",
        "配偶": "SPOUSE",
        "子女": "CHILD",
        "儿子": "CHILD",
        "女儿": "CHILD",
        "之子": "CHILD",
        "之女": "CHILD",
        "儿媳": "CHILD_IN_LAW",
        "女婿": "CHILD_IN_LAW",
        "孙子女": "GRANDCHILD",
        "孙子": "GRANDCHILD",
        "孙女": "GRANDCHILD",
        "父母": "PARENT",
        "父亲": "PARENT",
        "母亲": "PARENT",
        "兄弟姐妹": "SIBLING",
        "其他": "OTHER",
    },
)
_poverty = _labels(m.PovertyStatus, {"脱贫户": "POVERTY_ALLEVIATED", "一般户": "NON_POOR"})
_join_reason = _labels(
    m.JoinReason, {"登记": "REGISTERED", "出生": "BIRTH", "婚入": "MARRIAGE", "迁入": "MOVING_IN", "其他": "OTHER"}
)
_BOOL = {
    "是": True,
    "否": False,
    "true": True,
    "false": False,
    "yes": True,
    "no": False,
    "y": True,
    "n": False,
    "1": True,
    "0": False,
}


def _bool(v: Any, field: str) -> bool | None:
    if isinstance(v, bool):
        return v
    s = _cell_text(v)
    if s is None:
        return None
    found = _BOOL.get(s.lower())
    if found is None:
        raise InvalidInput(f"{field}: {s[:30]!r} is not 是 or 否 (true/false)", field=field)
    return found


def _id_number(v: Any, field: str) -> str | None:
    if isinstance(v, int | float) and not isinstance(v, bool):
        raise InvalidInput(
            f"{field}: stored as a number in the spreadsheet (which keeps only 15 digits); format the column as text "
            "and enter the number again",
            field=field,
        )
    return _cell_text(v)


def _skills(v: Any, field: str) -> list[str] | None:
    s = _cell_text(v)
    if s is None:
        return None
    return [x for x in _SKILL_SEPARATORS.split(s) if x.strip()]


@dataclass(frozen=True)
class Column:
    """One column of the roster.

    Attributes:
        key: the English name (``household_code``); ``zh`` the Chinese one (``户编号``); the header is both.
        field: the API's name of the value, used in messages (``code``, ``birthYear``): the same words as the API's errors.
        household: a household column (repeated on every member row) or a member column.
        required: the column must be in the header.
        parse: cell → value, raising InvalidInput naming ``field``.
        doc: what it holds (Chinese first).
        examples: the two example rows' cells.
        mask: how the report masks the value: ``name``, ``phone``, ``id`` or None.
    """

    key: str
    zh: str
    field: str
    household: bool
    required: bool
    parse: Callable[[Any, str], Any]
    doc: str
    examples: tuple[str, str]
    mask: str | None = None

    @property
    def header(self) -> str:
        """The template's header: Chinese, a space, English (``户编号 household_code``)."""
        return f"{self.zh} {self.key}"


EXAMPLE_CODE = f"{EXAMPLE_PREFIX}-0001"
COLUMNS: tuple[Column, ...] = (
    Column(
        "household_code",
        "户编号",
        "code",
        True,
        True,
        _text,
        "户编号，1–40 字符，唯一；同一户的每一行相同。Household code, unique, the same on each of its rows.",
        (EXAMPLE_CODE, EXAMPLE_CODE),
    ),
    Column(
        "admin_code",
        "现住村社区代码",
        "adminCode",
        True,
        True,
        _text,
        "现住村/社区 12 位统计用区划代码。12-digit code of the village/community it lives in.",
        ("513432100004", "513432100004"),
    ),
    Column(
        "poverty_status",
        "脱贫状态",
        "povertyStatus",
        True,
        True,
        _poverty,
        "脱贫户 或 一般户。POVERTY_ALLEVIATED or NON_POOR.",
        ("脱贫户", "脱贫户"),
    ),
    Column(
        "site_id",
        "安置点编号",
        "siteId",
        True,
        False,
        _int,
        "安置点 id（与搬迁入住日期同填）；空：未搬迁。Relocation site id, with relocated_on; blank: never relocated.",
        ("1", "1"),
    ),
    Column(
        "relocated_on",
        "搬迁入住日期",
        "relocatedOn",
        True,
        False,
        _date,
        "搬迁入住日期 YYYY-MM-DD，不晚于今天，安置点当日开放。Day it moved to the site.",
        ("2024-03-01", "2024-03-01"),
    ),
    Column(
        "origin_admin_code",
        "迁出地代码",
        "originAdminCode",
        True,
        False,
        _text,
        "迁出村或乡镇代码（9 或 12 位）。Village or township it left.",
        ("513432102201", "513432102201"),
    ),
    Column(
        "dwelling_lon",
        "住房经度",
        "dwelling",
        True,
        False,
        _float,
        "住房经度（WGS84，十进制度），与纬度同填。Dwelling longitude, WGS84, with the latitude.",
        ("102.4109", "102.4109"),
    ),
    Column(
        "dwelling_lat",
        "住房纬度",
        "dwelling",
        True,
        False,
        _float,
        "住房纬度（WGS84，十进制度）。Dwelling latitude, WGS84.",
        ("28.3101", "28.3101"),
    ),
    Column(
        "name",
        "姓名",
        "name",
        False,
        True,
        _text,
        "成员姓名，1–50 字符。Member's name.",
        ("阿苦日者", "吉色阿妞"),
        "name",
    ),
    Column(
        "gender",
        "性别",
        "gender",
        False,
        True,
        _gender,
        "男 或 女。MALE or FEMALE.",
        ("男", "女"),
    ),
    Column(
        "birth_year",
        "出生年份",
        "birthYear",
        False,
        True,
        _int,
        "出生年份，1900–今年。Year of birth.",
        ("1982", "1985"),
    ),
    Column(
        "relation",
        "与户主关系",
        "relation",
        False,
        True,
        _relation,
        "户主、配偶、子女、儿媳/女婿、孙子女、父母、兄弟姐妹、其他。Relation to the head.",
        ("户主", "配偶"),
    ),
    Column(
        "labor_force",
        "是否劳动力",
        "laborForce",
        False,
        True,
        _bool,
        "是 或 否。Labor force (able to work): true/false.",
        ("是", "是"),
    ),
    Column(
        "id_number",
        "身份证号",
        "idNumber",
        False,
        False,
        _id_number,
        "18 位公民身份号码（校验码检查），只存哈希与后 4 位；单元格设为文本。"
        "Resident ID number, stored only as a keyed hash + last 4.",
        ("11010519491231002X", ""),
        "id",
    ),
    Column(
        "phone",
        "联系电话",
        "phone",
        False,
        False,
        _text,
        "手机或固定电话。Chinese mobile or landline number.",
        ("13812345678", ""),
        "phone",
    ),
    Column(
        "skills",
        "技能",
        "skills",
        False,
        False,
        _skills,
        "技能，用 、 分隔，最多 20 项。Skills, separated by 、 (at most 20).",
        ("缝纫、彝绣", ""),
    ),
    Column(
        "joined_on",
        "入户日期",
        "joinedOn",
        False,
        False,
        _date,
        "入户日期 YYYY-MM-DD；空：登记前即为成员（新户）或今天（已有户新增成员）。"
        "Day the member joined; blank: since before the records (new household) "
        "or today (a member added to a recorded household).",
        ("", ""),
    ),
    Column(
        "join_reason",
        "入户原因",
        "joinReason",
        False,
        False,
        _join_reason,
        "登记、出生、婚入、迁入、其他；空：登记。REGISTERED, BIRTH, MARRIAGE, MOVING_IN, OTHER.",
        ("", ""),
    ),
    Column(
        "member_id",
        "成员编号",
        "memberId",
        False,
        False,
        _int,
        "已登记成员的编号（导出的花名册带此列，按它匹配成员）；新成员留空。"
        "A recorded member's id (exported rosters carry it; the row updates that member); blank for a new member.",
        ("", ""),
    ),
)
BY_KEY = {c.key: c for c in COLUMNS}
HOUSEHOLD_KEYS = tuple(c.key for c in COLUMNS if c.household)
MEMBER_ORDER = tuple(c.key for c in COLUMNS if not c.household)
MEMBER_KEYS = {
    "member_id",
    "name",
    "gender",
    "birth_year",
    "relation",
    "labor_force",
    "id_number",
    "phone",
    "skills",
    "joined_on",
    "join_reason",
}
FIELD_KEY = {"code": "household_code", "birthYear": "birth_year", "laborForce": "labor_force", "idNumber": "id_number"}
FIELD_KEY |= {"joinedOn": "joined_on", "joinReason": "join_reason", "members": "household_code", "dwelling": "dwelling_lon"}
FIELD_KEY |= {
    "adminCode": "admin_code",
    "siteId": "site_id",
    "relocatedOn": "relocated_on",
    "originAdminCode": "origin_admin_code",
}
FIELD_KEY |= {"povertyStatus": "poverty_status", "memberId": "member_id"}


def _normal(header: str) -> str:
    return re.sub(r"\s+", " ", header.strip()).lower()


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Problem:
    """One problem of the file.

    Its row as the spreadsheet shows it (1 = header; None: the file), the column header as written in the file, the
    offending value (personal data masked) and the reason in the API's words.
    """

    row: int | None
    column: str
    value: str
    reason: str


@dataclass
class Counts:
    """Records inserted, updated, unchanged and rejected (with ``dry_run``: that would be)."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0


@dataclass
class ImportResult:
    """What an import did: households and members counted, problems, whether anything was written.

    ``written`` is False with ``dry_run``, and in the atomic mode whenever there is a problem.
    """

    kind: str
    encoding: str | None
    rows: int
    example_rows: int
    households: Counts = field(default_factory=Counts)
    members: Counts = field(default_factory=Counts)
    records: Counts = field(default_factory=Counts)
    """The records of a kind other than households (``incomes``: household incomes)."""
    problems: list[Problem] = field(default_factory=list)
    written: bool = False
    dry_run: bool = False
    valid_only: bool = False
    read_by: int = 1
    """Processes that read and checked the file's rows (``resolvers/parallel_read.py``: a big CSV roster)."""


def write_report(result: ImportResult, path: str | Path) -> None:
    """The problems as CSV (UTF-8 with BOM, so Excel opens it right): 行号 row, 列 column, 值 value, 原因 reason."""
    with Path(path).open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(["行号 row", "列 column", "值 value", "原因 reason"])
        for p in result.problems:
            w.writerow(["" if p.row is None else p.row, p.column, p.value, p.reason])


# --------------------------------------------------------------------------- the template


def template_rows(columns: tuple[Column, ...] = COLUMNS) -> list[list[str]]:
    """The template's header row and its two example rows (labelled by the ``示例`` household code)."""
    return [[c.header for c in columns]] + [[c.examples[i] for c in columns] for i in (0, 1)]


ROSTER_LAYOUT = "每行一名成员，户的列在每行重复。One row per member; the household's columns repeated on each of its rows."


def write_template(
    path: str | Path, fmt: str, columns: tuple[Column, ...] = COLUMNS, sheet: str = "花名册 roster", layout: str = ROSTER_LAYOUT
) -> None:
    """Write an import template (by default the household roster's): ``csv`` (UTF-8 with BOM) or ``xlsx`` (xlsxwriter).

    The XLSX has the header row with each column documented in a cell comment, codes/ID numbers/phones formatted as text,
    the two example rows in grey, and a second sheet ``说明 notes`` listing every column (required or not, what it holds).

    Raises:
        ValueError: ``fmt`` is neither.
    """
    rows = template_rows(columns)
    if fmt == "csv":
        with Path(path).open("w", encoding="utf-8-sig", newline="") as f:
            csv.writer(f).writerows(rows)
        return
    if fmt != "xlsx":
        raise ValueError(f"format {fmt!r}: expected csv or xlsx")
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path))
    try:
        ws = wb.add_worksheet(sheet)
        bold = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "text_wrap": True, "valign": "top"})
        text_fmt = wb.add_format({"num_format": "@"})
        example = wb.add_format({"num_format": "@", "font_color": "#808080", "italic": True})
        for i, c in enumerate(columns):
            ws.write_string(0, i, c.header, bold)
            ws.write_comment(
                0, i, ("必填 required. " if c.required else "选填 optional. ") + c.doc, {"x_scale": 2.5, "y_scale": 2}
            )
            ws.set_column(i, i, max(12, len(c.header) + 4), text_fmt)
            for r in (1, 2):
                ws.write_string(r, i, rows[r][i], example)
        ws.freeze_panes(1, 0)
        notes = wb.add_worksheet("说明 notes")
        notes.write_row(0, 0, ["列 column", "必填 required", "说明 description"], bold)
        for i, c in enumerate(columns, start=1):
            notes.write_row(i, 0, [c.header, "是 yes" if c.required else "否 no", c.doc])
        n = len(columns) + 2
        notes.write_string(
            n,
            0,
            f"示例行 example rows: 户编号以“{EXAMPLE_PREFIX}”开头的行是示例，导入时跳过。Rows whose household code starts with "
            f"{EXAMPLE_PREFIX} are examples and are skipped.",
        )
        notes.write_string(n + 1, 0, layout)
        notes.set_column(0, 0, 28)
        notes.set_column(2, 2, 100)
    finally:
        wb.close()


# --------------------------------------------------------------------------- reading and checking rows (Python pass)

_STAGE_COLUMNS = (
    "row", "code", "admin_code", "poverty_status", "site_id", "relocated_on", "origin_admin_code", "lon", "lat",
    "name", "gender", "birth_year", "relation", "labor_force", "id_hash", "id_last4", "phone", "skills", "joined_on",
    "join_reason", "given_member_id", "bad",
)  # fmt: skip
# Half-full pages (fillfactor 50): matching a re-imported roster updates every staging row (its member and state), and
# with room on the page each new row version stays there (a HOT update) instead of going into all three indexes again:
# the matching UPDATE of a Sichuan-scale roster took 35 s, 11 s with the room.
_CREATE = """
CREATE TEMP TABLE imp_row (
    row integer PRIMARY KEY, code text, admin_code text, poverty_status text, site_id bigint, relocated_on date,
    origin_admin_code text, lon double precision, lat double precision, name text, gender text, birth_year integer,
    relation text, labor_force boolean, id_hash text, id_last4 text, phone text, skills text[], joined_on date,
    join_reason text, given_member_id bigint, bad boolean NOT NULL, member_id bigint, member_state text DEFAULT 'new'
) WITH (fillfactor = 50) ON COMMIT DROP
"""


@dataclass
class _Reader:
    """The Python pass: header mapped to columns, each row checked with the registry's rules, problems collected."""

    header: list[str]
    index: dict[str, int]
    today: dt.date
    id_number_key: bytes
    max_vertices: int
    problems: list[tuple[int | None, str, str, str, str | None]] = field(default_factory=list)
    households: dict[tuple[Any, ...], tuple[dict[str, Any], list[tuple[str, InvalidInput]]]] = field(default_factory=dict)
    rows: int = 0
    example_rows: int = 0
    width: int = 0
    code_at: int = 0
    household_at: tuple[int | None, ...] = ()
    member_at: tuple[tuple[str, Column, int | None], ...] = ()

    def __post_init__(self) -> None:
        # each column's position in the file (None: absent), looked up once instead of per cell; rows are padded to
        # ``width`` so that a short row reads its missing cells as blank
        self.width = len(self.header)
        self.code_at = self.index["household_code"]
        self.household_at = tuple(self.index.get(k) for k in HOUSEHOLD_KEYS)
        self.member_at = tuple((k, BY_KEY[k], self.index.get(k)) for k in MEMBER_ORDER)

    def merge(self, part: tuple[int, int, list[tuple[int | None, str, str, str, str | None]]]) -> None:
        """Add the rows, example rows and problems of a part of the file read by another process (``_stage_part``)."""
        self.rows += part[0]
        self.example_rows += part[1]
        self.problems += part[2]

    def column(self, key: str) -> str:
        """The header of ``key`` as written in the file (the template's when the file lacks it)."""
        i = self.index.get(key)
        return self.header[i] if i is not None else BY_KEY[key].header

    def raw(self, cells: list[Any], key: str) -> Any:
        i = self.index.get(key)
        return cells[i] if i is not None and i < len(cells) else None

    def problem(self, row: int, exc: AnjuError, cells: list[Any], key: str) -> None:
        """Record a problem of ``row`` in column ``key``: the header as written, the cell's value, the API's message."""
        value = _cell_text(self.raw(cells, key)) or ""
        self.problems.append((row, self.column(key), value[:100], exc.message, BY_KEY[key].mask))

    def stage(self, rows: Iterator[tuple[int, list[Any]]]) -> Iterator[tuple[Any, ...]]:
        """Each data row checked and turned into a staging record (typed; None where a cell was refused)."""
        width = self.width
        for number, cells in rows:
            if len(cells) < width:
                cells = [*cells, *([None] * (width - len(cells)))]
            code = _cell_text(cells[self.code_at])
            if code is not None and code.startswith(EXAMPLE_PREFIX):
                self.example_rows += 1
                continue
            self.rows += 1
            yield self.check(number, cells)

    def household(self, cells: list[Any]) -> tuple[dict[str, Any], list[tuple[str, InvalidInput]]]:
        """The household columns of a row parsed and checked: values (None where refused) and (column key, problem)s.

        Cached by the cells' values: a household's columns repeat on each of its members' rows, so they are checked once.
        """
        raw = tuple(None if i is None else cells[i] for i in self.household_at)
        hit = self.households.get(raw)
        if hit is not None:
            return hit
        v: dict[str, Any] = {}
        found: list[tuple[str, InvalidInput]] = []
        for key, cell in zip(HOUSEHOLD_KEYS, raw, strict=True):
            c = BY_KEY[key]
            try:
                v[key] = c.parse(cell, c.field)
            except InvalidInput as exc:
                found.append((key, exc))
                v[key] = None
        failed = {k for k, _ in found}
        for key in ("admin_code", "poverty_status"):
            if v[key] is None and key not in failed:
                f = BY_KEY[key].field
                found.append((key, InvalidInput(f"{f}: required", field=f)))
        problems: list[InvalidInput] = []
        own = household_fields(
            code=v["household_code"], site_id=v["site_id"], relocated_on=v["relocated_on"], today=self.today, problems=problems
        )
        v["household_code"] = own.get("code", v["household_code"])
        for key, levels in (
            ("admin_code", (m.AdminLevel.VILLAGE,)),
            ("origin_admin_code", (m.AdminLevel.VILLAGE, m.AdminLevel.TOWNSHIP)),
        ):
            if v[key] is not None and (shape := area_shape_problem(v[key], BY_KEY[key].field, levels)) is not None:
                problems.append(shape)
                v[key] = None
        lon, lat = v["dwelling_lon"], v["dwelling_lat"]
        if (lon is None) != (lat is None) and not failed & {"dwelling_lon", "dwelling_lat"}:
            problems.append(
                InvalidInput("dwelling: give both 住房经度 dwelling_lon and 住房纬度 dwelling_lat, or neither", field="dwelling")
            )
        elif lon is not None and lat is not None:
            try:
                v["dwelling_lon"], v["dwelling_lat"] = check_position([lon, lat], "dwelling")
            except InvalidInput as exc:
                problems.append(exc)
                v["dwelling_lon"] = v["dwelling_lat"] = None
        found += [(_key_of(exc), exc) for exc in problems]
        if len(self.households) > 100_000:
            self.households.clear()
        self.households[raw] = (v, found)
        return v, found

    def check(self, number: int, cells: list[Any]) -> tuple[Any, ...]:
        """One row checked: the household part (cached), the member part with ``member_fields``/``check_joined``."""
        h, found = self.household(cells)
        mv: dict[str, Any] = {}
        problems = list(found)
        failed: set[str] = set()
        for key, c, at in self.member_at:
            cell = None if at is None else cells[at]
            if cell is None or cell == "":
                continue  # blank: every parser reads it as None
            try:
                value = c.parse(cell, c.field)
            except InvalidInput as exc:
                problems.append((key, exc))
                failed.add(key)
                continue
            if value is not None:
                mv[key] = value
        given_member_id = mv.pop("member_id", None)
        member_problems: list[InvalidInput] = []
        fields = member_fields(
            {**mv, "today": self.today, "this_year": self.today.year, "id_number_key": self.id_number_key},
            creating=True,
            problems=member_problems,
        )
        problems += [(k, p) for p in member_problems if (k := _key_of(p)) not in failed]
        if "birth_year" in fields:
            try:
                check_joined(fields, fields["birth_year"])
            except InvalidInput as exc:
                problems.append((_key_of(exc), exc))
        for key, found_exc in problems:
            self.problem(number, found_exc, cells, key)
        e = fields.get
        return (
            number, h["household_code"], h["admin_code"], h["poverty_status"].value if h["poverty_status"] else None,
            h["site_id"], h["relocated_on"], h["origin_admin_code"], h["dwelling_lon"], h["dwelling_lat"], e("name"),
            fields["gender"].value if "gender" in fields else None, e("birth_year"),
            fields["relation"].value if "relation" in fields else None, e("labor_force"), e("id_number_hash"),
            e("id_number_last4"), e("phone"), e("skills"), e("joined_on"),
            fields["join_reason"].value if "join_reason" in fields else None, given_member_id, bool(problems),
        )  # fmt: skip


def _stage_part(
    header: list[str],
    index: dict[str, int],
    today: dt.date,
    id_number_key: bytes,
    max_vertices: int,
    rows: Iterator[tuple[int, list[Any]]],
) -> tuple[Iterator[tuple[Any, ...]], Callable[[], tuple[int, int, list[Any]]]]:
    """A part of a big CSV roster, in a reading process (``records_in_parts``).

    Returns its staging records by ``_Reader.stage``, and a function giving its rows, example rows and problems once they
    are read (for ``_Reader.merge``).
    """
    reader = _Reader(header, index, today, id_number_key, max_vertices)
    return reader.stage(rows), lambda: (reader.rows, reader.example_rows, reader.problems)


def _key_of(exc: AnjuError) -> str:
    """The column key of a problem, from the API field it names (``birthYear`` → ``birth_year``)."""
    key = FIELD_KEY.get((exc.field or "").split(".")[-1], exc.field or "household_code")
    return key if key in BY_KEY else "household_code"


def map_header(header: list[str], columns: tuple[Column, ...] = COLUMNS) -> dict[str, int]:
    """Header cells → column keys (Chinese, English or both forms). Raises FileRefused listing every header problem."""
    index: dict[str, int] = {}
    issues: list[str] = []
    names = {n: c.key for c in columns for n in (_normal(c.header), _normal(c.zh), _normal(c.key))}
    for i, h in enumerate(header):
        if not h:
            issues.append(f"column {i + 1} has no header")
            continue
        key = names.get(_normal(h))
        if key is None:
            issues.append(f"unknown column {h[:40]!r}")
        elif key in index:
            issues.append(f"column {h!r} twice (also column {index[key] + 1})")
        else:
            index[key] = i
    missing = [c.header for c in columns if c.required and c.key not in index]
    if missing:
        issues.append("missing required column(s) " + ", ".join(missing))
    if issues:
        raise FileRefused(
            "file: header row: " + "; ".join(issues) + ". Expected the template's headers, e.g. '户编号 household_code' "
            "(Chinese, English or both; `anju import template KIND`)"
        )
    return index


# --------------------------------------------------------------------------- checks in SQL

_HOUSEHOLD_COLS = ("admin_code", "poverty_status", "site_id", "relocated_on", "origin_admin_code", "lon", "lat")

_DISAGREE = (
    """
WITH first AS (SELECT DISTINCT ON (code) * FROM imp_row WHERE NOT bad AND code IS NOT NULL ORDER BY code, row)
SELECT r.row, f.row AS first_row, r.code, """
    + ", ".join(f"r.{c} IS DISTINCT FROM f.{c} AS {c}" for c in _HOUSEHOLD_COLS)
    + """
FROM imp_row r JOIN first f ON f.code = r.code
WHERE NOT r.bad AND r.row <> f.row AND ("""
    + ", ".join(f"r.{c}" for c in _HOUSEHOLD_COLS)
    + ") IS DISTINCT FROM ("
    + ", ".join(f"f.{c}" for c in _HOUSEHOLD_COLS)
    + ")"
)

_HOUSEHOLDS = """
CREATE TEMP TABLE imp_household ON COMMIT DROP AS
SELECT DISTINCT ON (code) code, row AS first_row, admin_code, poverty_status, site_id, relocated_on, origin_admin_code,
       lon, lat, count(*) OVER (PARTITION BY code) AS rows, CAST(NULL AS bigint) AS household_id, false AS rejected,
       false AS is_new, false AS own_changed, false AS dwelling_changed, false AS members_changed
FROM imp_row WHERE code IS NOT NULL ORDER BY code, bad, row
"""

# Only the households that may have a problem come back to Python (where the API's own functions word it): too many
# rows, recorded out of sight or outside the officer's areas, an admin code missing or of the wrong level, a site not
# open on the day, a dwelling too far from its area, a recorded household's placement differing. A valid roster's
# households never leave the database.
_CHECK_HOUSEHOLDS = """
SELECT * FROM (
SELECT hh.code, hh.first_row, hh.rows, hh.admin_code, hh.origin_admin_code, hh.site_id, hh.relocated_on,
       aa.level AS admin_level, oa.level AS origin_level,
       s.id AS site_found, s.opened_on, s.closed_on, anju_open_on(s.opened_on, s.closed_on, hh.relocated_on) AS open,
       d.code AS near_code, d.distance_meters,
       ex.id AS household_id, ex.admin_code AS cur_admin_code, ex.site_id AS cur_site_id,
       ex.relocated_on AS cur_relocated_on, ex.origin_admin_code AS cur_origin_admin_code,
       ex.id IS NULL AND hidden.code IS NOT NULL AS hidden,
       coalesce(left(hh.admin_code, 6) = ANY (CAST(nullif(current_setting('anju.counties', true), '') AS text[]))
                AND hh.admin_code LIKE ANY (CAST(nullif(current_setting('anju.patterns', true), '') AS text[])), false)
           AS in_scope
FROM imp_household hh
LEFT JOIN admin_area aa ON aa.code = hh.admin_code
LEFT JOIN admin_area oa ON oa.code = hh.origin_admin_code
LEFT JOIN relocation_site s ON s.id = hh.site_id
LEFT JOIN LATERAL anju_area_distance(hh.admin_code, hh.lon, hh.lat) d ON hh.lon IS NOT NULL AND aa.level IS NOT NULL
LEFT JOIN household ex ON ex.code = hh.code
LEFT JOIN anju_recorded_household_codes(ARRAY(SELECT code FROM imp_household)) hidden(code) ON hidden.code = hh.code
) c
WHERE c.rows > :max_members OR c.hidden OR (:scoped AND c.admin_code IS NOT NULL AND NOT c.in_scope)
   OR (c.admin_code IS NOT NULL AND c.admin_level IS DISTINCT FROM 'village')
   OR (c.origin_admin_code IS NOT NULL AND (c.origin_level IS NULL OR c.origin_level NOT IN ('village', 'township')))
   OR (c.site_id IS NOT NULL AND c.relocated_on IS NOT NULL AND c.open IS NOT TRUE)
   OR c.distance_meters > :tolerance
   OR (c.household_id IS NOT NULL AND (
          c.admin_code <> c.cur_admin_code OR c.site_id <> c.cur_site_id OR c.relocated_on <> c.cur_relocated_on
          OR c.origin_admin_code <> c.cur_origin_admin_code
          OR (c.cur_site_id IS NULL AND c.site_id IS NOT NULL) OR (c.cur_relocated_on IS NULL AND c.relocated_on IS NOT NULL)
          OR (c.cur_origin_admin_code IS NULL AND c.origin_admin_code IS NOT NULL)))
ORDER BY c.first_row
"""


# Duplicates found by grouping (hash aggregates: the first row of each ID number or member given twice), recorded ID
# numbers by one lookup of them all; only the rows concerned are joined back. The lookup leaves out the rows whose
# matched member holds that very ID number (a re-imported roster: every one of them; recorded, but as itself).
_CHECK_MEMBERS = """
WITH dup_id AS (
    SELECT id_hash, min(row) AS first_row FROM imp_row WHERE NOT bad AND id_hash IS NOT NULL
    GROUP BY id_hash HAVING count(*) > 1
), dup_member AS (
    SELECT member_id, min(row) AS first_row FROM imp_row WHERE NOT bad AND member_id IS NOT NULL
    GROUP BY member_id HAVING count(*) > 1
), elsewhere AS (
    SELECT r.row, r.id_hash FROM imp_row r LEFT JOIN member mb ON mb.id = r.member_id
    WHERE r.id_hash IS NOT NULL AND mb.id_number_hash IS DISTINCT FROM r.id_hash
), recorded AS (
    SELECT DISTINCT rec.hash FROM anju_recorded_id_hashes(ARRAY(SELECT id_hash FROM elsewhere)) rec(hash)
)
SELECT * FROM (
    SELECT r.row, r.code, di.first_row AS same_id_row, dm.first_row AS same_member_row,
           rc.hash IS NOT NULL AND r.row IN (SELECT row FROM elsewhere) AS id_recorded
    FROM imp_row r
    LEFT JOIN dup_id di ON di.id_hash = r.id_hash
    LEFT JOIN dup_member dm ON dm.member_id = r.member_id
    LEFT JOIN recorded rc ON rc.hash = r.id_hash
    WHERE NOT r.bad AND (di.id_hash IS NOT NULL OR dm.member_id IS NOT NULL OR rc.hash IS NOT NULL)
) c WHERE c.same_id_row < c.row OR c.same_member_row < c.row OR c.id_recorded
ORDER BY c.row
"""

# The member columns an import sets: given cells replace, blank optional cells keep what is stored.
_MEMBER_NEW = {
    "name": "r.name",
    "gender": "CAST(r.gender AS gender)",
    "birth_year": "r.birth_year",
    "relation": "CAST(r.relation AS relation)",
    "labor_force": "r.labor_force",
    "id_number_hash": "coalesce(r.id_hash, mb.id_number_hash)",
    "id_number_last4": "coalesce(r.id_last4, mb.id_number_last4)",
    "phone": "coalesce(r.phone, mb.phone)",
    "skills": "coalesce(r.skills, mb.skills)",
    "joined_on": "coalesce(r.joined_on, mb.joined_on)",
    "join_reason": "coalesce(CAST(r.join_reason AS join_reason), mb.join_reason)",
}
_DIFFERS = "(" + ", ".join(f"mb.{c}" for c in _MEMBER_NEW) + ") IS DISTINCT FROM (" + ", ".join(_MEMBER_NEW.values()) + ")"
# A row is staged as 'new' (the column's default): only the rows of rejected households (no state) and the rows matched
# to a recorded member ('changed' or 'same') are updated, so a roster of new households rewrites no staging row.
_UNCLASSIFY_REJECTED = """
UPDATE imp_row r SET member_state = NULL
WHERE r.member_state IS NOT NULL AND (r.code IS NULL OR r.code IN (SELECT hh.code FROM imp_household hh WHERE hh.rejected))
"""
# Each row's recorded member, in this order: the member the row names (成员编号) if present and not contradicted by the ID
# number; the member of the household with the row's ID number; the present member with the same name and birth year
# (the lowest id) where either lacks an ID number. One join of the rows with their households' members (a hash join),
# not three subqueries per row; and in the same pass the row's state ('changed' or 'same'): one UPDATE of the staging
# rows, not two. The rows of households rejected afterwards lose their state (_UNCLASSIFY_REJECTED).
_MATCH_MEMBERS = f"""
UPDATE imp_row r SET member_id = m.id, member_state = CASE WHEN {_DIFFERS} THEN 'changed' ELSE 'same' END
FROM (
    SELECT DISTINCT ON (x.row) x.row, x.id FROM (
        SELECT r.row, mb.id,
               CASE WHEN mb.id = r.given_member_id AND mb.left_on IS NULL
                         AND (r.id_hash IS NULL OR mb.id_number_hash IS NULL OR mb.id_number_hash = r.id_hash) THEN 1
                    WHEN r.id_hash IS NOT NULL AND mb.id_number_hash = r.id_hash THEN 2
                    WHEN mb.name = r.name AND mb.birth_year = r.birth_year AND mb.left_on IS NULL
                         AND (r.id_hash IS NULL OR mb.id_number_hash IS NULL) THEN 3 END AS rank
        FROM imp_row r
        JOIN imp_household hh ON hh.code = r.code AND hh.household_id IS NOT NULL
        JOIN member mb ON mb.household_id = hh.household_id
        WHERE NOT r.bad
    ) x WHERE x.rank IS NOT NULL ORDER BY x.row, x.rank, x.id
) m JOIN member mb ON mb.id = m.id
WHERE m.row = r.row
"""
_CLASSIFY_HOUSEHOLDS = """
UPDATE imp_household hh SET
    is_new = hh.household_id IS NULL,
    own_changed = h.id IS NOT NULL AND CAST(hh.poverty_status AS poverty_status) IS DISTINCT FROM h.poverty_status,
    dwelling_changed = h.id IS NOT NULL AND hh.lon IS NOT NULL
        AND (h.dwelling IS NULL OR abs(ST_X(h.dwelling) - hh.lon) > 1e-9 OR abs(ST_Y(h.dwelling) - hh.lat) > 1e-9),
    members_changed = hh.code IN (  -- one hashed set of codes, not a lookup per household
        SELECT r.code FROM imp_row r WHERE r.member_state IN ('new', 'changed') AND r.code IS NOT NULL)
FROM imp_household hh2 LEFT JOIN household h ON h.id = hh2.household_id
WHERE hh2.code = hh.code AND NOT hh.rejected
"""
_COUNT = """
SELECT h.*, r.* FROM (
    SELECT count(*) FILTER (WHERE is_new AND NOT rejected),
           count(*) FILTER (WHERE NOT is_new AND NOT rejected AND (own_changed OR dwelling_changed OR members_changed)),
           count(*) FILTER (WHERE NOT is_new AND NOT rejected AND NOT (own_changed OR dwelling_changed OR members_changed)),
           count(*) FILTER (WHERE rejected)
    FROM imp_household
) h, (
    SELECT count(*) FILTER (WHERE member_state = 'new'), count(*) FILTER (WHERE member_state = 'changed'),
           count(*) FILTER (WHERE member_state = 'same'), count(*) FILTER (WHERE member_state IS NULL)
    FROM imp_row
) r
"""

# ---- writes (the triggers keep residences, member counts and household_status, once per statement)
# A semi-join on the households to write (hashed): joined the other way round, with imp_household's statistics from
# before the classification (household_id all null), PostgreSQL nested-looped 360,000 staging rows over the household
# table (43 s at the Sichuan scale, locking nothing).
_LOCK = """
SELECT h.id FROM household h
WHERE h.id IN (SELECT hh.household_id FROM imp_household hh
               WHERE NOT hh.rejected AND (hh.own_changed OR hh.dwelling_changed OR hh.members_changed))
ORDER BY h.id FOR UPDATE OF h
"""
# New households are located (located_code) all at once by anju_locate_each, one spatial join, instead of by the
# household trigger's anju_locate per row (SET LOCAL anju.located = 'given' around this statement: migration 0022).
# A new household is inserted with its member counts: its members are the rows about to be inserted (all present: a
# roster has no leaving date), counted as household_counts.sql counts them (present members; those in the labour force),
# and the members' INSERT runs under anju.counts = 'given' (migration 0025) instead of adding them to the household rows
# again (39 s of a Sichuan-scale import). tests/test_household_import.py compares the counts with the member rows.
_INSERT_HOUSEHOLDS = """
WITH todo AS MATERIALIZED (
    SELECT hh.code, hh.admin_code, hh.site_id, hh.origin_admin_code, hh.relocated_on, hh.poverty_status,
           CASE WHEN hh.lon IS NOT NULL THEN ST_SetSRID(ST_MakePoint(hh.lon, hh.lat), 4326) END AS dwelling,
           coalesce(c.n, 0) AS n, coalesce(c.lf, 0) AS lf,
           row_number() OVER (ORDER BY hh.first_row) AS i
    FROM imp_household hh
    LEFT JOIN (SELECT code, count(*) AS n, count(*) FILTER (WHERE labor_force) AS lf
               FROM imp_row WHERE member_state = 'new' GROUP BY code) c ON c.code = hh.code
    WHERE hh.is_new AND NOT hh.rejected
), new AS (
    INSERT INTO household (code, admin_code, site_id, origin_admin_code, dwelling, relocated_on, poverty_status,
                           located_code, member_count, labor_force_count)
    SELECT t.code, t.admin_code, t.site_id, t.origin_admin_code, t.dwelling, t.relocated_on,
           CAST(t.poverty_status AS poverty_status), l.code, t.n, t.lf
    FROM todo t LEFT JOIN anju_locate_each(ARRAY(SELECT dwelling FROM todo ORDER BY i)) l ON l.i = t.i
    ORDER BY t.i
    RETURNING id, code
)
UPDATE imp_household hh SET household_id = new.id FROM new WHERE new.code = hh.code
"""
_UPDATE_HOUSEHOLDS = """
UPDATE household h SET poverty_status = CAST(hh.poverty_status AS poverty_status), version = h.version + 1
FROM imp_household hh
WHERE hh.household_id = h.id AND NOT hh.is_new AND NOT hh.rejected
  AND (hh.own_changed OR hh.dwelling_changed OR hh.members_changed)
"""
# A corrected dwelling corrects the current (latest) residence, as updateHousehold does; its trigger updates the household.
_UPDATE_DWELLINGS = """
UPDATE household_residence r SET dwelling = ST_SetSRID(ST_MakePoint(hh.lon, hh.lat), 4326)
FROM imp_household hh
WHERE hh.dwelling_changed AND NOT hh.rejected AND r.household_id = hh.household_id
  AND r.valid_from = (SELECT max(r2.valid_from) FROM household_residence r2 WHERE r2.household_id = hh.household_id)
"""
_UPDATE_MEMBERS = (
    "UPDATE member mb SET "
    + ", ".join(f"{c} = {v}" for c, v in _MEMBER_NEW.items())
    + " FROM imp_row r WHERE r.member_id = mb.id AND r.member_state = 'changed'"
)
_REFRESH_STATUS = """
SELECT anju_refresh_household_status(ARRAY(
    SELECT hh.household_id FROM imp_household hh
    WHERE NOT hh.rejected AND (hh.is_new OR hh.own_changed OR hh.dwelling_changed OR hh.members_changed)
    ORDER BY hh.household_id))
"""
# New members of a recorded household join today unless the row says when (addMember's default); those of a new
# household have been members since before the records begin (registerHousehold's). Only the rows of recorded households
# learn their new member's id (their audit rows are addMember's, one per member; a new household's members are audited
# inside its own row).
_MEMBER_INSERT = """
    INSERT INTO member (household_id, name, gender, birth_year, relation, labor_force, id_number_hash, id_number_last4,
                        phone, skills, joined_on, join_reason)
    SELECT hh.household_id, r.name, CAST(r.gender AS gender), r.birth_year, CAST(r.relation AS relation), r.labor_force,
           r.id_hash, r.id_last4, r.phone, coalesce(r.skills, '{}'),
           CASE WHEN r.joined_on IS NOT NULL OR hh.is_new THEN r.joined_on ELSE CAST(:today AS date) END,
           coalesce(CAST(r.join_reason AS join_reason), 'registered')
    FROM imp_row r JOIN imp_household hh ON hh.code = r.code
    WHERE r.member_state = 'new' AND hh.is_new = :of_new ORDER BY r.row
"""
_INSERT_MEMBERS = (
    "WITH new AS ("
    + _MEMBER_INSERT
    + """    RETURNING id, id_number_hash, household_id, name, birth_year
)
UPDATE imp_row r SET member_id = new.id
FROM new, imp_household hh
WHERE r.member_state = 'new' AND hh.code = r.code AND new.household_id = hh.household_id AND NOT hh.is_new
  AND (new.id_number_hash = r.id_hash OR (r.id_hash IS NULL AND new.id_number_hash IS NULL AND new.name = r.name
       AND new.birth_year = r.birth_year))
"""
)


async def import_households(
    sm: SessionMaker,
    path: str | Path,
    *,
    limits: FileLimits,
    today: dt.date,
    id_number_key: bytes,
    tolerance_meters: float = 2000,
    max_vertices: int = 10_000,
    encoding: str | None = None,
    dry_run: bool = False,
    valid_only: bool = False,
    progress: Callable[[str, int], Awaitable[None]] | None = None,
    read_processes: int | None = None,
) -> ImportResult:
    """Import a household roster file: check every row, then write households and members in one transaction.

    Args:
        sm: the importing viewer's sessionmaker (``scoped_sessionmaker``: a county officer's rows outside its areas are
            reported, and row-level security holds its writes there), or the plain one of a system run (audited as
            ``system``).
        path: a ``.csv`` (UTF-8 with or without BOM, or GB18030/GBK by the strict rule; ``encoding`` overrides), ``.xlsx``,
            or ``.geojson``/``.gpkg`` (one Point feature per member, the roster's columns as attributes; the point is the
            dwelling, WGS84).
        limits: settings ``imports`` (refused before anything is written).
        today: Asia/Shanghai's date: dates after it are in the future; a member added to a recorded household joins on it.
        id_number_key: the HMAC key of ID numbers (settings ``privacy.id_number_key``).
        tolerance_meters: settings ``registry.location_tolerance_meters`` (a dwelling's distance from its admin area).
        max_vertices: settings ``features.max_vertices``.
        encoding: a CSV's encoding, overriding the rule.
        dry_run: check and count everything, write nothing.
        valid_only: write the households whose rows all pass; report the others (default: any problem → nothing written).
        read_processes: processes reading a big CSV file (``resolvers/parallel_read.py``); None: one per CPU (at most 4);
            1: the importing process alone.
        progress: awaited with the phase (``reading``, ``checking``, ``writing``) and the data rows read so far; it must
            write in its own transaction (an HTTP import job's state, ``resolvers/import_jobs.py``).

    Returns:
        ``ImportResult``: households and members inserted / updated / unchanged / rejected (would be, with ``dry_run``),
        the problems by row (row 1 = the header) and column, ``written``.

    Raises:
        FileRefused: the file as a whole (size, kind, encoding, header, a limit); nothing written.
        OutOfScope: a planner or partner viewer (they write nothing), or row-level security refused a write.
        Duplicate: another writer recorded one of the file's household codes or ID numbers meanwhile; nothing written.

    Source: writes household, household_residence (triggers), member, household_status (triggers), audit_log.
    """
    if progress is not None:
        await progress("reading", 0)
    table = open_table(path, limits, encoding=encoding)
    if table.kind in GEO_KINDS.values() and GEOMETRY in table.header:  # a CSV's 'geometry' is an unknown column
        table = _dwelling_columns(table)
    try:
        index = map_header(table.header)
    except FileRefused:
        table.close()
        raise
    reader = _Reader(table.header, index, today, id_number_key, max_vertices)
    result = ImportResult(table.kind, table.encoding, 0, 0, dry_run=dry_run, valid_only=valid_only)
    records: Any = reader.stage(table.rows)
    # a big CSV: read and checked by several processes (the same rules, rows and problems), else here
    job = functools.partial(_stage_part, table.header, index, today, id_number_key, max_vertices)
    in_parts = read_in_parts(path, table, limits, job, reader.merge, read_processes)
    if in_parts is not None:
        records, result.read_by = in_parts
    try:
        async with sm() as s, contextlib.aclosing(records) if in_parts else contextlib.nullcontext():
            scoped = await open_staging(s, _CREATE, "imp_row", records, _STAGE_COLUMNS)
            result.rows, result.example_rows = reader.rows, reader.example_rows
            if progress is not None:
                await progress("checking", reader.rows)
            await s.execute(text("CREATE INDEX ON imp_row (code)"))
            await s.execute(text("CREATE INDEX ON imp_row (id_hash) WHERE id_hash IS NOT NULL"))
            await s.execute(text("ANALYZE imp_row"))
            problems = list(reader.problems)
            problems += await _check_sql(s, reader, tolerance_meters, scoped)
            await _reject(s, problems)
            result.problems = await _masked(s, problems, reader, valid_only)
            if problems and not valid_only:
                counts = await _classify(s)
                result.households, result.members = counts
                return result
            result.households, result.members = await _classify(s)
            if dry_run:
                return result
            if progress is not None:
                await progress("writing", reader.rows)
            await _write(s, today, analyze=result.households.inserted >= 1000)
            await s.commit()
            result.written = True
    except DBAPIError as exc:  # a unique index or row-level security refused a write: nothing was written
        client = client_error(exc)
        if client is None:
            raise
        raise client from None
    finally:
        table.close()  # also when its rows were never read (a viewer who imports nothing)
    return result


def _dwelling_columns(table: Table) -> Table:
    """A GeoJSON/GeoPackage roster's point geometries as the dwelling columns (住房经度 dwelling_lon, 住房纬度 dwelling_lat).

    A feature without geometry has no dwelling; any other geometry type lands in both cells, for the dwelling column's
    parser to refuse by row and column.
    """
    i = table.header.index(GEOMETRY)
    header = [*table.header[:i], *table.header[i + 1 :], BY_KEY["dwelling_lon"].header, BY_KEY["dwelling_lat"].header]

    def rows() -> Iterator[tuple[int, list[Any]]]:
        for number, cells in table.rows:
            g = cells[i]
            rest = cells[:i] + cells[i + 1 :]
            if g is None:
                yield number, [*rest, None, None]
            elif g.get("type") == "Point" and len(g.get("coordinates") or ()) == 2:
                yield number, [*rest, *g["coordinates"]]
            else:
                shown = f"{g.get('type')} (expected a Point)"
                yield number, [*rest, shown, shown]

    return Table(table.kind, table.encoding, header, rows())


def _level(value: str | None) -> m.AdminLevel | None:
    return m.AdminLevel(value) if value is not None else None


async def _check_sql(s: AsyncSession, reader: _Reader, tolerance_meters: float, scoped: bool) -> list[tuple[Any, ...]]:
    """The checks over all rows at once (PostgreSQL), as problems in the Python pass's form."""
    out: list[tuple[Any, ...]] = []
    outside: set[str] = set()

    def add(row: int, key: str, value: Any, exc: AnjuError) -> None:
        out.append((row, reader.column(key), ("" if value is None else str(value))[:100], exc.message, BY_KEY[key].mask))

    for r in (await s.execute(text(_DISAGREE))).mappings():
        for key in _HOUSEHOLD_COLS:
            if r[key]:
                ckey = {"lon": "dwelling_lon", "lat": "dwelling_lat"}.get(key, key)
                f = BY_KEY[ckey].field
                msg = f"{f}: rows of household {r['code']} disagree (row {r['first_row']} differs); "
                add(r["row"], ckey, "", InvalidInput(msg + "a household's columns are the same on each of its rows", field=f))
    await s.execute(text(_HOUSEHOLDS))
    await s.execute(text("CREATE UNIQUE INDEX ON imp_household (code)"))
    await s.execute(text("ANALYZE imp_household"))
    candidates = await s.execute(
        text(_CHECK_HOUSEHOLDS), {"max_members": MAX_MEMBERS, "scoped": scoped, "tolerance": tolerance_meters}
    )
    for h in candidates.all():
        row = h.first_row
        if h.rows > MAX_MEMBERS:
            try:
                check_member_count(h.rows)
            except InvalidInput as exc:
                add(row, "household_code", h.code, exc)
        if h.hidden:
            add(
                row,
                "household_code",
                h.code,
                InvalidInput(f"code: household {h.code} is recorded outside your areas", field="code"),
            )
            outside.add(h.code)
            continue
        if scoped and h.admin_code is not None and not h.in_scope:
            outside.add(h.code)
            add(
                row,
                "admin_code",
                h.admin_code,
                InvalidInput(f"adminCode: {h.admin_code} is outside your areas", field="adminCode"),
            )
            continue
        if h.admin_code is not None and (p := area_problem(h.admin_code, _level(h.admin_level), "adminCode")) is not None:
            add(row, "admin_code", h.admin_code, p)
        levels = (m.AdminLevel.VILLAGE, m.AdminLevel.TOWNSHIP)
        if h.origin_admin_code is not None and (
            p := area_problem(h.origin_admin_code, _level(h.origin_level), "originAdminCode", levels)
        ):
            add(row, "origin_admin_code", h.origin_admin_code, p)
        if h.site_id is not None and h.relocated_on is not None:
            found = h if h.site_found is not None else None
            if (p := site_problem(h.site_id, h.relocated_on, found)) is not None:
                add(row, "site_id", h.site_id, p)
        if h.near_code is not None and h.admin_code is not None:
            near = SimpleNamespace(code=h.near_code, distance_meters=h.distance_meters)
            if (p := outside_area_problem(near, h.admin_code, tolerance_meters, "dwelling")) is not None:
                add(row, "dwelling_lon", "", p)
        if h.household_id is not None:
            for key, new, cur in (
                ("admin_code", h.admin_code, h.cur_admin_code),
                ("site_id", h.site_id, h.cur_site_id),
                ("relocated_on", h.relocated_on, h.cur_relocated_on),
                ("origin_admin_code", h.origin_admin_code, h.cur_origin_admin_code),
            ):
                if new is not None and new != cur:
                    f = BY_KEY[key].field
                    add(row, key, new, InvalidInput(
                        f"{f}: household {h.code} is recorded with {cur if cur is not None else 'none'}; an import does not move "
                        "or re-date a household: record a move with moveHousehold (dated), a correction with updateHousehold",
                        field=f))  # fmt: skip
    await s.execute(text("UPDATE imp_household hh SET household_id = h.id FROM household h WHERE h.code = hh.code"))
    # the matching plans with the households found (analysed with household_id all null, PostgreSQL expected one recorded
    # household and nested-looped the members of 360,000: 26 s of importing a Sichuan-scale roster a second time)
    await s.execute(text("ANALYZE imp_household"))
    await s.execute(text(_MATCH_MEMBERS))
    for mr in (await s.execute(text(_CHECK_MEMBERS))).all():
        if mr.code in outside:  # the household is not the viewer's to write: its members' details would add nothing
            continue
        if mr.same_id_row is not None and mr.same_id_row < mr.row:
            msg = f"idNumber: the same ID number as row {mr.same_id_row}; one ID number belongs to one member"
            add(mr.row, "id_number", "", InvalidInput(msg, field="idNumber"))
        elif mr.id_recorded:
            msg = "idNumber: this ID number is already recorded for another member; nothing was written"
            add(mr.row, "id_number", "", InvalidInput(msg, field="idNumber"))
        elif mr.same_member_row is not None and mr.same_member_row < mr.row:
            msg = f"name: row {mr.same_member_row} describes the same member (same name and birth year, no ID number)"
            add(mr.row, "name", "", InvalidInput(msg, field="name"))
    return out


async def _reject(s: AsyncSession, problems: list[tuple[Any, ...]]) -> None:
    """Mark the households with a problem row as rejected (a household is written whole or not at all)."""
    rows = sorted({p[0] for p in problems if p[0] is not None})
    await s.execute(
        text(
            "UPDATE imp_household hh SET rejected = true WHERE hh.code IN "
            "(SELECT r.code FROM imp_row r WHERE r.row = ANY(CAST(:rows AS integer[])) OR r.bad)"
        ),
        {"rows": rows},
    )


async def _masked(s: AsyncSession, problems: list[tuple[Any, ...]], reader: _Reader, valid_only: bool) -> list[Problem]:
    """The problems with personal values masked by the database's own masks, sorted by row.

    With ``valid_only`` also a line for each row left out only because another row of its household has a problem.
    """
    if valid_only:
        rows = {p[0] for p in problems}
        extra = (
            await s.execute(
                text(
                    "SELECT r.row, r.code, (SELECT min(b.row) FROM imp_row b WHERE b.code = r.code "
                    "AND (b.bad OR b.row = ANY(CAST(:rows AS integer[])))) AS bad_row "
                    "FROM imp_row r JOIN imp_household hh ON hh.code = r.code WHERE hh.rejected "
                    "AND NOT (r.row = ANY(CAST(:rows AS integer[]))) AND NOT r.bad ORDER BY r.row"
                ),
                {"rows": sorted(x for x in rows if x is not None)},
            )
        ).all()
        for row, code, bad_row in extra:
            problems.append(
                (row, reader.column("household_code"), code, f"code: not written: row {bad_row} of household {code} has a "
                 "problem (a household is written whole or not at all)", None)
            )  # fmt: skip
    if not problems:
        return []
    masked = (
        (
            await s.execute(
                text(
                    "SELECT CASE k WHEN 'name' THEN anju_mask_name(v) WHEN 'phone' THEN anju_mask_phone(v) "
                    "WHEN 'id' THEN repeat('*', greatest(char_length(v) - 4, 0)) || right(v, 4) ELSE v END "
                    "FROM unnest(CAST(:v AS text[]), CAST(:k AS text[])) WITH ORDINALITY AS t(v, k, i) ORDER BY i"
                ),
                {"v": [p[2] for p in problems], "k": [p[4] or "" for p in problems]},
            )
        )
        .scalars()
        .all()
    )
    out = [Problem(p[0], p[1], mv or "", p[3]) for p, mv in zip(problems, masked, strict=True)]
    out.sort(key=lambda p: (p.row or 0, p.column))
    return out


async def _classify(s: AsyncSession) -> tuple[Counts, Counts]:
    await s.execute(text(_UNCLASSIFY_REJECTED))
    await s.execute(text(_CLASSIFY_HOUSEHOLDS))
    # the writes plan with the classification's counts (member ids matched, states set after the first ANALYZE)
    await s.execute(text("ANALYZE imp_household, imp_row"))
    c = (await s.execute(text(_COUNT))).one()
    return Counts(c[0], c[1], c[2], c[3]), Counts(c[4], c[5], c[6], c[7])


IMP_HOUSEHOLD = sa.table(
    "imp_household",
    sa.column("code", sa.Text),
    sa.column("household_id", sa.BigInteger),
    sa.column("is_new", sa.Boolean),
    sa.column("rejected", sa.Boolean),
    sa.column("own_changed", sa.Boolean),
    sa.column("dwelling_changed", sa.Boolean),
)
IMP_ROW = sa.table(
    "imp_row", sa.column("code", sa.Text), sa.column("member_id", sa.BigInteger), sa.column("member_state", sa.Text)
)
IMP_BEFORE = sa.table("imp_before", sa.column("entity", sa.Text), sa.column("id", sa.BigInteger), sa.column("j", JSONB))
AUDIT_COLUMNS = ["user_id", "user_name", "role", "action", "entity", "entity_id", "before", "after"]


async def _write(s: AsyncSession, today: dt.date, *, analyze: bool) -> None:
    """The writes, set-based, then their audit rows (before images taken first), in the form ``row_json`` gives.

    ``analyze``: many households were inserted (1,000 or more): their tables are analysed before the audit rows are read
    from them (inside the transaction: ANALYZE samples this transaction's own rows; ``anju_analyze_registry`` runs it
    with the owner's rights, also in a county officer's scoped session). With the statistics of before the import
    PostgreSQL expected one new household and nested-looped each over the members' aggregate (a 60,000-household import
    into an empty database ran over 9 minutes).
    """
    ih, ir, ib = IMP_HOUSEHOLD.alias("hh"), IMP_ROW.alias("r"), IMP_BEFORE.alias("b")
    who = audit_who(s)
    hcols = [sa.literal(who["user_id"], sa.BigInteger), sa.literal(who["user_name"]), sa.literal(who["role"]), sa.literal(ACTION)]
    th, tm = m.Household.__table__.alias("t"), m.Member.__table__.alias("t")
    old_household = sa.and_(~ih.c.is_new, ~ih.c.rejected, sa.or_(ih.c.own_changed, ih.c.dwelling_changed))
    await s.execute(text(_LOCK))
    await s.execute(text("CREATE TEMP TABLE imp_before (entity text, id bigint, j jsonb) ON COMMIT DROP"))
    before_h = sa.select(sa.literal("household"), th.c.id, row_json_sql(th, "household"))
    before_m = sa.select(sa.literal("member"), tm.c.id, row_json_sql(tm, "member"))
    await s.execute(
        sa.insert(IMP_BEFORE).from_select(
            ["entity", "id", "j"],
            before_h.join_from(th, ih, ih.c.household_id == th.c.id)
            .where(old_household)
            .union_all(before_m.join_from(tm, ir, ir.c.member_id == tm.c.id).where(ir.c.member_state == "changed")),
        )
    )
    # household_status once for all the households written, after the last of these statements, instead of after each
    # (anju_status_deferred, migrations/sql/household_status.sql): the same function, the same rows.
    await s.execute(text("SET LOCAL anju.defer_status = 'on'"))
    await s.execute(text("SET LOCAL anju.located = 'given'"))
    await s.execute(text(_INSERT_HOUSEHOLDS))
    await s.execute(text("SET LOCAL anju.located = ''"))
    await s.execute(text(_UPDATE_DWELLINGS))
    await s.execute(text(_UPDATE_HOUSEHOLDS))
    await s.execute(text(_UPDATE_MEMBERS))
    await s.execute(text("SET LOCAL anju.counts = 'given'"))
    await s.execute(text(_MEMBER_INSERT), {"today": today, "of_new": True})  # new households' (counted already)
    await s.execute(text("SET LOCAL anju.counts = ''"))
    await s.execute(text(_INSERT_MEMBERS), {"today": today, "of_new": False})
    await s.execute(text(_REFRESH_STATUS))
    await s.execute(text("SET LOCAL anju.defer_status = 'off'"))
    if analyze:  # with the owner's rights (a county officer's role may not ANALYZE): import_stats.sql, migration 0027
        await s.execute(text("SELECT anju_analyze_registry()"))
        await s.execute(text("ANALYZE imp_household"))  # its household ids, null when last analysed, now set
    audit = sa.insert(m.AuditLog)
    # a new household: one row with its members inside (registerHousehold's form)
    # (the members of all new households aggregated in one grouped pass, joined by household: not a subquery per household,
    # 113 s of a Sichuan-scale import)
    mm = m.Member.__table__.alias("mm")
    new = sa.and_(ih.c.is_new, ~ih.c.rejected)
    members = (
        sa.select(mm.c.household_id, sa.func.jsonb_agg(aggregate_order_by(row_json_sql(mm, "member"), mm.c.id)).label("j"))
        .join_from(mm, ih, ih.c.household_id == mm.c.household_id)
        .where(new)
        .group_by(mm.c.household_id)
        .subquery("ms")
    )
    after = row_json_sql(th, "household").op("||")(sa.func.jsonb_build_object("members", members.c.j))
    new_households = (
        sa.select(*hcols, sa.literal("household"), sa.cast(th.c.id, sa.Text), sa.null(), after)
        .join_from(th, ih, ih.c.household_id == th.c.id)
        .outerjoin(members, members.c.household_id == th.c.id)
        .where(new)
        .order_by(th.c.id)
    )
    await s.execute(audit.from_select(AUDIT_COLUMNS, new_households))
    # a corrected household or member: before and after (updateHousehold's and updateMember's form)
    for table, t in (("household", th), ("member", tm)):
        corrected = (
            sa.select(*hcols, sa.literal(table), sa.cast(t.c.id, sa.Text), ib.c.j, row_json_sql(t, table))
            .join_from(t, ib, sa.and_(ib.c.id == t.c.id, ib.c.entity == table))
            .order_by(t.c.id)
        )
        await s.execute(audit.from_select(AUDIT_COLUMNS, corrected))
    # a member added to a recorded household (addMember's form)
    added = (
        sa.select(*hcols, sa.literal("member"), sa.cast(tm.c.id, sa.Text), sa.null(), row_json_sql(tm, "member"))
        .join_from(tm, ir, ir.c.member_id == tm.c.id)
        .join(ih, ih.c.code == ir.c.code)
        .where(ir.c.member_state == "new", ~ih.c.is_new)
        .order_by(tm.c.id)
    )
    await s.execute(audit.from_select(AUDIT_COLUMNS, added))


WORK_MEM = "256MB"
"""Memory of each sort and hash of an import's statements (PostgreSQL's ``work_mem``, for its transaction): a
Sichuan-scale roster's staging rows (≈ 140 MB sorted by household code) are sorted and hashed in memory instead of in
temporary files."""

TEMP_BUFFERS = "512MB"
"""Session memory for an import's staging tables (PostgreSQL's ``temp_buffers``, 8 MB by default): a Sichuan-scale
roster's staging rows (≈ 300 MB) are updated several times; beyond the buffers every pass goes through the disk."""


def check_importer(viewer: Viewer | None) -> bool:
    """Whether an import by ``viewer`` is confined to its areas (county officers); no viewer (CLI, tests): not confined.

    Raises:
        OutOfScope: a viewer who writes no households (planners, partners).
    """
    if viewer is not None and not viewer.writes_households:
        raise OutOfScope(f"{viewer.role.name} viewers import nothing (admins, and county officers in their areas)")
    return viewer is not None and viewer.role is Role.COUNTY_OFFICER


async def open_staging(s: Any, create: str, table: str, records: Any, columns: Sequence[str]) -> bool:
    """Every import's start in its session ``s``: viewer checked, ``begin_bulk``, staging table created and filled.

    ``check_importer`` on the session's viewer; then ``create`` (SQL) makes the staging table and ``records`` go into
    ``table``'s ``columns`` by COPY. Returns whether the import is confined to the viewer's areas.

    Raises:
        OutOfScope: as ``check_importer``.
    """
    scoped = check_importer(viewer_of(s))
    await begin_bulk(s)
    await s.execute(text(create))
    apg: Any = (await (await s.connection()).get_raw_connection()).driver_connection
    await apg.copy_records_to_table(table, records=records, columns=columns)
    return scoped


async def begin_bulk(s: Any) -> None:
    """An import's transaction settings: no statement timeout (an operator's bulk load, not a request), and staging in memory.

    ``temp_buffers`` can only be raised before the session's first temporary table; a pooled connection that already used
    one keeps its setting (the import runs all the same, slower).
    """
    await s.execute(text("SET LOCAL statement_timeout = 0"))
    await s.execute(text("SET LOCAL work_mem = '" + WORK_MEM + "'"))
    await s.execute(
        text(
            "DO $$ BEGIN PERFORM set_config('temp_buffers', '" + TEMP_BUFFERS + "', false); "
            "EXCEPTION WHEN others THEN NULL; END $$"
        )
    )


async def staged_counts(s: Any, staging: str) -> Counts:
    """Records new, changed, unchanged and rejected (``bad``) in a one-record-per-row import's staging table."""
    row = (
        await s.execute(
            text(
                f"SELECT count(*) FILTER (WHERE state = 'new'), count(*) FILTER (WHERE state = 'changed'), "
                f"count(*) FILTER (WHERE state = 'same'), count(*) FILTER (WHERE bad) FROM {staging}"
            )
        )  # fmt: skip
    ).one()
    return Counts(*row)


async def write_staged(
    s: Any,
    *,
    staging: str,
    table: Any,
    entity: str,
    action: str,
    keys: tuple[tuple[str, str], ...],
    statements: tuple[str, ...],
    households: bool = True,
) -> None:
    """The writes of a one-record-per-row import (incomes, employments, linkages) after its checks, in ``s``'s transaction.

    The staging table ``staging`` holds, per row, the record's key columns, ``state`` (``new``/``changed``/``same``),
    ``row`` and ``household_id``. Keeps the changed records as they were (for the audit), locks their households in id
    order, runs ``statements`` (the import's UPDATE and INSERT), bumps the households' ``version`` and writes one audit row
    per record written (before and after, ``row_json_sql``), in file order.

    Args:
        s: the session of the import's transaction.
        staging: the staging table's name.
        table: the records' table.
        entity: the audit log's entity (the table's name).
        action: the audit log's action (``importIncomes`` …).
        keys: (staging column, table column) pairs naming a record; the audit's entity id joins several with ``/``.
        statements: the import's writes, run in order.
        households: the records belong to households (lock them, bump their ``version``); False for records that are
            their own (sites, facilities: the statements bump the records' own versions).
    """
    t = table.alias("t")
    imp = sa.table(staging, *(sa.column(k) for k, _ in keys), sa.column("state", sa.Text), sa.column("row", sa.Integer))
    cols = [c for _, c in keys]
    before = sa.table(f"{staging}_before", *(sa.column(c) for c in cols), sa.column("j"))
    written = imp.c.state.in_(("new", "changed"))
    await s.execute(
        text(f"CREATE TEMP TABLE {staging}_before ON COMMIT DROP AS "
             f"SELECT {', '.join(cols)}, NULL::jsonb AS j FROM {table.name} WHERE false")
    )  # fmt: skip
    mine = sa.and_(*(imp.c[k] == t.c[c] for k, c in keys))
    await s.execute(
        sa.insert(before).from_select(
            [*cols, "j"],
            sa.select(*(t.c[c] for c in cols), row_json_sql(t, entity)).join_from(t, imp, mine).where(imp.c.state == "changed"),
        )
    )
    owners = f"SELECT household_id FROM {staging} WHERE state IN ('new', 'changed')"
    if households:
        await s.execute(text(f"SELECT 1 FROM household WHERE id IN ({owners}) ORDER BY id FOR UPDATE"))
    for statement in statements:
        await s.execute(text(statement))
    if households:
        await s.execute(text(f"UPDATE household h SET version = h.version + 1 WHERE h.id IN ({owners})"))
    who = audit_who(s)
    b = before.alias("b")
    entity_id = sa.cast(t.c[cols[0]], sa.Text) if len(cols) == 1 else sa.func.concat_ws("/", *(t.c[c] for c in cols))
    rows = (
        sa.select(
            sa.literal(who["user_id"], sa.BigInteger),
            sa.literal(who["user_name"]),
            sa.literal(who["role"]),
            sa.literal(action),
            sa.literal(entity),
            entity_id,
            b.c.j,
            row_json_sql(t, entity),
        )  # fmt: skip
        .join_from(t, imp, mine)
        .outerjoin(b, sa.and_(*(b.c[c] == t.c[c] for c in cols)))
        .where(written)
        .order_by(imp.c.row)
    )
    columns = ["user_id", "user_name", "role", "action", "entity", "entity_id", "before", "after"]
    await s.execute(sa.insert(m.AuditLog).from_select(columns, rows))
