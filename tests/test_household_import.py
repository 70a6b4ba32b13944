"""``anju import households``: real files written here (CSV in UTF-8, UTF-8 with BOM, GB18030; XLSX by xlsxwriter; a
zip bomb), checked against a writable copy of the demo seed. Expected values are computed from the rows the tests wrote
(never read back through the importer); "nothing written" is tests/digest.py's digest of every table.

The households and members here are GENERATED TEST DATA (codes T-…, made-up names); ID numbers are made up with a valid
GB 11643 check digit."""

from __future__ import annotations

import csv
import datetime as dt
import io
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
import xlsxwriter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker
from stdnum.cn import ric

from anju import db
from anju.auth import keys
from anju.seed import load_demo
from resolvers import parallel_read
from resolvers.access import Role, Viewer, scoped_sessionmaker
from resolvers.errors import OutOfScope
from resolvers.household_import import COLUMNS, import_households, write_report, write_template
from resolvers.tabular import FileLimits, FileRefused, csv_part_rows, open_table, split_csv
from tests.digest import digest
from tests.raw_status import status_mismatches

NAME = "anju_test_import"
VILLAGE, ORIGIN = "513432100004", "513432102201"
HEADERS = [c.header for c in COLUMNS]
KEYS = [c.key for c in COLUMNS]
TODAY = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
LIMITS = FileLimits(max_file_bytes=10_000_000, max_rows=10_000, max_cell_chars=1000, max_xlsx_unzipped_bytes=5_000_000)


def ident(region: str, born: str, seq: int) -> str:
    """A made-up ID number with a valid check digit (python-stdnum computes it from the first 17 characters)."""
    body = f"{region}{born}{seq:03d}"
    return body + ric.calc_check_digit(body + "0")


def member(code: str, name: str, **over: Any) -> dict[str, str]:
    """One roster row (household columns repeated), as the keys of COLUMNS → cell text."""
    row = {
        "household_code": code,
        "admin_code": VILLAGE,
        "poverty_status": "脱贫户",
        "site_id": "1",
        "relocated_on": "2019-05-01",
        "origin_admin_code": ORIGIN,
        "dwelling_lon": "102.4109",
        "dwelling_lat": "28.3101",
        "name": name,
        "gender": "男",
        "birth_year": "1980",
        "relation": "户主",
        "labor_force": "是",
        "id_number": "",
        "phone": "",
        "skills": "",
        "joined_on": "",
        "join_reason": "",
        "member_id": "",
    }
    row.update(over)
    return row


def family(code: str, n: int, seq0: int) -> list[dict[str, str]]:
    """A household of ``n`` members with distinct ID numbers (head, spouse, children)."""
    rel = ["户主", "配偶", "子女", "子女", "父母"]
    years = ["1980", "1982", "2006", "2010", "1950"]
    return [
        member(
            code,
            f"{code}成员{k}",
            relation=rel[k],
            birth_year=years[k],
            gender="男" if k % 2 == 0 else "女",
            labor_force="是" if k < 2 else "否",
            id_number=ident("513432", f"{years[k]}0315", seq0 + k),
            phone=f"1391234{seq0 + k:04d}" if k == 0 else "",
        )
        for k in range(n)
    ]


def write_csv(path: Path, rows: list[dict[str, str]], encoding: str = "utf-8", headers: list[str] | None = None) -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        w = csv.writer(f)
        w.writerow(headers or HEADERS)
        w.writerows([[r[k] for k in KEYS] for r in rows])
    return path


@pytest.fixture(scope="module")
async def imp(settings):  # type: ignore[no-untyped-def]
    await db.ensure_database(settings, NAME, drop_first=True)
    await db.migrate(settings, NAME)
    eng = db.create_engine(settings, NAME)
    await load_demo(eng)
    sm = async_sessionmaker(eng, expire_on_commit=False)
    key = keys(settings).id_number_key

    async def run(path: Path, sessionmaker: Any = None, limits: FileLimits = LIMITS, **kw: Any) -> Any:
        return await import_households(sessionmaker or sm, path, limits=limits, today=TODAY, id_number_key=key, **kw)

    yield {"eng": eng, "sm": sm, "run": run, "key": key}
    await eng.dispose()


