"""Exports (issue #13): every kind in every format written to a real file, re-read by an independent reader (csv module,
openpyxl, GDAL through pyogrio, json) and compared with raw SQL over the tables; scope per role; spreadsheet safety; the
roster's round trip through ``anju import households``; the HTTP download.

Runs on its own writable copy of the demo seed. The households added here are GENERATED TEST DATA (codes X-… and an
18-digit code, made-up names that look like formulas).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pyogrio.raw
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import async_sessionmaker
from starlette.testclient import TestClient

import models as m
from anju import db
from anju.app import create_app
from anju.auth import issue_token, keys
from anju.exports import export_to_file, prepare, suppression_k
from anju.seed import load_demo
from resolvers.access import Role, Viewer, add_user, viewer_by_name
from resolvers.errors import InvalidInput, NotFound, OutOfScope
from resolvers.exports import KINDS
from resolvers.household_import import COLUMNS, import_households
from resolvers.tabular import FileLimits
from tests.digest import digest

NAME = "anju_test_exports"
TODAY = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
ADMIN = Viewer(None, "test-admin", Role.ADMIN)
CODE18 = "513431100001234567"  # an 18-digit household code (Excel would round it as a number), in Zhaojue county
FORMULAS = ["=1+1", "+8613812345678", "@x", "-2", "\tTab", '=HYPERLINK("http://x")']
LIMITS = FileLimits(max_file_bytes=50_000_000, max_rows=100_000, max_cell_chars=1000, max_xlsx_unzipped_bytes=200_000_000)
YEAR = 2024


@pytest.fixture(scope="module")
async def ex(settings):  # type: ignore[no-untyped-def]
    """The demo seed, plus one Zhaojue household (18-digit code) whose members are named like formulas."""
    await db.ensure_database(settings, NAME, drop_first=True)
    await db.migrate(settings, NAME)
    eng = db.create_engine(settings, NAME)
    await load_demo(eng)
    village = "513431100001"
    async with eng.begin() as c:
        await c.execute(
            text(
                "INSERT INTO admin_area (code, name, level, parent_code) VALUES "
                "('513431100', '测试镇 [generated]', 'township', '513431'), (:v, '测试村 [generated]', 'village', '513431100')"
            ),
            {"v": village},
        )
        hid = await c.scalar(
            text(
                "INSERT INTO household (code, admin_code, poverty_status, dwelling) "
                "VALUES (:code, :v, 'poverty_alleviated', ST_SetSRID(ST_MakePoint(102.7, 28.0), 4326)) RETURNING id"
            ),
            {"code": CODE18, "v": village},
        )
        for i, name in enumerate(FORMULAS):
            await c.execute(
                text(
                    "INSERT INTO member (household_id, name, gender, birth_year, relation, labor_force, phone) "
                    "VALUES (:h, :n, 'male', :y, :r, true, :p)"
                ),
                {"h": hid, "n": name, "y": 1980 + i, "r": "head" if i == 0 else "child", "p": "+8613812345678"},
            )
    sm = async_sessionmaker(eng, expire_on_commit=False)
    async with sm() as s:
        pid = await s.scalar(text("SELECT id FROM cooperation_partner ORDER BY id LIMIT 1"))
    users = {
        "x-admin": (Role.ADMIN, (), None),
        "x-planner": (Role.PLANNER, (), None),
        "x-officer": (Role.COUNTY_OFFICER, ("513432",), None),
        "x-officer-zhaojue": (Role.COUNTY_OFFICER, ("513431",), None),
        "x-partner": (Role.PARTNER, (), pid),
    }
    for name, (role, areas, partner) in users.items():
        await add_user(sm, name, role, areas, partner)
    local = settings.model_copy(
        update={"local_db": settings.local_db.model_copy(update={"database": NAME})}
        if settings.uses_local_db
        else {"database_url": settings.sqlalchemy_url(NAME)}
    )
    viewers = {n: await viewer_by_name(sm, n) for n in users}
    tokens = {n: {"Authorization": f"Bearer {issue_token(local, n)}"} for n in users}
    yield {"eng": eng, "sm": sm, "settings": local, "viewers": viewers, "tokens": tokens, "village": village}
    await eng.dispose()


async def export(ex: Any, kind: str, fmt: str, path: Path, viewer: Viewer = ADMIN, **params: str) -> Path:
    """Export through the entry points' own checks (``prepare``) and writer, as the CLI does."""
    k, a = prepare(kind, fmt, params, viewer, ex["settings"])
    await export_to_file(ex["sm"], k, fmt, a, viewer, path, k=suppression_k(viewer, ex["settings"]), params=params)
    return path


