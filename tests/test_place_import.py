"""``anju import sites|facilities`` (and households from a GeoPackage): real files written here — GB18030 CSV with a name
outside GBK, XLSX by xlsxwriter, GeoJSON and GeoPackage by pyogrio — checked against a writable copy of the demo seed.
Expected values come from the cells the tests wrote, read back with raw SQL; "nothing written" is tests/digest.py's
digest of every table. Places and households here are GENERATED TEST DATA (names 测试…, codes T-…)."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any

import coordTransform as ct
import numpy as np
import pyogrio
import pytest
import shapely
import xlsxwriter
from shapely.geometry import Point, Polygon
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker
from starlette.testclient import TestClient

from anju import db
from anju.app import create_app
from anju.auth import issue_token, keys
from anju.seed import load_demo
from resolvers.access import Role, Viewer, add_user, scoped_sessionmaker
from resolvers.coords import CoordSys
from resolvers.household_import import COLUMNS, import_households
from resolvers.place_import import FACILITY_COLUMNS, SITE_COLUMNS, import_places
from resolvers.tabular import FileLimits
from tests.digest import digest
from tests.test_household_import import TODAY, family

NAME = "anju_test_place_import"
LIMITS = FileLimits(max_file_bytes=10_000_000, max_rows=10_000, max_cell_chars=1000, max_xlsx_unzipped_bytes=5_000_000)
XIDE, ZHAOJUE = (102.4108, 28.3100), (102.8603, 28.0380)  # inside Xide (513432) and Zhaojue (513431)
SITE_HEADERS = {c.key: c.header for c in SITE_COLUMNS}
FACILITY_HEADERS = {c.key: c.header for c in FACILITY_COLUMNS}


@pytest.fixture(scope="module")
async def env(settings):  # type: ignore[no-untyped-def]
    await db.ensure_database(settings, NAME, drop_first=True)
    await db.migrate(settings, NAME)
    eng = db.create_engine(settings, NAME)
    await load_demo(eng)
    sm = async_sessionmaker(eng, expire_on_commit=False)
    for name, role, areas in (("p-admin", Role.ADMIN, ()), ("p-officer", Role.COUNTY_OFFICER, ("513432",))):
        await add_user(sm, name, role, areas, None)
    local = settings.model_copy(
        update={"local_db": settings.local_db.model_copy(update={"database": NAME})}
        if settings.uses_local_db
        else {"database_url": settings.sqlalchemy_url(NAME)}
    )

    async def run(path: Path, kind: str, sessionmaker: Any = None, **kw: Any) -> Any:
        return await import_places(sessionmaker or sm, path, kind, limits=LIMITS, **kw)

    yield {"eng": eng, "sm": sm, "run": run, "settings": local, "key": keys(settings).id_number_key}
    await eng.dispose()


async def rows_of(eng: Any, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    async with eng.connect() as c:
        return [tuple(r) for r in (await c.execute(text(sql), params)).all()]


def site(name: str, lon: float, lat: float, **over: str) -> dict[str, str]:
    row = {
        "name": name,
        "kind": "城镇集中安置",
        "admin_code": "513432",
        "lon": f"{lon}",
        "lat": f"{lat}",
        "planned_households": "300",
        "planned_population": "1200",
        "opened_on": "2019-05-01",
        "origin_area_codes": "513432102201",
    }
    return row | over


def write_csv(path: Path, rows: list[dict[str, str]], headers: dict[str, str], encoding: str = "utf-8") -> Path:
    keys = list(rows[0])
    with path.open("w", encoding=encoding, newline="") as f:
        w = csv.writer(f)
        w.writerow([headers[k] for k in keys])
        w.writerows([[r[k] for k in keys] for r in rows])
    return path


SITES_OF = (
    "SELECT s.name, s.kind::text, s.admin_code, round(ST_X(s.location)::numeric, 6), round(ST_Y(s.location)::numeric, 6), "
    "s.planned_households, s.planned_population, s.opened_on, "
    "ARRAY(SELECT o.origin_admin_code::text FROM site_origin o WHERE o.site_id = s.id ORDER BY 1) "
    "FROM relocation_site s WHERE s.name LIKE :p ORDER BY s.name"
)


def expected_sites(rows: list[dict[str, str]]) -> list[tuple[Any, ...]]:
    kinds = {"城镇集中安置": "urban", "集镇安置": "town"}
    return sorted(
        (
            r["name"], kinds[r["kind"]], r["admin_code"], round(float(r["lon"]), 6), round(float(r["lat"]), 6),
            int(r["planned_households"]), int(r["planned_population"]), dt.date.fromisoformat(r["opened_on"]),
            sorted(r["origin_area_codes"].split("、")),
        )
        for r in rows
    )  # fmt: skip


def _decimals(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [tuple(float(v) if hasattr(v, "as_tuple") else v for v in r) for r in rows]


# --------------------------------------------------------------------------- CSV, GB18030, idempotent, audited


async def test_gb18030_sites_twice_then_changed(env, tmp_path):  # type: ignore[no-untyped-def]
    # 𠀀 (U+20000) lies outside GBK: four bytes in GB18030, so the file is not valid UTF-8 either
    rows = [site("测试𠀀安置点", *XIDE), site("测试新村安置点", XIDE[0] + 0.002, XIDE[1], kind="集镇安置")]
    path = write_csv(tmp_path / "sites.csv", rows, SITE_HEADERS, "gb18030")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")
    result = await env["run"](path, "sites")
    assert (result.encoding, result.written, result.problems) == ("gb18030", True, [])
    assert (result.records.inserted, result.records.updated, result.records.unchanged) == (2, 0, 0)
    assert _decimals(await rows_of(env["eng"], SITES_OF, p="测试%安置点")) == expected_sites(rows)
    assert await rows_of(env["eng"], "SELECT located_code IS NOT NULL FROM relocation_site WHERE name LIKE '测试%'") == [
        (True,),
        (True,),
    ]
    audit = await rows_of(
        env["eng"], "SELECT action, before IS NULL, after->>'name' FROM audit_log WHERE entity = 'relocation_site' ORDER BY id"
    )
    assert audit[-2:] == [("importRelocationSites", True, "测试𠀀安置点"), ("importRelocationSites", True, "测试新村安置点")]

    before = await digest(env["eng"])
    again = await env["run"](path, "sites")
    assert (again.records.inserted, again.records.updated, again.records.unchanged) == (0, 0, 2)
    assert await digest(env["eng"]) == before  # the same file twice writes nothing

    rows[1]["planned_households"] = "450"
    write_csv(path, rows, SITE_HEADERS, "gb18030")
    changed = await env["run"](path, "sites")
    assert (changed.records.inserted, changed.records.updated, changed.records.unchanged) == (0, 1, 1)
    assert _decimals(await rows_of(env["eng"], SITES_OF, p="测试%安置点")) == expected_sites(rows)
    last = await rows_of(
        env["eng"],
        "SELECT a.action, a.before->>'planned_households', a.after->>'planned_households', s.version FROM audit_log a "
        "JOIN relocation_site s ON s.id::text = a.entity_id WHERE a.entity = 'relocation_site' ORDER BY a.id DESC LIMIT 1",
    )
    assert last == [("importRelocationSites", "300", "450", 2)]


async def test_one_bad_row_writes_nothing_and_names_it(env, tmp_path):  # type: ignore[no-untyped-def]
    rows = [
        site("测试好安置点", *XIDE),
        site("测试反安置点", XIDE[1], XIDE[0]),  # row 3: lat/lon swapped
        site("测试外安置点", 2.35, 48.85),  # row 4: Paris
        site("测试错安置点", *XIDE, planned_households="-5", admin_code="513432999"),  # row 5: two problems
    ]
    path = write_csv(tmp_path / "bad.csv", rows, SITE_HEADERS)
    before = await digest(env["eng"])
    result = await env["run"](path, "sites")
    assert result.written is False
    assert await digest(env["eng"]) == before
    got = [(p.row, p.column, p.reason.split(":")[0]) for p in result.problems]
    assert got == [
        (3, "经度 lon", "location"),
        (4, "经度 lon", "location"),
        (5, "规划安置户数 planned_households", "plannedHouseholds"),
    ]
    assert "swapped" in result.problems[0].reason and "outside China" in result.problems[1].reason
    # valid-only: the good row is written, the others reported; the unknown area is found by the SQL pass then
    partial = await env["run"](path, "sites", valid_only=True)
    assert (partial.written, partial.records.inserted, partial.records.rejected) == (True, 1, 3)
    assert await rows_of(env["eng"], "SELECT count(*) FROM relocation_site WHERE name LIKE '测试%' AND name <> '测试好安置点' "
                         "AND name NOT LIKE '测试%新村%' AND name NOT LIKE '测试𠀀%'") == [(0,)]  # fmt: skip


async def test_unknown_area_and_far_location(env, tmp_path):  # type: ignore[no-untyped-def]
    rows = [site("测试无区安置点", *XIDE, admin_code="513432999"), site("测试远安置点", *ZHAOJUE)]
    path = write_csv(tmp_path / "areas.csv", rows, SITE_HEADERS)
    before = await digest(env["eng"])
    result = await env["run"](path, "sites")
    assert await digest(env["eng"]) == before
    assert [(p.row, p.column) for p in result.problems] == [(2, "行政区划代码 admin_code"), (3, "经度 lon")]
    assert result.problems[0].reason == "adminCode: no admin area has code '513432999'"
    assert result.problems[1].reason.startswith("location: ")


async def test_officer_outside_scope_reported_not_written(env, tmp_path):  # type: ignore[no-untyped-def]
    rows = [
        site("测试县内安置点", XIDE[0] + 0.004, XIDE[1]),
        site("测试县外安置点", *ZHAOJUE, admin_code="513431", origin_area_codes=""),
    ]
    path = write_csv(tmp_path / "scope.csv", rows, SITE_HEADERS)
    officer = scoped_sessionmaker(env["sm"], Viewer(None, "p-officer", Role.COUNTY_OFFICER, area_codes=("513432",)))
    result = await env["run"](path, "sites", officer, valid_only=True)
    assert [(p.row, p.column, p.reason) for p in result.problems] == [
        (3, "行政区划代码 admin_code", "adminCode: 513431 is outside your areas")
    ]
    assert await rows_of(env["eng"], "SELECT name, admin_code FROM relocation_site WHERE name LIKE '测试县%'") == [
        ("测试县内安置点", "513432")
    ]
    planner = scoped_sessionmaker(env["sm"], Viewer(None, "p-planner", Role.PLANNER))
    with pytest.raises(Exception, match="PLANNER viewers import nothing"):
        await env["run"](path, "sites", planner)


# --------------------------------------------------------------------------- GeoJSON, GeoPackage, XLSX, GCJ-02


def write_layer(path: Path, records: list[dict[str, Any]], geoms: list[Any], driver: str) -> Path:
    """A GeoJSON or GeoPackage written by pyogrio (GDAL), EPSG:4326."""
    fields = list(records[0])
    pyogrio.raw.write(
        path,
        np.array([shapely.to_wkb(g) if g is not None else None for g in geoms], dtype=object),
        [np.array([r[f] for r in records], dtype=object) for f in fields],
        fields,
        geometry_type="Unknown",
        crs="EPSG:4326",
        driver=driver,
    )
    return path


async def test_geojson_facilities_points(env, tmp_path):  # type: ignore[no-untyped-def]
    recs = [
        {"名称 name": "测试帮扶车间", "设施类型 kind": "帮扶车间", "行政区划代码 admin_code": "513432100004",
         "规划岗位数 planned_jobs": 60, "运营主体 operator": "测试服饰公司"},
        {"名称 name": "测试学校", "设施类型 kind": "SCHOOL", "行政区划代码 admin_code": "513432",
         "规划岗位数 planned_jobs": None, "运营主体 operator": None},
    ]  # fmt: skip
    geoms = [Point(XIDE[0] + 0.001, XIDE[1] + 0.001), Point(XIDE[0] - 0.002, XIDE[1])]
    path = write_layer(tmp_path / "facilities.geojson", recs, geoms, "GeoJSON")
    result = await env["run"](path, "facilities")
    assert (result.kind, result.written, result.problems, result.records.inserted) == ("geojson", True, [], 2)
    got = await rows_of(
        env["eng"],
        "SELECT name, kind::text, admin_code, ST_X(location), ST_Y(location), planned_jobs, operator FROM facility "
        "WHERE name LIKE '测试%' ORDER BY name",
    )
    assert got == sorted(
        [
            ("测试帮扶车间", "assistance_workshop", "513432100004", geoms[0].x, geoms[0].y, 60, "测试服饰公司"),
            ("测试学校", "school", "513432", geoms[1].x, geoms[1].y, None, None),
        ]
    )
    before = await digest(env["eng"])
    again = await env["run"](path, "facilities")
    assert (again.records.unchanged, await digest(env["eng"])) == (2, before)


async def test_geopackage_sites_polygons_and_bad_geometry(env, tmp_path):  # type: ignore[no-untyped-def]
    x, y = XIDE[0] + 0.01, XIDE[1] + 0.01
    square = Polygon([(x, y), (x + 0.002, y), (x + 0.002, y + 0.002), (x, y + 0.002)])
    bowtie = Polygon([(x, y), (x + 0.002, y + 0.002), (x + 0.002, y), (x, y + 0.002)])  # self-intersecting
    recs = [
        {"名称": "测试面安置点", "安置方式": "中心村安置", "行政区划代码": "513432"},
        {"名称": "测试坏面安置点", "安置方式": "中心村安置", "行政区划代码": "513432"},
    ]
    path = write_layer(tmp_path / "sites.gpkg", recs, [square, bowtie], "GPKG")
    before = await digest(env["eng"])
    result = await env["run"](path, "sites")
    assert (result.kind, result.written) == ("gpkg", False)
    assert await digest(env["eng"]) == before
    assert [(p.row, p.column) for p in result.problems] == [(2, "geometry")]
    assert result.problems[0].reason.startswith("boundary: ")
    path = write_layer(tmp_path / "sites2.gpkg", recs[:1], [square], "GPKG")
    result = await env["run"](path, "sites")
    assert (result.written, result.records.inserted) == (True, 1)
    got = await rows_of(
        env["eng"],
        "SELECT ST_Equals(boundary, ST_Multi(ST_GeomFromText(:wkt, 4326))), ST_Contains(boundary, location), kind::text "
        "FROM relocation_site WHERE name = '测试面安置点'",
        wkt=square.wkt,
    )
    assert got == [(True, True, "central_village")]


async def test_xlsx_facilities_gcj02(env, tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "facilities.xlsx"
    gcj = ct.wgs84_to_gcj02(XIDE[0] + 0.003, XIDE[1] + 0.003)
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("设施")
    keys = ["name", "kind", "admin_code", "lon", "lat", "area_mu", "opened_on"]
    ws.write_row(0, 0, [FACILITY_HEADERS[k] for k in keys])
    ws.write_row(1, 0, ["测试高德卫生室", "卫生室", "513432"])
    ws.write_number(1, 3, gcj[0])
    ws.write_number(1, 4, gcj[1])
    ws.write_number(1, 5, 1.5)
    ws.write_datetime(1, 6, dt.datetime(2021, 3, 1), wb.add_format({"num_format": "yyyy-mm-dd"}))
    wb.close()
    result = await env["run"](path, "facilities", coord_sys=CoordSys.GCJ02)
    assert (result.kind, result.written, result.problems) == ("xlsx", True, [])
    (lon, lat, mu, opened), *_ = await rows_of(
        env["eng"], "SELECT ST_X(location), ST_Y(location), area_mu, opened_on FROM facility WHERE name = '测试高德卫生室'"
    )
    # back to WGS84: within a metre of where the GCJ-02 point came from
    assert abs(lon - (XIDE[0] + 0.003)) < 1e-5 and abs(lat - (XIDE[1] + 0.003)) < 1e-5
    assert (mu, opened) == (1.5, dt.date(2021, 3, 1))


async def test_households_from_geopackage(env, tmp_path):  # type: ignore[no-untyped-def]
    rows = family("T-GPKG-1", 2, 700)
    headers = {c.key: c.header for c in COLUMNS}
    recs = [{headers[k]: v for k, v in r.items() if k not in ("dwelling_lon", "dwelling_lat")} for r in rows]
    dwelling = Point(102.4111, 28.3102)
    path = write_layer(tmp_path / "roster.gpkg", recs, [dwelling, dwelling], "GPKG")
    result = await import_households(env["sm"], path, limits=LIMITS, today=TODAY, id_number_key=env["key"])
    assert (result.kind, result.written, result.problems) == ("gpkg", True, [])
    assert (result.households.inserted, result.members.inserted) == (1, 2)
    got = await rows_of(env["eng"], "SELECT ST_X(dwelling), ST_Y(dwelling) FROM household WHERE code = 'T-GPKG-1'")
    assert got == [(dwelling.x, dwelling.y)]


# --------------------------------------------------------------------------- over HTTP

JOB = "query($id: ID!) { importJob(id: $id) { kind state rows written records { inserted updated unchanged rejected } } }"


async def test_http_sites_job(env, tmp_path):  # type: ignore[no-untyped-def]
    import time

    feature = {
        "type": "Feature",
        "properties": {"名称": "测试网传安置点", "安置方式": "集镇安置", "行政区划代码": "513432"},
        "geometry": {"type": "Point", "coordinates": [XIDE[0] - 0.004, XIDE[1]]},
    }
    data = json.dumps({"type": "FeatureCollection", "features": [feature]}, ensure_ascii=False).encode()
    headers = {"Authorization": f"Bearer {issue_token(env['settings'], 'p-officer')}"}
    with TestClient(create_app(env["settings"])) as c:
        r = c.post("/imports/sites?filename=sites.geojson", content=data, headers=headers)
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        deadline = time.time() + 60
        while True:
            job = c.post("/graphql", json={"query": JOB, "variables": {"id": job_id}}, headers=headers).json()
            job = job["data"]["importJob"]
            if job["state"] in ("done", "failed") or time.time() > deadline:
                break
            time.sleep(0.3)
        assert job == {
            "kind": "sites", "state": "done", "rows": 1, "written": True,
            "records": {"inserted": 1, "updated": 0, "unchanged": 0, "rejected": 0},
        }  # fmt: skip
        template = c.get("/imports/templates/sites.csv")
        assert template.status_code == 200
        assert template.content.decode("utf-8-sig").splitlines()[0].startswith("名称 name,安置方式 kind,行政区划代码 admin_code")
    assert await rows_of(env["eng"], "SELECT count(*) FROM relocation_site WHERE name = '测试网传安置点'") == [(1,)]