async def rows_of(eng: Any, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    async with eng.connect() as c:
        return [tuple(r) for r in (await c.execute(text(sql), params)).all()]


MEMBERS_OF = (
    "SELECT mb.name, mb.gender::text, mb.birth_year, mb.relation::text, mb.labor_force, mb.id_number_last4, mb.phone, "
    "mb.skills FROM member mb JOIN household h ON h.id = mb.household_id WHERE h.code = :code ORDER BY mb.id"
)


def expected_members(rows: list[dict[str, str]]) -> list[tuple[Any, ...]]:
    """What the member rows should hold, computed from the cells (not through the importer)."""
    g = {"男": "male", "女": "female"}
    r = {"户主": "head", "配偶": "spouse", "子女": "child", "父母": "parent"}
    return [
        (
            x["name"],
            g[x["gender"]],
            int(x["birth_year"]),
            r[x["relation"]],
            x["labor_force"] == "是",
            x["id_number"][-4:] or None,
            x["phone"] or None,
            [s for s in x["skills"].split("、") if s],
        )
        for x in rows
    ]


# --------------------------------------------------------------------------- encodings


@pytest.mark.parametrize(
    ("encoding", "label"),
    [
        pytest.param("utf-8", "utf-8-sig", id="utf-8"),
        pytest.param("utf-8-sig", "utf-8-sig", id="utf-8-bom"),
        pytest.param("gb18030", "gb18030", id="gb18030"),
    ],
)
async def test_csv_encodings(imp, tmp_path, encoding, label):  # type: ignore[no-untyped-def]
    code = f"T-ENC-{encoding}"
    # a name outside GBK (𠮷, U+20BB7: four bytes in GB18030) and a Yi-style name
    rows = [member(code, "吉𠮷阿依", gender="女"), member(code, "阿苦日者", relation="配偶", birth_year="1979")]
    path = write_csv(tmp_path / "roster.csv", rows, encoding)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") == (encoding == "utf-8-sig")
    if encoding == "gb18030":
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")  # so the rule falls to GB18030, whatever a statistical guess would say
    result = await imp["run"](path)
    assert (result.encoding, result.written, result.problems) == (label, True, [])
    assert (result.households.inserted, result.members.inserted) == (1, 2)
    assert await rows_of(imp["eng"], MEMBERS_OF, code=code) == expected_members(rows)


async def test_encoding_override_and_undecodable(imp, tmp_path):  # type: ignore[no-untyped-def]
    rows = [member("T-GBK", "张三")]
    path = write_csv(tmp_path / "gbk.csv", rows, "gbk")
    result = await imp["run"](path, encoding="gbk")
    assert (result.encoding, result.written) == ("gbk", True)
    assert await rows_of(imp["eng"], "SELECT name FROM member mb JOIN household h ON h.id = mb.household_id "
                         "WHERE h.code = 'T-GBK'") == [("张三",)]  # fmt: skip
    bad = tmp_path / "bad.csv"
    bad.write_bytes(("户编号,姓名\n".encode()) + b"\xff\xfe\x00\x81\x30\n")
    before = await digest(imp["eng"])
    with pytest.raises(FileRefused, match="neither UTF-8 nor GB18030"):
        await imp["run"](bad)
    assert await digest(imp["eng"]) == before


# --------------------------------------------------------------------------- XLSX


def write_xlsx(path: Path, rows: list[dict[str, Any]], *, numbers: bool = True) -> Path:
    """An XLSX as a person would type it: years and coordinates as numbers, a date as a date, codes as text."""
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("花名册")
    date_fmt = wb.add_format({"num_format": "yyyy-mm-dd"})
    ws.write_row(0, 0, HEADERS)
    for i, r in enumerate(rows, start=1):
        for j, k in enumerate(KEYS):
            v = r[k]
            if v == "":
                continue
            if numbers and k in ("birth_year", "site_id", "dwelling_lon", "dwelling_lat"):
                ws.write_number(i, j, float(v))
            elif numbers and k == "relocated_on":
                ws.write_datetime(i, j, dt.datetime.fromisoformat(v), date_fmt)
            elif k == "id_number" and isinstance(v, int):
                ws.write_number(i, j, v)
            else:
                ws.write_string(i, j, str(v))
    wb.close()
    return path


async def test_xlsx_streamed(imp, tmp_path):  # type: ignore[no-untyped-def]
    rows = family("T-XLSX-1", 4, 100) + family("T-XLSX-2", 2, 110)
    path = write_xlsx(tmp_path / "roster.xlsx", rows)
    result = await imp["run"](path)
    assert (result.kind, result.written, result.problems) == ("xlsx", True, [])
    assert (result.households.inserted, result.members.inserted) == (2, 6)
    for code in ("T-XLSX-1", "T-XLSX-2"):
        assert await rows_of(imp["eng"], MEMBERS_OF, code=code) == expected_members(
            [r for r in rows if r["household_code"] == code]
        )
    got = await rows_of(
        imp["eng"],
        "SELECT relocated_on, site_id, ST_X(dwelling), ST_Y(dwelling), version FROM household WHERE code = 'T-XLSX-1'",
    )
    assert got == [(dt.date(2019, 5, 1), 1, pytest.approx(102.4109), pytest.approx(28.3101), 1)]


async def test_xlsx_id_number_typed_as_a_number(imp, tmp_path):  # type: ignore[no-untyped-def]
    rows = family("T-XLSX-NUM", 1, 120)
    rows[0]["id_number"] = 513432198003151  # type: ignore[assignment]  # what Excel keeps of a number
    before = await digest(imp["eng"])
    result = await imp["run"](write_xlsx(tmp_path / "num.xlsx", rows))
    assert not result.written and await digest(imp["eng"]) == before
    assert [(p.row, p.column) for p in result.problems] == [(2, "身份证号 id_number")]
    assert "stored as a number" in result.problems[0].reason


async def test_xlsx_bomb_refused_before_parsing(imp, tmp_path):  # type: ignore[no-untyped-def]
    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        # 20 MB of zeros: not even XML; refused from the zip directory, so never parsed
        z.writestr("xl/worksheets/sheet1.xml", b"\0" * 20_000_000)
    assert bomb.stat().st_size < 100_000
    before = await digest(imp["eng"])
    t0 = time.perf_counter()
    with pytest.raises(FileRefused, match=r"unpacks to 19\.1 MiB, more than the limit of 4\.8 MiB"):
        await imp["run"](bomb)
    assert time.perf_counter() - t0 < 2
    assert await digest(imp["eng"]) == before


async def test_oversize_file_and_row_limits(imp, tmp_path):  # type: ignore[no-untyped-def]
    path = write_csv(tmp_path / "big.csv", family("T-BIG", 3, 130))
    with pytest.raises(FileRefused, match="larger than the limit"):
        await imp["run"](path, limits=FileLimits(200, 10, 100, 10_000))
    with pytest.raises(FileRefused, match="more than 2 data rows"):
        await imp["run"](path, limits=FileLimits(10_000, 2, 100, 10_000))
    long = write_csv(tmp_path / "long.csv", [member("T-LONG", "名" * 60)])
    with pytest.raises(FileRefused, match="row 2, column '姓名 name': a cell of 60 characters; at most 50"):
        await imp["run"](long, limits=FileLimits(10_000, 10, 50, 10_000))


# --------------------------------------------------------------------------- bad rows, modes


async def test_bad_rows_reported_and_nothing_written(imp, tmp_path):  # type: ignore[no-untyped-def]
    good = family("T-BAD-1", 2, 200)
    bad = family("T-BAD-2", 3, 210)
    bad[1]["birth_year"] = "1850"  # row 5
    bad[2]["gender"] = "未知"  # row 6
    bad[2]["phone"] = "12345"
    rows = good + bad + [member("T-BAD-3", "王五", admin_code="513432999999")]  # row 7: no such village
    path = write_csv(tmp_path / "bad.csv", rows)
    before = await digest(imp["eng"])
    result = await imp["run"](path)
    assert not result.written and await digest(imp["eng"]) == before
    got = [(p.row, p.column, p.value, p.reason) for p in result.problems]
    assert got == [
        (5, "出生年份 birth_year", "1850", f"birthYear: 1850 is outside 1900..{TODAY.year}"),
        (6, "性别 gender", "未知", "gender: '未知' is not one of 男、女 (or MALE, FEMALE)"),
        (6, "联系电话 phone", "*2345", "phone: not a valid Chinese phone number"),
        (7, "现住村社区代码 admin_code", "513432999999", "adminCode: no admin area has code '513432999999'"),
    ]
    assert (result.households.rejected, result.members.rejected) == (2, 4)
    report = tmp_path / "report.csv"
    write_report(result, report)
    with report.open(encoding="utf-8-sig", newline="") as f:
        assert list(csv.reader(f)) == [["行号 row", "列 column", "值 value", "原因 reason"]] + [
            [str(a), b, c, d] for a, b, c, d in got
        ]


async def test_valid_only_writes_the_good_households(imp, tmp_path):  # type: ignore[no-untyped-def]
    good = family("T-VO-1", 2, 300)
    bad = family("T-VO-2", 2, 310)
    bad[0]["relocated_on"] = (TODAY + dt.timedelta(days=3)).isoformat()  # row 4
    bad[1]["relocated_on"] = bad[0]["relocated_on"]
    result = await imp["run"](write_csv(tmp_path / "vo.csv", good + bad), valid_only=True)
    assert result.written
    assert [(p.row, p.column) for p in result.problems] == [(4, "搬迁入住日期 relocated_on"), (5, "搬迁入住日期 relocated_on")]
    assert result.problems[0].reason == f"relocatedOn: {bad[0]['relocated_on']} is in the future (today is {TODAY})"
    codes = await rows_of(imp["eng"], "SELECT code FROM household WHERE code LIKE 'T-VO-%' ORDER BY code")
    assert codes == [("T-VO-1",)]
    assert (result.households.inserted, result.households.rejected, result.members.inserted) == (1, 1, 2)


async def test_a_household_written_whole_under_valid_only(imp, tmp_path):  # type: ignore[no-untyped-def]
    rows = family("T-WHOLE", 3, 320)
    rows[2]["labor_force"] = "maybe"  # row 4; rows 2 and 3 are fine but belong to the same household
    result = await imp["run"](write_csv(tmp_path / "whole.csv", rows), valid_only=True)
    assert [(p.row, p.column) for p in result.problems] == [
        (2, "户编号 household_code"),
        (3, "户编号 household_code"),
        (4, "是否劳动力 labor_force"),
    ]
    assert "row 4 of household T-WHOLE has a problem" in result.problems[0].reason
    assert await rows_of(imp["eng"], "SELECT count(*) FROM household WHERE code = 'T-WHOLE'") == [(0,)]


async def test_dry_run_writes_nothing(imp, tmp_path):  # type: ignore[no-untyped-def]
    path = write_csv(tmp_path / "dry.csv", family("T-DRY", 3, 400))
    before = await digest(imp["eng"])
    result = await imp["run"](path, dry_run=True)
    assert (result.written, result.households.inserted, result.members.inserted) == (False, 1, 3)
    assert await digest(imp["eng"]) == before


async def test_rows_disagreeing_on_household_columns(imp, tmp_path):  # type: ignore[no-untyped-def]
    rows = family("T-DIS", 2, 410)
    rows[1]["poverty_status"] = "一般户"
    result = await imp["run"](write_csv(tmp_path / "dis.csv", rows))
    assert [(p.row, p.column) for p in result.problems] == [(3, "脱贫状态 poverty_status")]
    assert result.problems[0].reason.startswith("povertyStatus: rows of household T-DIS disagree (row 2 differs)")


async def test_duplicate_id_numbers(imp, tmp_path):  # type: ignore[no-untyped-def]
    recorded = family("T-DUP-0", 1, 430)
    assert (await imp["run"](write_csv(tmp_path / "dup0.csv", recorded))).written
    rows = family("T-DUP", 2, 420)
    rows[1]["id_number"] = rows[0]["id_number"]  # row 3: the same as row 2
    other = family("T-DUP-2", 1, 440)
    other[0]["id_number"] = recorded[0]["id_number"]  # row 4: recorded for T-DUP-0's member
    before = await digest(imp["eng"])
    result = await imp["run"](write_csv(tmp_path / "dup.csv", rows + other))
    assert not result.written and await digest(imp["eng"]) == before
    assert [(p.row, p.column, p.reason) for p in result.problems] == [
        (3, "身份证号 id_number", "idNumber: the same ID number as row 2; one ID number belongs to one member"),
        (4, "身份证号 id_number", "idNumber: this ID number is already recorded for another member; nothing was written"),
    ]


# --------------------------------------------------------------------------- idempotence, updates, audit


async def test_same_file_twice_writes_nothing_the_second_time(imp, tmp_path):  # type: ignore[no-untyped-def]
    rows = family("T-TWICE-1", 5, 500) + family("T-TWICE-2", 1, 510)
    rows.append(member("T-TWICE-3", "无证件成员", relation="户主"))  # no ID number: matched by name and birth year
    path = write_csv(tmp_path / "twice.csv", rows)
    first = await imp["run"](path)
    assert (first.households.inserted, first.members.inserted) == (3, 7)
    before = await digest(imp["eng"])
    second = await imp["run"](path)
    assert (second.households.unchanged, second.members.unchanged, second.households.inserted) == (3, 7, 0)
    assert await digest(imp["eng"]) == before
    async with imp["eng"].connect() as c:
        assert await status_mismatches(c, [dt.date(2019, 4, 30), dt.date(2019, 5, 1), TODAY]) == []


# The located code's rule, written here independently of located_code.sql: the smallest admin polygon containing the
# point, ties by code; none outside every polygon.
SMALLEST_POLYGON = (
    "(SELECT a.code FROM admin_area a WHERE a.geom IS NOT NULL AND ST_Intersects(a.geom, {point}) "
    "ORDER BY ST_Area(a.geom), a.code LIMIT 1)"
)


async def test_imported_dwellings_located_as_one_at_a_time(imp, tmp_path):  # type: ignore[no-untyped-def]
    """The import locates its dwellings in one spatial join (anju_locate_each); each household's located_code is what
    the smallest-polygon rule gives its dwelling (none without a dwelling), as a single write's trigger would set."""
    rows = family("T-LOC-1", 2, 900)
    rows += [member("T-LOC-2", "定位二", dwelling_lon="102.4150", dwelling_lat="28.3150")]
    rows += [member("T-LOC-3", "定位三", dwelling_lon="", dwelling_lat="")]
    result = await imp["run"](write_csv(tmp_path / "located.csv", rows))
    assert result.written and result.households.inserted == 3
    got = await rows_of(
        imp["eng"],
        "SELECT h.code, h.located_code, " + SMALLEST_POLYGON.format(point="h.dwelling")
        + " FROM household h WHERE h.code LIKE 'T-LOC-%' ORDER BY h.code",
    )  # fmt: skip
    assert [(code, located) for code, located, _ in got] == [(code, rule) for code, _, rule in got]
    assert [located for _, located, _ in got][:2] == ["513432", "513432"] and got[2][1] is None


async def test_locate_each_is_the_smallest_polygon_rule(imp):  # type: ignore[no-untyped-def]
    """anju_locate_each over a grid across Liangshan (inside counties, between them, outside every polygon, a null)
    answers as the rule computed point by point here; anju_locate (one point) is the same function."""
    grid = (
        "SELECT i, CASE WHEN i = 0 THEN NULL ELSE ST_SetSRID(ST_MakePoint(100.0 + (i % 40) * 0.1, 26.0 + (i / 40) * 0.1), "
        "4326) END AS g FROM generate_series(0, 1599) i"
    )
    got = await rows_of(
        imp["eng"],
        f"WITH p AS ({grid}) SELECT p.i, e.code, anju_locate(p.g), " + SMALLEST_POLYGON.format(point="p.g")
        + " FROM p LEFT JOIN anju_locate_each(ARRAY(SELECT g FROM p ORDER BY i)) e ON e.i = p.i + 1 ORDER BY p.i",
    )  # fmt: skip
    assert [(i, each, one) for i, each, one, _ in got] == [(i, rule, rule) for i, _, _, rule in got]
    found = {rule for *_, rule in got}
    assert len(found - {None}) >= 5 and None in found  # several counties, and points outside every polygon


async def test_a_changed_row_updates_audited(imp, tmp_path):  # type: ignore[no-untyped-def]
    rows = family("T-UPD", 3, 600)
    path = write_csv(tmp_path / "upd.csv", rows)
    assert (await imp["run"](path)).written
    (hid, version), = await rows_of(imp["eng"], "SELECT id, version FROM household WHERE code = 'T-UPD'")  # fmt: skip
    log_before = (await rows_of(imp["eng"], "SELECT count(*) FROM audit_log"))[0][0]
    changed = [dict(r) for r in rows]
    for r in changed:
        r["poverty_status"] = "一般户"
    changed[1]["labor_force"] = "否"
    changed[1]["phone"] = "13800138000"
    changed.append(member("T-UPD", "新生儿", relation="子女", birth_year=str(TODAY.year), labor_force="否",
                          joined_on=TODAY.isoformat(), join_reason="出生", poverty_status="一般户"))  # fmt: skip
    result = await imp["run"](write_csv(tmp_path / "upd2.csv", changed))
    assert result.written and result.problems == []
    assert (result.households.updated, result.members.updated, result.members.inserted, result.members.unchanged) == (1, 1, 1, 2)
    assert await rows_of(
        imp["eng"], "SELECT poverty_status::text, version, member_count FROM household WHERE id = :h", h=hid
    ) == [("non_poor", version + 1, 4)]
    assert await rows_of(imp["eng"], MEMBERS_OF, code="T-UPD") == expected_members(changed)
    log = await rows_of(
        imp["eng"],
        "SELECT action, entity, user_name, before ->> 'poverty_status', after ->> 'poverty_status', before ->> 'phone', "
        "after ->> 'phone', after ->> 'name' FROM audit_log ORDER BY id OFFSET :n",
        n=log_before,
    )
    assert log == [
        ("importHouseholds", "household", "system", "poverty_alleviated", "non_poor", None, None, None),
        ("importHouseholds", "member", "system", None, None, None, "138****8000", "T" + "*" * (len(rows[1]["name"]) - 1)),
        ("importHouseholds", "member", "system", None, None, None, None, "新**"),
    ]
    async with imp["eng"].connect() as c:
        assert await status_mismatches(c, [TODAY - dt.timedelta(days=1), TODAY]) == []
    # the household's recorded residence is not moved by an import
    moved = [dict(r, admin_code="513432100005") for r in changed]
    result = await imp["run"](write_csv(tmp_path / "moved.csv", moved))
    assert not result.written and result.problems[0].row == 2
    assert result.problems[0].reason.startswith(
        "adminCode: household T-UPD is recorded with 513432100004; an import does not move"
    )


# --------------------------------------------------------------------------- scope


async def test_officer_imports_only_under_its_areas(imp, tmp_path):  # type: ignore[no-untyped-def]
    zhaojue = scoped_sessionmaker(imp["sm"], Viewer(None, "t-officer-zhaojue", Role.COUNTY_OFFICER, area_codes=("513431",)))
    xide = scoped_sessionmaker(imp["sm"], Viewer(None, "t-officer", Role.COUNTY_OFFICER, area_codes=("513432",)))
    path = write_csv(tmp_path / "xide.csv", family("T-SCOPE", 2, 700))
    before = await digest(imp["eng"])
    result = await imp["run"](path, sessionmaker=zhaojue)
    assert not result.written and await digest(imp["eng"]) == before
    assert [(p.row, p.column, p.reason) for p in result.problems] == [
        (2, "现住村社区代码 admin_code", "adminCode: 513432100004 is outside your areas")
    ]
    result = await imp["run"](path, sessionmaker=xide)
    assert result.written and result.households.inserted == 1
    assert await rows_of(imp["eng"], "SELECT user_name, role FROM audit_log ORDER BY id DESC LIMIT 1") == [
        ("t-officer", "county_officer")
    ]
    # a household code recorded outside the officer's areas: reported, not a unique-index failure
    result = await imp["run"](path, sessionmaker=zhaojue)
    assert [p.reason for p in result.problems] == ["code: household T-SCOPE is recorded outside your areas"]


async def test_template_round_trip(imp, tmp_path):  # type: ignore[no-untyped-def]
    for fmt in ("csv", "xlsx"):
        path = tmp_path / f"template.{fmt}"
        write_template(path, fmt)
        before = await digest(imp["eng"])
        result = await imp["run"](path)
        assert (result.rows, result.example_rows, result.problems) == (0, 2, [])
        assert await digest(imp["eng"]) == before
    wb = openpyxl.load_workbook(tmp_path / "template.xlsx")
    sheet = wb.worksheets[0]
    assert [c.value for c in sheet[1]] == HEADERS
    assert sheet["A1"].comment is not None and "必填 required" in sheet["A1"].comment.text
    assert wb.sheetnames == ["花名册 roster", "说明 notes"]
    # the example filled in for real imports as a household of two
    rows = [[cell.value for cell in row] for row in sheet.iter_rows(min_row=2)]
    filled = [
        dict(zip(KEYS, [("T-TPL" if k == "household_code" else (v or "")) for k, v in zip(KEYS, r, strict=True)], strict=True))
        for r in rows
    ]
    result = await imp["run"](write_csv(tmp_path / "filled.csv", filled, headers=[c.zh for c in COLUMNS]))
    assert result.problems == [] and (result.households.inserted, result.members.inserted) == (1, 2)


def test_cli_report_and_exit_code(settings, tmp_path):  # type: ignore[no-untyped-def]
    rows = family("T-CLI", 1, 800)
    rows[0]["birth_year"] = "abc"
    path = write_csv(tmp_path / "cli.csv", rows)
    env_db = {"ANJU_LOCAL_DB__DATABASE": NAME, "ANJU_LOCAL_DB__PORT": str(settings.local_db.port)}
    if not settings.uses_local_db:
        env_db = {"DATABASE_URL": settings.sqlalchemy_url(NAME)}
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("ANJU_") and k != "DATABASE_URL"} | env_db
    report = tmp_path / "report.csv"
    done = subprocess.run(
        [sys.executable, "-m", "anju.cli", "import", "households", str(path), "--report", str(report)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "row 2: 出生年份 birth_year: birthYear: 'abc' is not a whole number" in done.stderr
    assert "1 problem(s); nothing written" in done.stderr
    with report.open(encoding="utf-8-sig") as f:
        assert list(csv.reader(f))[1] == ["2", "出生年份 birth_year", "abc", "birthYear: 'abc' is not a whole number"]


def test_valid_ric_is_stdnums_rule() -> None:
    """The cached ID-number check answers as python-stdnum's ric.is_valid on numbers made here (valid and broken)."""
    import random

    from resolvers.mutations import valid_ric

    rng = random.Random(20240413)
    regions = ["513432", "513431", "110105", "440300", "999999", "510000", "513401"]
    numbers = []
    for _ in range(5000):
        born = f"{rng.randint(1890, 2030)}{rng.randint(0, 13):02d}{rng.randint(0, 32):02d}"
        body = f"{rng.choice(regions)}{born}{rng.randint(0, 999):03d}"
        last = ric.calc_check_digit(body + "0") if rng.random() < 0.8 else rng.choice("0123456789X")
        numbers.append(body + last)
    numbers += [
        "11010519491231002X",
        "110105194912310021",
        "1101051949123100",
        "11010519491231002x".upper(),
        "A1010519491231002X",
    ]
    assert [valid_ric(n) for n in numbers] == [ric.is_valid(n) for n in numbers]
    assert sum(valid_ric(n) for n in numbers) > 1000


def test_phone_digits_are_libphonenumbers_national_format() -> None:
    """check_phone's mobile shortcut gives libphonenumber's NATIONAL format digits, and validity is libphonenumber's."""
    import random
    import re

    import phonenumbers

    from resolvers.errors import InvalidInput
    from resolvers.mutations import check_phone

    rng = random.Random(20261202)
    numbers = [f"1{rng.randint(0, 9)}{rng.randint(0, 10**9 - 1):09d}" for _ in range(3000)]
    numbers += [f"0{rng.choice(['10', '20', '28', '834', '755'])}{rng.randint(0, 10**8 - 1):08d}" for _ in range(500)]
    numbers += ["+86 138 1234 5678", "8613812345678", "17951 13812345678", "12593 13812345678", "010-12345678"]
    valid = 0
    for n in numbers:
        try:
            parsed = phonenumbers.parse(n, "CN")
        except phonenumbers.NumberParseException:
            parsed = None
        ok = parsed is not None and parsed.country_code == 86 and phonenumbers.is_valid_number(parsed) and not parsed.extension
        if not ok:
            with pytest.raises(InvalidInput):
                check_phone(n)
            continue
        valid += 1
        assert parsed is not None
        expected = re.sub(r"\D", "", phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL))
        assert check_phone(n) == expected, n
    assert valid > 1000


def test_api_md_lists_every_template_column() -> None:
    api = (Path(__file__).resolve().parent.parent / "docs" / "api.md").read_text(encoding="utf-8")
    section = api.split("## Importing rosters", 1)[1].split("\n## ", 1)[0]
    for c in COLUMNS:
        assert f"| `{c.header}` | {'yes' if c.required else ''} |" in section, c.header


# --------------------------------------------------------------------------- incomes (anju import incomes)


def write_incomes(path: Path, rows: list[list[str]]) -> Path:
    from resolvers.income_import import INCOME_COLUMNS

    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow([c.header for c in INCOME_COLUMNS])
        w.writerows(rows)
    return path


async def test_incomes_import_idempotent_corrected_audited(imp, tmp_path):  # type: ignore[no-untyped-def]
    from resolvers.income_import import import_incomes

    assert (await imp["run"](write_csv(tmp_path / "inc-h.csv", family("T-INC", 3, 950)))).written
    (hid, version), = await rows_of(imp["eng"], "SELECT id, version FROM household WHERE code = 'T-INC'")  # fmt: skip

    async def run(path: Path, sm: Any = None, **kw: Any) -> Any:
        return await import_incomes(sm or imp["sm"], path, limits=LIMITS, today=TODAY, **kw)

    first = write_incomes(
        tmp_path / "inc.csv", [["T-INC", "2023", "36000.00", "", "2024-01-10"], ["T-INC", "2024", "39,000.5", "3", ""]]
    )
    result = await run(first)
    assert (result.written, result.problems, result.records) == (True, [], result.records)
    assert (result.records.inserted, result.records.updated, result.records.unchanged) == (2, 0, 0)
    # 2023's size: the members present on the survey day (the table's trigger: all 3, members since before the records)
    got = await rows_of(imp["eng"], "SELECT year, net_income::text, household_size, surveyed_on FROM household_income "
                        "WHERE household_id = :h ORDER BY year", h=hid)  # fmt: skip
    assert got == [(2023, "36000.00", 3, dt.date(2024, 1, 10)), (2024, "39000.50", 3, None)]
    assert await rows_of(imp["eng"], "SELECT version FROM household WHERE id = :h", h=hid) == [(version + 1,)]
    before = await digest(imp["eng"])
    again = await run(first)
    assert (again.records.unchanged, again.written) == (2, True) and await digest(imp["eng"]) == before
    corrected = write_incomes(tmp_path / "inc2.csv", [["T-INC", "2024", "41000", "", ""]])
    result = await run(corrected)
    assert (result.records.updated, result.records.inserted) == (1, 0)
    log = await rows_of(imp["eng"], "SELECT action, entity_id, before ->> 'net_income', after ->> 'net_income', "
                        "after ->> 'household_size' FROM audit_log ORDER BY id DESC LIMIT 1")  # fmt: skip
    assert log == [("importIncomes", f"{hid}/2024", "39000.50", "41000.00", "3")]  # a blank size keeps the recorded one
    bad = write_incomes(tmp_path / "inc3.csv", [["T-INC", "2024", "1.234", "0", ""], ["T-NONE", "2023", "1", "", ""],
                                                ["T-INC", str(TODAY.year + 1), "1", "", ""]])  # fmt: skip
    before = await digest(imp["eng"])
    result = await run(bad)
    assert not result.written and await digest(imp["eng"]) == before
    assert [(p.row, p.column, p.reason) for p in result.problems] == [
        (2, "家庭人口 household_size", "householdSize: 0 is outside 1..99 persons"),
        (2, "家庭纯收入 net_income", "netIncome: 1.234 has more than 2 decimals (yuan, fen precision)"),
        (3, "户编号 household_code", "code: no household has code 'T-NONE'"),
        (4, "年份 year", f"year: {TODAY.year + 1} has not begun; record a year's income once it is surveyed"),
    ]
    zhaojue = scoped_sessionmaker(imp["sm"], Viewer(None, "t-officer-zhaojue", Role.COUNTY_OFFICER, area_codes=("513431",)))
    result = await run(first, zhaojue)
    assert [p.reason for p in result.problems] == ["code: household T-INC is recorded outside your areas"] * 2


async def test_two_imports_of_the_same_households_at_once(imp, tmp_path):  # type: ignore[no-untyped-def]
    """Both pass their checks before either writes; the second then meets the unique index: CONFLICT, nothing of it written."""
    import asyncio

    from resolvers.errors import Duplicate

    path = write_csv(tmp_path / "race.csv", family("T-RACE", 2, 960))
    both_checked = asyncio.Barrier(2)

    async def progress(phase: str, rows: int) -> None:
        if phase == "writing":  # each has found the household new; neither has written
            await both_checked.wait()

    outcomes = await asyncio.gather(
        imp["run"](path, progress=progress), imp["run"](path, progress=progress), return_exceptions=True
    )
    written = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(written) == 1 and written[0].written and written[0].households.inserted == 1
    assert len(refused) == 1 and isinstance(refused[0], Duplicate)
    assert refused[0].message.startswith("code: another household already has this code")
    assert await rows_of(imp["eng"], "SELECT count(*) FROM member mb JOIN household h ON h.id = mb.household_id "
                         "WHERE h.code = 'T-RACE'") == [(2,)]  # fmt: skip


async def test_an_id_number_given_to_a_member_matched_by_name(imp, tmp_path):  # type: ignore[no-untyped-def]
    """A member recorded without an ID number gets one from the file; one recorded for someone else is refused."""
    other = family("T-IDN-0", 1, 970)
    rows = [member("T-IDN", "无证件者", relation="户主")]
    assert (await imp["run"](write_csv(tmp_path / "a.csv", other + rows))).written
    taken = [dict(rows[0], id_number=other[0]["id_number"])]
    before = await digest(imp["eng"])
    result = await imp["run"](write_csv(tmp_path / "b.csv", taken))
    assert not result.written and await digest(imp["eng"]) == before
    assert [(p.row, p.reason) for p in result.problems] == [
        (2, "idNumber: this ID number is already recorded for another member; nothing was written")
    ]
    fresh = [dict(rows[0], id_number=ident("513432", "19800315", 975))]
    result = await imp["run"](write_csv(tmp_path / "c.csv", fresh))
    assert (result.written, result.members.updated, result.members.inserted) == (True, 1, 0)
    assert await rows_of(imp["eng"], MEMBERS_OF, code="T-IDN") == expected_members(fresh)


# --------------------------------------------------------------------------- employments (anju import employments)


def write_employments(path: Path, rows: list[list[str]]) -> Path:
    from resolvers.employment_import import EMPLOYMENT_COLUMNS

    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow([c.header for c in EMPLOYMENT_COLUMNS])
        w.writerows(rows)
    return path


async def test_employments_import(imp, tmp_path):  # type: ignore[no-untyped-def]
    from resolvers.employment_import import import_employments

    people = family("T-EMP", 2, 980)
    assert (await imp["run"](write_csv(tmp_path / "emp-h.csv", people))).written
    (hid, version), = await rows_of(imp["eng"], "SELECT id, version FROM household WHERE code = 'T-EMP'")  # fmt: skip
    head, spouse = people[0]["id_number"], people[1]["id_number"]

    async def run(path: Path, sm: Any = None, **kw: Any) -> Any:
        return await import_employments(sm or imp["sm"], path, limits=LIMITS, today=TODAY, id_number_key=imp["key"], **kw)

    spells = [
        [head, "帮扶车间", "2024-05-01", "", "是", "1", "", "", "2100.00"],
        [spouse, "劳务输出", "2023-03-01", "2023-12-31", "否", "", "某服装厂", "浙江省", "4500"],
    ]
    result = await run(write_employments(tmp_path / "e.csv", spells))
    assert (result.written, result.problems, result.records.inserted) == (True, [], 2)
    got = await rows_of(
        imp["eng"],
        "SELECT e.channel::text, e.start_on, e.end_on, e.stable, e.facility_id, e.employer_name, e.monthly_wage::text, "
        "e.household_id FROM employment e JOIN member mb ON mb.id = e.member_id JOIN household h ON h.id = mb.household_id "
        "WHERE h.code = 'T-EMP' ORDER BY e.start_on",
    )
    assert got == [
        ("labor_export", dt.date(2023, 3, 1), dt.date(2023, 12, 31), False, None, "某服装厂", "4500.00", hid),
        ("workshop", dt.date(2024, 5, 1), None, True, 1, None, "2100.00", hid),
    ]
    assert await rows_of(imp["eng"], "SELECT version FROM household WHERE id = :h", h=hid) == [(version + 1,)]
    async with imp["eng"].connect() as c:  # the trigger-kept coverage values follow the new spells
        assert await status_mismatches(c, [dt.date(2023, 6, 1), dt.date(2024, 6, 1), TODAY]) == []
    before = await digest(imp["eng"])
    again = await run(write_employments(tmp_path / "e.csv", spells))
    assert again.records.unchanged == 2 and await digest(imp["eng"]) == before
    ended = [[head, "帮扶车间", "2024-05-01", "2024-12-31", "是", "1", "", "", ""]]  # a blank wage keeps the stored one
    result = await run(write_employments(tmp_path / "e2.csv", ended))
    assert (result.records.updated, result.records.inserted) == (1, 0)
    log = await rows_of(imp["eng"], "SELECT action, before ->> 'end_on', after ->> 'end_on', after ->> 'monthly_wage' "
                        "FROM audit_log ORDER BY id DESC LIMIT 1")  # fmt: skip
    assert log == [("importEmployments", None, "2024-12-31", "2100.00")]
    bad = [
        [head, "帮扶车间", "2024-06-01", "", "是", "", "", "", ""],  # WORKSHOP without facility
        [ident("513432", "19800315", 999), "灵活就业", "2024-01-01", "", "否", "", "", "", ""],  # no such member
        [spouse, "就近企业务工", "2024-01-01", "", "否", "999999", "", "", ""],  # no such facility
    ]
    before = await digest(imp["eng"])
    result = await run(write_employments(tmp_path / "e3.csv", bad))
    assert not result.written and await digest(imp["eng"]) == before
    assert [(p.row, p.column, p.reason) for p in result.problems] == [
        (2, "设施编号 facility_id", "facilityId: required for channel WORKSHOP (the workshop employing the member)"),
        (3, "身份证号 id_number", "idNumber: no member has this ID number; register the household first"),
        (4, "设施编号 facility_id", "facilityId: facility 999999 does not exist"),
    ]
    zhaojue = scoped_sessionmaker(imp["sm"], Viewer(None, "t-officer-zhaojue", Role.COUNTY_OFFICER, area_codes=("513431",)))
    result = await run(write_employments(tmp_path / "e.csv", spells), zhaojue)
    assert [p.reason for p in result.problems] == ["idNumber: the member is recorded outside your areas"] * 2


# --------------------------------------------------------------------------- income linkages (anju import linkages)


async def test_linkages_import(imp, tmp_path):  # type: ignore[no-untyped-def]
    from resolvers.linkage_import import LINKAGE_COLUMNS, import_linkages

    assert (await imp["run"](write_csv(tmp_path / "l-h.csv", family("T-LNK", 1, 990)))).written
    (hid, version), = await rows_of(imp["eng"], "SELECT id, version FROM household WHERE code = 'T-LNK'")  # fmt: skip

    def write(name: str, rows: list[list[str]]) -> Path:
        with (tmp_path / name).open("w", encoding="gb18030", newline="") as f:  # a GBK-family file, found by the rule
            w = csv.writer(f)
            w.writerow([c.zh for c in LINKAGE_COLUMNS])  # Chinese headers alone
            w.writerows(rows)
        return tmp_path / name

    async def run(path: Path, **kw: Any) -> Any:
        return await import_linkages(imp["sm"], path, limits=LIMITS, **kw)

    rows = [["T-LNK", "2024", "分红", "800", "2"], ["T-LNK", "2024", "土地流转", "1,200.50", ""]]
    result = await run(write("l.csv", rows))
    assert (result.encoding, result.written, result.problems, result.records.inserted) == ("gb18030", True, [], 2)
    got = await rows_of(imp["eng"], "SELECT mechanism::text, year, amount::text, facility_id FROM income_linkage "
                        "WHERE household_id = :h ORDER BY id", h=hid)  # fmt: skip
    assert got == [("dividend", 2024, "800.00", 2), ("land_rent", 2024, "1200.50", None)]
    assert await rows_of(imp["eng"], "SELECT version FROM household WHERE id = :h", h=hid) == [(version + 1,)]
    before = await digest(imp["eng"])
    assert (await run(write("l.csv", rows))).records.unchanged == 2 and await digest(imp["eng"]) == before
    result = await run(write("l2.csv", [["T-LNK", "2024", "分红", "900.00", "2"]]))
    assert (result.records.updated, result.records.inserted) == (1, 0)
    log = await rows_of(
        imp["eng"], "SELECT action, before ->> 'amount', after ->> 'amount' FROM audit_log ORDER BY id DESC LIMIT 1"
    )
    assert log == [("importIncomeLinkages", "800.00", "900.00")]
    bad = [["T-LNK", "1999", "分红", "1", ""], ["T-LNK", "2024", "捐赠", "1", ""], ["T-LNK", "2024", "其他", "-5", "999999"]]
    before = await digest(imp["eng"])
    result = await run(write("l3.csv", bad))
    assert not result.written and await digest(imp["eng"]) == before
    assert [(p.row, p.column, p.reason) for p in result.problems] == [
        (2, "年份", "year: 1999 is outside 2000..2100"),
        (3, "联结方式", "mechanism: '捐赠' is not one of 工资、务工工资、分红、土地流转、土地租金、订单收购、资产收益、其他 "
         "(or WAGE, DIVIDEND, LAND_RENT, ORDER_PURCHASE, ASSET_INCOME, OTHER)"),
        (4, "金额", "amount: -5 must be a finite amount >= 0 (yuan)"),
    ]  # fmt: skip


# --------------------------------------------------------------------------- member counts


async def test_counts_of_imported_households(imp, tmp_path):  # type: ignore[no-untyped-def]
    """A valid-only import: each new household's member_count / labor_force_count (inserted with it, not added by the
    member trigger) and an existing household's (the trigger's, for a member added to it) equal what the file's rows say
    and what its member rows say."""
    seq = 840  # ID numbers' sequence digits no other test here uses (840–889)
    rows: list[dict[str, str]] = []
    for i in range(9):
        rows += family(f"T-PAR-{i}", 1 + i % 5, seq)
        seq += 5
    rows[4]["birth_year"] = "1850"  # a bad row: household T-PAR-2 (its second member) is rejected
    old = family("T-PAR-OLD", 2, 885)
    await imp["run"](write_csv(tmp_path / "old.csv", old))
    rows += old + [member("T-PAR-OLD", "新成员", relation="子女", birth_year="2012", labor_force="否")]
    path = write_csv(tmp_path / "par.csv", rows)
    result = await imp["run"](path, valid_only=True)
    assert result.written
    assert [(p.row, p.column) for p in result.problems] == [
        (5, "户编号 household_code"),  # not written: its household has a bad row
        (6, "出生年份 birth_year"),
        (7, "户编号 household_code"),
    ]
    expected = {}
    for r in rows:
        if r["household_code"] != "T-PAR-2":
            n, lf = expected.get(r["household_code"], (0, 0))
            expected[r["household_code"]] = (n + 1, lf + (r["labor_force"] == "是"))
    got = await rows_of(
        imp["eng"],
        "SELECT code, member_count, labor_force_count FROM household WHERE code LIKE 'T-PAR-%' ORDER BY code",
    )
    assert {c: (n, lf) for c, n, lf in got} == expected
    # and the member rows say the same (the counts are of present members)
    recount = await rows_of(
        imp["eng"],
        "SELECT h.code FROM household h WHERE h.code LIKE 'T-PAR-%' AND (h.member_count, h.labor_force_count) <> "
        "(SELECT count(*), count(*) FILTER (WHERE mb.labor_force) FROM member mb WHERE mb.household_id = h.id "
        "AND mb.left_on IS NULL)",
    )
    assert recount == []
    async with imp["eng"].connect() as c:
        assert await status_mismatches(c, [dt.date(2019, 5, 1), TODAY]) == []


def _redated(rows: list[dict[str, str]], seq0: int) -> list[dict[str, str]]:
    """``rows`` with ID numbers of another birth day (07-23) than family()'s, numbered from ``seq0``: none other test's."""
    return [{**r, "id_number": ident("513432", f"{r['birth_year']}0723", seq0 + k)} for k, r in enumerate(rows)]


COUNTS_DISAGREE = (
    "SELECT h.code, h.member_count, h.labor_force_count FROM household h WHERE h.code LIKE :like AND "
    "(h.member_count, h.labor_force_count) <> (SELECT count(*), count(*) FILTER (WHERE mb.labor_force) FROM member mb "
    "WHERE mb.household_id = h.id AND mb.left_on IS NULL)"
)


async def test_counts_given_under_scope_twice_and_not_after_in_the_same_connection(imp, settings, tmp_path):  # type: ignore[no-untyped-def]
    """A county officer's valid-only import (row-level security) of new households, a member added to a recorded one and a
    rejected household, then the same file again; then, on the same pooled connection (a pool of one), addMember to one
    of the imported households and a member's leaving: the counts follow (anju.counts = 'given' ended with the import's
    transaction), and every household's counts equal its present members; household_status agrees."""
    import models as m
    from resolvers.mutations import add_member
    from resolvers.registry import member_leaves

    one = settings.model_copy(update={"pool_size": 1, "max_overflow": 0})
    eng = db.create_engine(one, NAME)
    try:
        sm = async_sessionmaker(eng, expire_on_commit=False)
        officer = scoped_sessionmaker(sm, Viewer(None, "t-officer", Role.COUNTY_OFFICER, area_codes=("513432",)))
        old = _redated(family("T-GUC-OLD", 2, 0), 500)
        assert (await imp["run"](write_csv(tmp_path / "old.csv", old), sessionmaker=officer)).written
        rows = _redated(family("T-GUC-A", 3, 0), 510) + _redated(family("T-GUC-B", 5, 0), 520)
        bad = _redated(family("T-GUC-BAD", 2, 0), 530)
        bad[1]["gender"] = "?"
        rows += bad + old + [member("T-GUC-OLD", "新成员甲", relation="子女", birth_year="2015", labor_force="否")]
        rows += [member("T-GUC-OLD", "新成员乙", relation="子女", birth_year="2001", labor_force="是")]
        path = write_csv(tmp_path / "guc.csv", rows)
        first = await imp["run"](path, sessionmaker=officer, valid_only=True)
        assert first.written and (first.households.inserted, first.households.updated) == (2, 1)
        second = await imp["run"](path, sessionmaker=officer, valid_only=True)
        assert (second.households.inserted, second.households.updated, second.members.inserted) == (0, 0, 0)
        got = {
            c: (n, lf)
            for c, n, lf in await rows_of(
                imp["eng"], "SELECT code, member_count, labor_force_count FROM household WHERE code LIKE 'T-GUC-%'"
            )
        }
        assert got == {"T-GUC-OLD": (4, 3), "T-GUC-A": (3, 2), "T-GUC-B": (5, 2)}
        async with sm() as s:
            pid = await s.scalar(text("SELECT pg_backend_pid()"))
            assert await s.scalar(text("SELECT coalesce(current_setting('anju.counts', true), '')")) == ""
        hid, version = (await rows_of(imp["eng"], "SELECT id, version FROM household WHERE code = 'T-GUC-A'"))[0]
        written = await add_member(
            officer, household_id=hid, version=version, name="后来者", gender=m.Gender.FEMALE, birth_year=1999,
            relation=m.Relation.CHILD, labor_force=True, today=TODAY,
        )  # fmt: skip
        async with sm() as s:
            assert await s.scalar(text("SELECT pg_backend_pid()")) == pid  # the connection the imports used
        leaver = (await rows_of(imp["eng"], "SELECT min(mb.id) FROM member mb JOIN household h ON h.id = mb.household_id "
                                "WHERE h.code = 'T-GUC-B' AND mb.labor_force"))[0][0]  # fmt: skip
        hb, vb = (await rows_of(imp["eng"], "SELECT id, version FROM household WHERE code = 'T-GUC-B'"))[0]
        await member_leaves(officer, member_id=leaver, version=vb, left_on=TODAY, reason=m.LeaveReason.DEATH, today=TODAY)
        got = {
            c: (n, lf)
            for c, n, lf in await rows_of(
                imp["eng"], "SELECT code, member_count, labor_force_count FROM household WHERE code LIKE 'T-GUC-%'"
            )
        }
        assert written.record_id is not None and hb
        assert got == {"T-GUC-OLD": (4, 3), "T-GUC-A": (4, 3), "T-GUC-B": (4, 1)}
        assert await rows_of(imp["eng"], COUNTS_DISAGREE, like="T-GUC-%") == []
        async with imp["eng"].connect() as c:
            assert await status_mismatches(c, [dt.date(2019, 5, 1), TODAY]) == []
    finally:
        await eng.dispose()


async def test_counts_with_members_added_and_leaving_while_an_import_writes(imp, tmp_path):  # type: ignore[no-untyped-def]
    """addMember and a member's leaving commit on a recorded household after an import checked its file and before it
    writes (its rows add a member to that household, and bring a new household): the counts are of the present members."""
    import models as m
    from resolvers.mutations import add_member
    from resolvers.registry import member_leaves

    old = _redated(family("T-RACE2-OLD", 3, 0), 600)
    assert (await imp["run"](write_csv(tmp_path / "old.csv", old))).written
    rows = old + [member("T-RACE2-OLD", "新成员丙", relation="子女", birth_year="2014", labor_force="否")]
    rows += _redated(family("T-RACE2-NEW", 4, 0), 610)
    ((hid, version),) = await rows_of(imp["eng"], "SELECT id, version FROM household WHERE code = 'T-RACE2-OLD'")
    ((head,),) = await rows_of(imp["eng"], "SELECT min(id) FROM member WHERE household_id = :h", h=hid)

    async def meanwhile(phase: str, n: int) -> None:
        if phase == "writing":
            w = await add_member(imp["sm"], household_id=hid, version=version, name="插队者", gender=m.Gender.MALE,
                                 birth_year=1990, relation=m.Relation.OTHER, labor_force=True, today=TODAY)  # fmt: skip
            await member_leaves(imp["sm"], member_id=head, version=w.version, left_on=TODAY, reason=m.LeaveReason.DEATH,
                                today=TODAY)  # fmt: skip

    result = await imp["run"](write_csv(tmp_path / "race2.csv", rows), progress=meanwhile)
    assert result.written
    got = await rows_of(imp["eng"], "SELECT code, member_count, labor_force_count FROM household WHERE code LIKE 'T-RACE2-%'")
    # OLD: 3 + 1 (the file's) + 1 (addMember) - 1 (the head left, labour force) ; NEW: 4, two in the labour force
    assert sorted(got) == [("T-RACE2-NEW", 4, 2), ("T-RACE2-OLD", 4, 2)]
    assert await rows_of(imp["eng"], COUNTS_DISAGREE, like="T-RACE2-%") == []
    async with imp["eng"].connect() as c:
        assert await status_mismatches(c, [dt.date(2019, 5, 1), TODAY]) == []


async def test_an_officers_big_import_analyses_the_tables_it_wrote(imp, tmp_path):  # type: ignore[no-untyped-def]
    """A county officer's import of 1,000 new households: the tables are analysed before the audit rows are read from them
    (``_write``'s ``analyze``), as for a system import. Under the officer's role PostgreSQL skipped ANALYZE (only the
    tables' owner may), leaving the plan that ran 60,000 households for 9 minutes. ANALYZE of a table this small reads
    every row, so pg_class.reltuples is then the exact count (an INSERT alone never changes it)."""
    officer = scoped_sessionmaker(imp["sm"], Viewer(None, "t-officer", Role.COUNTY_OFFICER, area_codes=("513432",)))
    rows = [member(f"T-BIG-{i:04d}", f"大户{i}", birth_year=str(1950 + i % 50)) for i in range(1000)]
    result = await imp["run"](write_csv(tmp_path / "big.csv", rows), sessionmaker=officer)
    assert result.written and result.households.inserted == 1000
    got = await rows_of(
        imp["eng"],
        "SELECT c.relname, c.reltuples::bigint, (SELECT count(*) FROM household), (SELECT count(*) FROM member) "
        "FROM pg_class c WHERE c.oid IN ('household'::regclass, 'member'::regclass) ORDER BY c.relname",
    )
    assert [(name, tuples) for name, tuples, _, _ in got] == [("household", got[0][2]), ("member", got[0][3])]
    # the rest of the write ran as the officer again: its audit rows, the household rows within its areas
    assert await rows_of(
        imp["eng"],
        "SELECT a.user_name, a.role, count(*) FROM audit_log a JOIN household h ON h.id::text = a.entity_id "
        "AND a.entity = 'household' WHERE h.code LIKE 'T-BIG-%' GROUP BY 1, 2",
    ) == [("t-officer", "county_officer", 1000)]


# --------------------------------------------------------------------------- a big CSV read by several processes


def _roster_text(rows: list[dict[str, str]], newline: str, blank_every: int = 0) -> str:
    """The roster as CSV text with the line ends given, a blank line after every ``blank_every``-th row."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator=newline)
    w.writerow(HEADERS)
    for i, r in enumerate(rows, start=1):
        w.writerow([r[k] for k in KEYS])
        if blank_every and i % blank_every == 0:
            out.write(newline)
    return out.getvalue()


def _write_roster(path: Path, rows: list[dict[str, str]]) -> Path:
    """The roster as a UTF-8 CSV file, LF line ends."""
    path.write_text(_roster_text(rows, "\n"), encoding="utf-8", newline="")
    return path


def _many(prefix: str, households: int, region: str) -> list[dict[str, str]]:
    """``households`` households of 3 members, ID numbers of ``region`` (a county code no other test uses); every 7th
    head's skills a quoted cell with a line break and a comma."""
    rows: list[dict[str, str]] = []
    for h in range(households):
        fam = family(f"{prefix}-{h:04d}", 3, 0)
        for k, x in enumerate(fam):
            x["id_number"] = ident(region, x["id_number"][6:14], 3 * h + k)
        if h % 7 == 0:
            fam[0]["skills"] = '电工\n焊工,"厨师"'
        rows += fam
    return rows


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
@pytest.mark.parametrize("newline", ["\r\n", "\n", "\r"])
def test_csv_parts_are_the_files_rows(tmp_path, encoding, newline):  # type: ignore[no-untyped-def]
    """Every cut of split_csv falls between records: the parts' rows, in order, are open_table's rows, numbers included
    (quoted line breaks, blank lines, CR LF / LF / CR line ends, a BOM, GB18030)."""
    rows = _many("T-CUT", 60, "513423")
    rows[100]["name"] = "𠀀" + rows[100]["name"]  # outside GBK: four bytes in GB18030
    path = tmp_path / "cut.csv"
    path.write_bytes(_roster_text(rows, newline, blank_every=11).encode(encoding))
    table = open_table(path, LIMITS)
    whole = list(table.rows)
    assert len(whole) == len(rows) and whole[0][0] == 2
    assert table.encoding is not None
    for n in (2, 3, 5):
        parts = split_csv(path, table.encoding, n, LIMITS)
        assert len(parts) == n
        assert [p.start for p in parts[1:]] == [p.end for p in parts[:-1]]
        got = [r for p in parts for r in csv_part_rows(path, table.encoding, p, LIMITS, table.header)]
        assert got == whole


async def refusals(imp: Any, path: Path, processes: tuple[int, ...], **kw: Any) -> set[str]:
    """The FileRefused messages of importing ``path`` read by each number of ``processes`` (one message: all agree)."""
    messages = set()
    for n in processes:
        with pytest.raises(FileRefused) as refused:
            await imp["run"](path, read_processes=n, **kw)
        messages.add(refused.value.message)
    return messages


async def test_a_big_csv_read_by_two_processes_imports_as_one(imp, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """The same file read by one process and by two: the same counts, problems (rows in both halves) and records."""
    monkeypatch.setattr(parallel_read, "PARALLEL_MIN_BYTES", 0)
    rows = _many("T-MP", 200, "513401")
    rows[10]["birth_year"] = "1850"  # row 12, first half
    rows[550]["gender"] = "未知"  # row 552, second half
    rows[590]["household_code"] = "示例-9"  # an example row, skipped
    path = tmp_path / "par.csv"
    path.write_text(_roster_text(rows, "\r\n", blank_every=50), encoding="utf-8-sig", newline="")
    assert len(split_csv(path, "utf-8-sig", 2, LIMITS)) == 2
    before = await digest(imp["eng"])
    one = await imp["run"](path, read_processes=1, dry_run=True)
    two = await imp["run"](path, read_processes=2, dry_run=True)
    assert await digest(imp["eng"]) == before
    shown = [(p.row, p.column, p.reason) for p in two.problems]
    blank_before = {12: 0, 552: 11}  # blank lines written before those rows
    assert shown == [
        (12 + blank_before[12], "出生年份 birth_year", f"birthYear: 1850 is outside 1900..{TODAY.year}"),
        (552 + blank_before[552], "性别 gender", "gender: '未知' is not one of 男、女 (or MALE, FEMALE)"),
    ]
    assert (one.read_by, two.read_by) == (1, 2)
    assert (two.rows, two.example_rows, two.households, two.members, two.problems) == (
        len(rows) - 1, 1, one.households, one.members, one.problems,
    )  # fmt: skip
    written = await imp["run"](path, read_processes=2, valid_only=True)
    # the two households with a bad row left out; the example row skipped (its household written with its other rows)
    assert (written.written, written.households.inserted, written.members.inserted) == (True, 198, 198 * 3 - 1)
    good = rows[3:6]
    assert await rows_of(imp["eng"], MEMBERS_OF, code=good[0]["household_code"]) == expected_members(good)
    assert await rows_of(imp["eng"], "SELECT count(*) FROM household WHERE code LIKE 'T-MP-%'") == [(198,)]
    again = await imp["run"](path, read_processes=2, valid_only=True)
    assert (again.households.inserted, again.households.updated, again.members.inserted) == (0, 0, 0)


async def test_a_refusal_in_the_second_part_is_the_one_process_refusal(imp, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """A file refused by a row in its second half, or by its row count, is refused by two processes as by one."""
    monkeypatch.setattr(parallel_read, "PARALLEL_MIN_BYTES", 0)
    rows = _many("T-MPX", 100, "513422")
    rows[250]["name"] = "名" * 60
    path = _write_roster(tmp_path / "long.csv", rows)
    limits = FileLimits(10_000_000, 10_000, 50, 5_000_000)
    assert len(split_csv(path, "utf-8-sig", 2, limits)) == 2
    assert await refusals(imp, path, (1, 2), limits=limits) == {
        "file: row 252, column '姓名 name': a cell of 60 characters; at most 50 (imports.max_cell_chars)"
    }
    rows[250]["name"] = "名"
    _write_roster(path, rows)
    (message,) = await refusals(imp, path, (1, 2), limits=FileLimits(10_000_000, 299, 1000, 5_000_000))
    assert "more than 299 data rows" in message
    assert await rows_of(imp["eng"], "SELECT count(*) FROM household WHERE code LIKE 'T-MPX-%'") == [(0,)]


def test_a_csv_refused_before_its_last_cut_is_refused_as_open_table_refuses_it(tmp_path):  # type: ignore[no-untyped-def]
    """split_csv reads the file up to its last cut: a refusal there is open_table's word for word (the header's column
    names, the data-row limit without the header)."""
    rows = _many("T-CUTX", 60, "513424")
    rows[20]["name"] = "名" * 60
    path = _write_roster(tmp_path / "long.csv", rows)
    limits = FileLimits(10_000_000, 10_000, 50, 5_000_000)
    few = FileLimits(10_000_000, 30, 1000, 5_000_000)
    for lim in (limits, few):
        table = open_table(path, lim)
        with pytest.raises(FileRefused) as one:
            list(table.rows)
        with pytest.raises(FileRefused) as split:
            split_csv(path, "utf-8-sig", 2, lim)
        assert split.value.message == one.value.message
    assert "column '姓名 name'" in one.value.message or "more than 30 data rows" in one.value.message


async def test_a_part_refused_after_the_row_limit_is_refused_for_the_row_count(imp, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """A long cell in the second half, after the file's last allowed row: one process stops at the row count first."""
    monkeypatch.setattr(parallel_read, "PARALLEL_MIN_BYTES", 0)
    rows = _many("T-MPR", 100, "513425")
    rows[280]["name"] = "名" * 60
    path = _write_roster(tmp_path / "late.csv", rows)
    limits = FileLimits(10_000_000, 200, 50, 5_000_000)
    assert len(split_csv(path, "utf-8-sig", 2, limits)) == 2
    (message,) = await refusals(imp, path, (1, 2, 3), limits=limits)
    assert "more than 200 data rows" in message


async def test_an_undecodable_byte_in_the_second_half_is_refused_as_one_process_refuses_it(imp, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """--encoding gbk and a byte that is no GBK three quarters into the file: the same message (the same row) by one
    process and by two, three or five (a part's decoder begins elsewhere, and meets the byte on another row)."""
    monkeypatch.setattr(parallel_read, "PARALLEL_MIN_BYTES", 0)
    data = bytearray(_roster_text(_many("T-MPD", 400, "513426"), "\r\n").encode("gbk"))
    at = data.index(b"\r\n", len(data) * 3 // 4) + 2
    data[at : at + 1] = b"\xff"  # the household code's first byte
    path = tmp_path / "gbk.csv"
    path.write_bytes(bytes(data))
    messages = await refusals(imp, path, (1, 2, 3, 5), encoding="gbk")
    assert len(messages) == 1, messages
    assert "is not gbk text" in messages.pop()
    import multiprocessing

    assert multiprocessing.active_children() == []  # the processes still reading were stopped at the refusal


async def test_a_planner_is_refused_before_the_file_is_read(imp, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """A viewer who imports nothing is told so, not what is wrong with the file, however many processes would read it."""
    monkeypatch.setattr(parallel_read, "PARALLEL_MIN_BYTES", 0)
    rows = _many("T-MPP", 60, "513427")
    rows[10]["name"] = "名" * 60
    path = _write_roster(tmp_path / "planner.csv", rows)
    limits = FileLimits(10_000_000, 10_000, 50, 5_000_000)
    planner = scoped_sessionmaker(imp["sm"], Viewer(None, "t-planner", Role.PLANNER))
    for n in (1, 2):
        with pytest.raises(OutOfScope):
            await imp["run"](path, sessionmaker=planner, limits=limits, read_processes=n)


async def test_a_cancelled_or_failed_parallel_import_leaves_no_reading_process(imp, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """Cancelled while its processes read (an HTTP job's loop ending, a client's timeout), or refused by the database
    after reading (a household code recorded meanwhile): no reading process is left, nothing written."""
    import asyncio
    import multiprocessing

    monkeypatch.setattr(parallel_read, "PARALLEL_MIN_BYTES", 0)
    rows = _many("T-MPC", 1500, "513428")
    path = _write_roster(tmp_path / "cancel.csv", rows)
    before = await digest(imp["eng"])
    task = asyncio.create_task(imp["run"](path, read_processes=3))
    for _ in range(500):
        if multiprocessing.active_children():
            break
        await asyncio.sleep(0.01)
    assert multiprocessing.active_children()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert multiprocessing.active_children() == []
    assert await digest(imp["eng"]) == before
    # two big imports of the same households at once, each read by two processes: one writes, the other meets the
    # unique index after reading (CONFLICT); no reading process left by either
    from resolvers.errors import Duplicate

    both_checked = asyncio.Barrier(2)

    async def progress(phase: str, rows: int) -> None:
        if phase == "writing":
            await both_checked.wait()

    small = _write_roster(tmp_path / "race.csv", rows[:600])
    outcomes = await asyncio.gather(
        imp["run"](small, read_processes=2, progress=progress),
        imp["run"](small, read_processes=2, progress=progress),
        return_exceptions=True,
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["Duplicate", "ImportResult"]
    assert [o.read_by for o in outcomes if not isinstance(o, Duplicate)] == [2]
    assert multiprocessing.active_children() == []
    assert await rows_of(imp["eng"], "SELECT count(*) FROM household WHERE code LIKE 'T-MPC-%'") == [(200,)]


def test_a_stateful_encoding_is_not_cut(tmp_path):  # type: ignore[no-untyped-def]
    """--encoding utf-7: '+AGE-' is 'a' (five bytes, one when re-encoded), so the offsets counted run short; a cut checked
    against repeated lines passed a line early and the second part's rows were numbered one too high."""
    path = tmp_path / "utf7.csv"
    path.write_bytes(b"h1,h2\n" + b"a,+AGE-\n" + b"x,y\n" * 200 + b"bad,row\n" + b"x,y\n" * 50)
    table = open_table(path, LIMITS, encoding="utf-7")
    whole = list(table.rows)
    assert table.encoding == "utf-7" and (203, ["bad", "row"]) in whole
    parts = split_csv(path, "utf-7", 2, LIMITS)
    assert len(parts) == 1
    assert list(csv_part_rows(path, "utf-7", parts[0], LIMITS, table.header)) == whole


async def test_a_re_import_by_member_id_meets_numbers_recorded_for_other_members(imp, tmp_path):  # type: ignore[no-untyped-def]
    """成员编号 member_id given for a member recorded without an ID number: the file's number is refused when another
    member holds it (in the same household, or outside the officer's areas), taken when nobody does; a re-import of the
    roster as recorded passes (the members hold their own numbers)."""
    from resolvers.access import id_number_hash

    # an officer of the township of VILLAGE (513432100); the other member's household in another township (513432208)
    xide = scoped_sessionmaker(imp["sm"], Viewer(None, "t-officer", Role.COUNTY_OFFICER, area_codes=("513432100",)))
    rows = family("T-EW", 2, 650)  # sequence digits no other test here uses (650–659)
    rows[1]["id_number"] = ""  # the spouse, recorded without one
    first = await imp["run"](write_csv(tmp_path / "a.csv", rows))
    assert first.written, first.problems
    ids = [r[0] for r in await rows_of(imp["eng"], "SELECT mb.id FROM member mb JOIN household h ON h.id = mb.household_id "
                                       "WHERE h.code = 'T-EW' ORDER BY mb.id")]  # fmt: skip
    outside = ident("513429", "19700101", 981)
    async with imp["eng"].begin() as c:
        other, old = (
            await c.execute(
                text(
                    "SELECT mb.id, mb.id_number_hash FROM member mb JOIN household h ON h.id = mb.household_id "
                    "WHERE h.admin_code NOT LIKE '513432100%' ORDER BY mb.id LIMIT 1"
                )
            )
        ).one()
        await c.execute(
            text("UPDATE member SET id_number_hash = :h WHERE id = :id"), {"h": id_number_hash(imp["key"], outside), "id": other}
        )
    try:
        for taken in (outside, rows[0]["id_number"]):
            spouse = [dict(rows[1], member_id=str(ids[1]), id_number=taken)]
            for sm in (imp["sm"], xide):
                before = await digest(imp["eng"])
                result = await imp["run"](write_csv(tmp_path / "b.csv", spouse), sessionmaker=sm)
                assert not result.written and await digest(imp["eng"]) == before
                assert [(p.row, p.reason) for p in result.problems] == [
                    (2, "idNumber: this ID number is already recorded for another member; nothing was written")
                ]
        mine = [
            dict(rows[0], member_id=str(ids[0])),
            dict(rows[1], member_id=str(ids[1]), id_number=ident("513432", "19820315", 659)),
        ]
        result = await imp["run"](write_csv(tmp_path / "c.csv", mine), sessionmaker=xide)
        assert (result.written, result.problems, result.members.updated, result.members.unchanged) == (True, [], 1, 1)
        again = await imp["run"](write_csv(tmp_path / "c.csv", mine), sessionmaker=xide)
        assert (again.problems, again.members.updated, again.members.unchanged) == ([], 0, 2)
    finally:
        async with imp["eng"].begin() as c:
            await c.execute(text("UPDATE member SET id_number_hash = :h WHERE id = :id"), {"h": old, "id": other})


async def test_a_csv_column_named_geometry_is_an_unknown_column(imp, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """Only a GeoJSON/GeoPackage file's geometry is its dwelling: a CSV's 'geometry' column is refused as unknown, by one
    process or several (it was taken for a feature's geometry: a str's .get failed, the parts' rows were not converted)."""
    monkeypatch.setattr(parallel_read, "PARALLEL_MIN_BYTES", 0)
    rows = _many("T-MPG", 100, "513429")
    path = tmp_path / "geometry.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow([h for h in HEADERS if "dwelling" not in h] + ["geometry"])
        w.writerows([[r[k] for k in KEYS if "dwelling" not in k] + ["POINT (102.4 28.3)"] for r in rows])
    (message,) = await refusals(imp, path, (1, 2))
    assert "unknown column 'geometry'" in message


def _die(rows: Any) -> Any:
    """A reading process's job that ends its process at once (as the kernel's OOM killer would)."""
    import os

    os._exit(3)


async def test_a_reading_process_that_dies_fails_the_import_without_hanging(tmp_path):  # type: ignore[no-untyped-def]
    """A reading process ended without its result (killed): the import fails (RuntimeError), the others are stopped."""
    import asyncio
    import multiprocessing

    from resolvers.parallel_read import records_in_parts

    path = _write_roster(tmp_path / "die.csv", _many("T-MPK", 60, "513430"))
    table = open_table(path, LIMITS)
    table.close()
    parts = split_csv(path, "utf-8-sig", 3, LIMITS)
    assert len(parts) == 3

    async def read() -> list[Any]:
        return [r async for r in records_in_parts(path, "utf-8-sig", parts, LIMITS, table.header, _die, print)]

    with pytest.raises(RuntimeError, match=r"reading process \d ended without its result \(exit 3\)"):
        await asyncio.wait_for(read(), 30)
    assert multiprocessing.active_children() == []


_KILLED_IMPORTER = """
import asyncio, functools, multiprocessing, os, signal, sys
import datetime as dt
from resolvers.household_import import _stage_part, map_header
from resolvers.parallel_read import records_in_parts
from resolvers.tabular import FileLimits, open_table, split_csv

async def main() -> None:
    limits = FileLimits(10**9, 10**7, 1000, 10**9)
    t = open_table(sys.argv[1], limits)
    t.close()
    parts = split_csv(sys.argv[1], t.encoding, 2, limits)
    job = functools.partial(_stage_part, t.header, map_header(t.header), dt.date.today(), b"k" * 32, 10000)
    async for _ in records_in_parts(sys.argv[1], t.encoding, parts, limits, t.header, job, lambda s: None):
        print(" ".join(str(p.pid) for p in multiprocessing.active_children()), flush=True)
        await asyncio.sleep(1)  # the readers fill the queue and wait
        os.kill(os.getpid(), signal.SIGKILL)

if __name__ == "__main__":
    asyncio.run(main())
"""


def test_reading_processes_end_with_a_killed_importer(tmp_path):  # type: ignore[no-untyped-def]
    """The importing process killed (OOM, SIGKILL) while its readers wait on a full queue: they end too, no orphans."""
    path = _write_roster(tmp_path / "orphans.csv", _many("T-MPO", 3000, "513431"))
    script = tmp_path / "importer.py"
    script.write_text(_KILLED_IMPORTER, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script), str(path)], capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent.parent
    )
    pids = [int(p) for p in done.stdout.split()]
    assert done.returncode == -9 and len(pids) == 2, done.stderr

    def running(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
        except (FileNotFoundError, IndexError):
            return False

    for _ in range(100):
        if not any(map(running, pids)):
            break
        time.sleep(0.1)
    assert not any(map(running, pids))