def read(path: Path) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of an export, by a reader that is not Anju's: csv, openpyxl, GDAL (pyogrio), json."""
    fmt = path.suffix[1:]
    if fmt == "csv":
        with path.open(encoding="utf-8-sig", newline="") as f:
            rows = list(csv.reader(f))
        return rows[0], rows[1:]
    if fmt == "xlsx":
        wb = openpyxl.load_workbook(path, read_only=True)
        ws = wb.worksheets[0]
        rows = [list(r) for r in ws.iter_rows(values_only=True)]
        wb.close()
        return [str(h) for h in rows[0]], rows[1:]
    if fmt in ("gpkg", "fgb"):
        meta, _, geometry, fields = pyogrio.raw.read(path)
        header = list(meta["fields"])
        return header, [[col[i] for col in fields] for i in range(len(geometry))]
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["type"] == "FeatureCollection"
    feats = doc["features"]
    header = list(feats[0]["properties"]) if feats else []
    return header, [list(f["properties"].values()) for f in feats]


def norm(v: Any) -> Any:
    """A cell as comparable text: numbers without trailing zeros, dates ISO, blanks None."""
    if v is None or v == "":
        return None
    if isinstance(v, dt.datetime):
        v = v.date()
    if isinstance(v, dt.date):
        return v.isoformat()
    if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T00:00:00(\.000)?", str(v)):
        return str(v)[:10]  # FlatGeobuf has no date type: GDAL writes a date as midnight (numpy datetime64)
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int | float | Decimal) or (isinstance(v, str) and _numeric(v)):
        return format(round(Decimal(str(v)), 6).normalize(), "f")
    return str(v)


def neutral(v: Any) -> Any:
    """OWASP's rule for CSV, as the test expects it: a ' before text starting with = + - @, tab or CR."""
    return "'" + v if isinstance(v, str) and v[:1] in "=+-@\t\r" else v


def _numeric(s: str) -> bool:
    try:
        Decimal(s)
    except ArithmeticError:
        return False
    return s.strip() == s and not s.startswith("+")


def project(header: list[str], rows: list[list[Any]], keys: list[str]) -> list[tuple[Any, ...]]:
    """The columns ``keys`` (by their English part of the header) of every row, normalised."""
    index = [next(i for i, h in enumerate(header) if h.split(" ")[-1] == k) for k in keys]
    return [tuple(norm(r[i]) for i in index) for r in rows]


async def raw(ex: Any, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    async with ex["eng"].connect() as c:
        return [tuple(norm(v) for v in r) for r in (await c.execute(text(sql), params)).all()]


PRESENT = "coalesce(mb.joined_on, date '-infinity') <= :d AND :d < coalesce(mb.left_on, date 'infinity')"
ACTIVE = "e.start_on <= :d AND (e.end_on IS NULL OR e.end_on >= :d)"
# Raw SQL over the tables for each kind: the key columns the test compares, in the export's order.
RAW: dict[str, tuple[dict[str, str], list[str], str]] = {
    "households": (
        {},
        ["household_code", "name", "birth_year", "member_id", "dwelling_lon"],
        "SELECT h.code, mb.name, mb.birth_year, mb.id, ST_X(h.dwelling) FROM member mb "
        "JOIN household h ON h.id = mb.household_id WHERE mb.left_on IS NULL ORDER BY h.id, mb.id",
    ),
    "zero_employment_households": (
        {"asOf": "TODAY"},
        ["household_code", "members", "labor_force"],
        f"SELECT h.code, (SELECT count(*) FROM member mb WHERE mb.household_id = h.id AND {PRESENT}), "
        f"(SELECT count(*) FROM member mb WHERE mb.household_id = h.id AND mb.labor_force AND {PRESENT}) FROM household h "
        f"WHERE EXISTS (SELECT 1 FROM member mb WHERE mb.household_id = h.id AND mb.labor_force AND {PRESENT}) "
        f"AND NOT EXISTS (SELECT 1 FROM employment e JOIN member mb ON mb.id = e.member_id WHERE mb.household_id = h.id "
        f"AND {ACTIVE} AND {PRESENT}) ORDER BY h.id",
    ),
    "households_at_risk": (
        {"year": str(YEAR)},
        ["household_code", "per_capita_income", "previous_per_capita_income"],
        "SELECT h.code, round(i.net_income / i.household_size, 2), round(p.net_income / p.household_size, 2) "
        "FROM household h JOIN household_income i ON i.household_id = h.id AND i.year = :y "
        "LEFT JOIN household_income p ON p.household_id = h.id AND p.year = :y - 1 "
        "WHERE i.household_size > 0 AND (i.net_income / i.household_size < 10000 "
        "OR i.net_income / i.household_size < p.net_income / p.household_size) ORDER BY h.id",
    ),
    "employments": (
        {},
        ["employment_id", "household_code", "member_id", "start_on", "monthly_wage"],
        "SELECT e.id, h.code, e.member_id, e.start_on, e.monthly_wage FROM employment e JOIN member mb ON mb.id = e.member_id "
        "JOIN household h ON h.id = mb.household_id ORDER BY e.id",
    ),
    "income_linkages": (
        {},
        ["household_code", "year", "amount", "facility_id"],
        "SELECT h.code, l.year, l.amount, l.facility_id FROM income_linkage l JOIN household h ON h.id = l.household_id "
        "ORDER BY l.id",
    ),
    "facilities": (
        {},
        ["id", "name", "lon", "lat"],
        "SELECT id, name, ST_X(location), ST_Y(location) FROM facility ORDER BY id",
    ),
    "sites": (
        {},
        ["id", "name", "households"],
        "SELECT s.id, s.name, (SELECT count(*) FROM household h WHERE h.site_id = s.id) FROM relocation_site s ORDER BY s.id",
    ),
    "coverage": (
        {"asOf": "TODAY"},
        ["code", "households", "zero_employment_households"],
        "SELECT a.code, (SELECT count(*) FROM household h WHERE h.admin_code LIKE a.code || '%'), "
        f"(SELECT count(*) FROM household h WHERE h.admin_code LIKE a.code || '%' "
        f"AND EXISTS (SELECT 1 FROM member mb WHERE mb.household_id = h.id AND mb.labor_force AND {PRESENT}) "
        f"AND NOT EXISTS (SELECT 1 FROM employment e JOIN member mb ON mb.id = e.member_id WHERE mb.household_id = h.id "
        f"AND {ACTIVE} AND {PRESENT})) FROM admin_area a WHERE a.level = 'county' ORDER BY a.code",
    ),
}
CASES = [
    (k, f) for k in KINDS for f in ("csv", "xlsx", "gpkg", "fgb", "geojson") if f in ("csv", "xlsx") or KINDS[k].geometry_type
]


def test_every_kind_has_raw_sql() -> None:
    assert set(RAW) == set(KINDS)


@pytest.mark.parametrize(("kind", "fmt"), CASES)
async def test_export_equals_raw_sql(ex, tmp_path, kind, fmt):  # type: ignore[no-untyped-def]
    """Each kind × format: the file's headers are the kind's (Chinese, then English) and its rows equal raw SQL."""
    params, keys, sql = RAW[kind]
    params = {k: TODAY.isoformat() if v == "TODAY" else v for k, v in params.items()}
    header, rows = read(await export(ex, kind, fmt, tmp_path / f"{kind}.{fmt}", **params))
    assert header == [f.header for f in KINDS[kind].fields]
    expected = await raw(ex, sql, d=TODAY, y=YEAR)
    assert expected, "the demo data must give rows to compare"
    if fmt == "csv":
        expected = [tuple(neutral(v) for v in r) for r in expected]
    assert project(header, rows, keys) == expected


async def test_roster_headers_are_the_import_templates(ex, tmp_path):  # type: ignore[no-untyped-def]
    header, _ = read(await export(ex, "households", "csv", tmp_path / "r.csv"))
    assert header == [c.header for c in COLUMNS]
    assert header[0] == "户编号 household_code"


async def test_formula_looking_text_is_never_a_formula(ex, tmp_path):  # type: ignore[no-untyped-def]
    """openpyxl reads the XLSX cells as the exact strings (quote-prefixed, not formulas); the CSV neutralises with '."""
    path = await export(ex, "households", "xlsx", tmp_path / "f.xlsx", areaCode="513431")
    wb = openpyxl.load_workbook(path)  # not read-only: openpyxl would report a formula as data_type "f"
    ws = wb.worksheets[0]
    head = [c.value for c in ws[1]]
    name_col, code_col, phone_col = (head.index(h) for h in ("姓名 name", "户编号 household_code", "联系电话 phone"))
    rows = list(ws.iter_rows(min_row=2))
    assert [r[name_col].value for r in rows] == FORMULAS
    for r in rows:
        assert r[name_col].data_type == "s" and r[phone_col].data_type == "s"
        assert r[code_col].value == CODE18 and r[code_col].data_type == "s"  # 18 digits as text, not 5.13431E+17
        assert r[phone_col].value == "+8613812345678"
    assert rows[0][name_col].quotePrefix  # Excel shows it as text, never evaluates it
    with (await export(ex, "households", "csv", tmp_path / "f.csv", areaCode="513431")).open(encoding="utf-8-sig") as f:
        got = list(csv.DictReader(f))
    assert [r["姓名 name"] for r in got] == ["'" + n for n in FORMULAS]
    assert {r["联系电话 phone"] for r in got} == {"'+8613812345678"}
    assert {r["户编号 household_code"] for r in got} == {CODE18}


# The template's words, written out here (not read from the import's parsers): what a county officer reads in the file.
WORDS = {
    "poverty_alleviated": "脱贫户", "non_poor": "一般户", "male": "男", "female": "女", "head": "户主", "spouse": "配偶",
    "child": "子女", "child_in_law": "儿媳", "grandchild": "孙子女", "parent": "父母", "sibling": "兄弟姐妹", "other": "其他",
    "registered": "登记", "birth": "出生", "marriage": "婚入", "moving_in": "迁入",
}  # fmt: skip
ROSTER_SQL = (
    "SELECT h.code, h.admin_code, h.poverty_status::text, h.site_id, h.relocated_on, h.origin_admin_code, ST_X(h.dwelling), "
    "ST_Y(h.dwelling), {name}, mb.gender::text, mb.birth_year, mb.relation::text, mb.labor_force, NULL, {phone}, "
    "array_to_string(mb.skills, '、'), mb.joined_on, mb.join_reason::text, mb.id "
    "FROM member mb JOIN household h ON h.id = mb.household_id WHERE mb.left_on IS NULL ORDER BY h.id, mb.id"
)


@pytest.mark.parametrize("viewer", ["x-admin", "x-planner"])
async def test_roster_csv_every_column_equals_raw_sql(ex, tmp_path, viewer):  # type: ignore[no-untyped-def]
    """Every cell of the roster CSV: raw SQL over the tables, enum values as the template's words, 是/否, masked names and
    phones for planners, and every text cell neutralised (a ' before = + - @, tab, CR) — the formula-named members too."""
    header, rows = read(await export(ex, "households", "csv", tmp_path / "all.csv", ex["viewers"][viewer]))
    mask = viewer == "x-planner"
    sql = ROSTER_SQL.format(
        name="anju_mask_name(mb.name)" if mask else "mb.name", phone="anju_mask_phone(mb.phone)" if mask else "mb.phone"
    )
    yes_no = {"True": "是", "False": "否"}
    expected = [
        tuple(yes_no.get(v, v) if i == 12 else neutral(WORDS.get(v, v)) for i, v in enumerate(r)) for r in await raw(ex, sql)
    ]
    assert len(expected) > 1000 and any(r[8] == "'=1+1" for r in expected) == (not mask)
    assert [tuple(norm(v) for v in r) for r in rows] == expected


async def test_a_vocabulary_with_a_formula_looking_word_is_neutralised(ex):  # type: ignore[no-untyped-def]
    """Enum words skip the neutralising CASE only because none of them starts a formula; one that did would keep it."""
    from resolvers.exports import spreadsheet_safe, words
    from resolvers.household_import import _labels

    odd = _labels(m.Gender, {"=男": "MALE", "女": "FEMALE"})
    async with ex["sm"]() as s:
        got = await s.scalar(
            select(spreadsheet_safe(words(m.Member.gender, odd))).where(m.Member.gender == m.Gender.MALE).limit(1)
        )
    assert got == "'=男"


async def test_gis_formats_keep_chinese_field_names_and_geometry(ex, tmp_path):  # type: ignore[no-untyped-def]
    for fmt in ("gpkg", "fgb"):
        meta, _, geometry, _ = pyogrio.raw.read(await export(ex, "coverage", fmt, tmp_path / f"c.{fmt}"))
        assert "户数 households" in list(meta["fields"]) and "区划代码 code" in list(meta["fields"])
        assert meta["crs"] == "EPSG:4326"
        assert any(g is not None for g in geometry)


async def test_county_officer_exports_only_its_areas(ex, tmp_path):  # type: ignore[no-untyped-def]
    for user, county in (("x-officer", "513432"), ("x-officer-zhaojue", "513431")):
        header, rows = read(await export(ex, "households", "csv", tmp_path / f"{user}.csv", ex["viewers"][user]))
        expected = await raw(
            ex,
            "SELECT h.code, mb.id FROM member mb JOIN household h ON h.id = mb.household_id "
            "WHERE mb.left_on IS NULL AND h.admin_code LIKE :c ORDER BY h.id, mb.id",
            c=county + "%",
        )
        assert expected and project(header, rows, ["household_code", "member_id"]) == expected


async def test_planner_gets_masked_names(ex, tmp_path):  # type: ignore[no-untyped-def]
    header, rows = read(await export(ex, "households", "csv", tmp_path / "p.csv", ex["viewers"]["x-planner"], areaCode="513431"))
    names = [r[header.index("姓名 name")] for r in rows]
    masked = await raw(ex, "SELECT anju_mask_name(name) FROM member WHERE household_id = "
                       "(SELECT id FROM household WHERE code = :c) ORDER BY id", c=CODE18)  # fmt: skip
    assert names == [neutral(m[0]) for m in masked] and "'=1+1" not in names


async def test_partner_gets_aggregates_only(ex, tmp_path):  # type: ignore[no-untyped-def]
    partner = ex["viewers"]["x-partner"]
    for kind in ("households", "zero_employment_households", "households_at_risk", "employments", "income_linkages"):
        with pytest.raises(OutOfScope):
            await export(
                ex, kind, "csv", tmp_path / "no.csv", partner, **({"year": "2024"} if kind == "households_at_risk" else {})
            )
    with pytest.raises(OutOfScope):
        await export(ex, "coverage", "csv", tmp_path / "no.csv", partner, level="TOWNSHIP")
    header, rows = read(await export(ex, "coverage", "csv", tmp_path / "cov.csv", partner))
    assert [r[0] for r in rows] == list(partner.paired_counties)  # its paired counties, no other
    counts = await raw(ex, "SELECT count(*) FROM household WHERE admin_code LIKE :c", c=partner.paired_counties[0] + "%")
    assert norm(rows[0][header.index("户数 households")]) == counts[0][0]
    # a threshold above every cell suppresses every count, as GraphQL does for partners
    k, a = prepare("coverage", "csv", {}, partner, ex["settings"])
    path = tmp_path / "cov-k.csv"
    await export_to_file(ex["sm"], k, "csv", a, partner, path, k=10**9, params={})
    header, rows = read(path)
    assert rows[0][header.index("户数 households")] == "" and rows[0][header.index("已抑制 suppressed")] == "是"


async def test_bad_filters_name_the_parameter(ex, tmp_path):  # type: ignore[no-untyped-def]
    for params, name in (
        ({"asOf": "yesterday"}, "asOf"),
        ({"areaCode": "51x"}, "areaCode"),
        ({"siteId": "-1"}, "siteId"),
        ({"zeroEmployment": "maybe"}, "zeroEmployment"),
        ({"bbox": "1,2,3"}, "bbox"),
        ({"kinds": "CASTLE"}, "kinds"),
        ({"color": "red"}, "color"),
    ):
        kind = "facilities" if name == "kinds" else "households"
        with pytest.raises(InvalidInput) as err:
            await export(ex, kind, "csv", tmp_path / "bad.csv", **params)
        assert err.value.message.startswith(name + ":"), err.value.message
    with pytest.raises(InvalidInput, match="^year: required"):
        await export(ex, "households_at_risk", "csv", tmp_path / "bad.csv")
    with pytest.raises(InvalidInput, match="^format: income_linkages have no geometry"):
        await export(ex, "income_linkages", "gpkg", tmp_path / "bad.gpkg")
    with pytest.raises(NotFound):
        await export(ex, "ledgers", "csv", tmp_path / "bad.csv")


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
async def test_exported_roster_imports_back_writing_nothing(ex, tmp_path, settings, fmt):  # type: ignore[no-untyped-def]
    path = await export(ex, "households", fmt, tmp_path / f"roster.{fmt}", areaCode="513432")
    before = await digest(ex["eng"])
    result = await import_households(
        ex["sm"], path, limits=LIMITS, today=TODAY, id_number_key=keys(settings).id_number_key,
    )  # fmt: skip
    assert result.problems == []
    assert result.rows > 7000
    assert (result.households.inserted, result.households.updated, result.members.inserted, result.members.updated) == (0,) * 4
    assert await digest(ex["eng"]) == before


def _env(ex: Any) -> dict[str, str]:
    s = ex["settings"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANJU_") and k != "DATABASE_URL"}
    if s.uses_local_db:
        env |= {"ANJU_LOCAL_DB__PORT": str(s.local_db.port), "ANJU_LOCAL_DB__DATABASE": NAME}
    else:
        env |= {"DATABASE_URL": s.sqlalchemy_url(NAME)}
    return env


async def test_cli_export_then_cli_import_writes_nothing(ex, tmp_path):  # type: ignore[no-untyped-def]
    """``anju export households`` then ``anju import households`` of the file: nothing written (digest of every table)."""
    out = tmp_path / "cli.csv"
    done = subprocess.run(
        [sys.executable, "-m", "anju.cli", "export", "households", "--area-code", "513432", "--output", str(out)],
        env=_env(ex), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    before = await digest(ex["eng"])
    done = subprocess.run(
        [sys.executable, "-m", "anju.cli", "import", "households", str(out)],
        env=_env(ex), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "households inserted 0, updated 0" in done.stdout and "members inserted 0, updated 0" in done.stdout
    assert await digest(ex["eng"]) == before
    bad = subprocess.run(
        [sys.executable, "-m", "anju.cli", "export", "households", "--as-of", "soon", "--output", str(tmp_path / "x.csv")],
        env=_env(ex), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 1 and "asOf: 'soon' is not a date" in bad.stderr and "Traceback" not in bad.stderr


def test_http_download_is_streamed(ex):  # type: ignore[no-untyped-def]
    with TestClient(create_app(ex["settings"])) as c:
        with c.stream("GET", "/exports/households.csv?areaCode=513432", headers=ex["tokens"]["x-admin"]) as r:
            assert r.status_code == 200
            assert r.headers["content-type"] == "text/csv; charset=utf-8"
            assert r.headers["content-disposition"] == f'attachment; filename="households-{TODAY.isoformat()}.csv"'
            assert "content-length" not in r.headers  # streamed (chunked), not buffered
            chunks = list(r.iter_raw())
        assert len(chunks) > 1
        body = b"".join(chunks)
        assert body.startswith("\ufeff户编号 household_code".encode())
        assert body.count(b"\n") == 1 + sum(1 for _ in body.splitlines()[1:])
        r = c.get("/exports/coverage.xlsx", headers=ex["tokens"]["x-partner"])
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
        r = c.get("/exports/sites.geojson", headers=ex["tokens"]["x-admin"])
        assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
        assert r.json()["features"][0]["properties"]["名称 name"]


@pytest.mark.parametrize(
    ("path", "user", "status", "code", "names"),
    [
        ("/exports/households.csv", None, 401, "UNAUTHENTICATED", ""),
        ("/exports/ledgers.csv", "x-admin", 404, "NOT_FOUND", "kind"),
        ("/exports/households.docx", "x-admin", 404, "NOT_FOUND", "format"),
        ("/exports/households.csv?asOf=2024-13-01", "x-admin", 400, "BAD_USER_INPUT", "asOf"),
        ("/exports/households.csv?year=2024", "x-admin", 400, "BAD_USER_INPUT", "year"),
        ("/exports/households.csv", "x-partner", 403, "FORBIDDEN", "kind"),
        ("/exports/coverage.csv?level=VILLAGE", "x-partner", 403, "FORBIDDEN", "level"),
    ],
)
def test_http_errors(ex, path, user, status, code, names):  # type: ignore[no-untyped-def]
    with TestClient(create_app(ex["settings"])) as c:
        r = c.get(path, headers=ex["tokens"][user] if user else {})
    assert r.status_code == status, r.text
    err = r.json()["errors"][0]
    assert err["extensions"]["code"] == code
    assert err["message"].startswith(names)
