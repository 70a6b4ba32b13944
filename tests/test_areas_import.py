"""``anju areas import``: the project's own Liangshan files into a fresh database (checked against the files with shapely and
pyproj, not through the importer), a GeoPackage of generated divisions written here (twice: the second run writes nothing),
bad files (every problem named by row and field, nothing written), and the ADMIN_AREAS ``areaCode`` filter (by code only).

The divisions of ``_generated_gpkg`` are GENERATED TEST DATA: made-up names and boxes under Guizhou's province code (520000);
they do not describe real places."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pytest
import shapely
from pyproj import Geod
from shapely.geometry import MultiPolygon, Polygon, box, mapping, shape
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from anju import db
from resolvers.admin_import import AreaImportError, import_areas, read_area_file
from schema import Context
from tests.conftest import ADMIN, DATA

NAME = "anju_test_areas"
GEOD = Geod(ellps="WGS84")
LIANGSHAN = DATA / "liangshan"
# Above the project's files: real codes and names (GB/T 2260), no boundaries; written by the test.
PARENTS = [("510000", "四川省"), ("513400", "凉山彝族自治州")]


@pytest.fixture(scope="module")
async def areas(settings) -> Any:  # type: ignore[no-untyped-def]
    """A fresh database (migrated, no seed): engine, sessionmaker."""
    await db.ensure_database(settings, NAME, drop_first=True)
    await db.migrate(settings, NAME)
    eng = db.create_engine(settings, NAME)
    yield eng, async_sessionmaker(eng, expire_on_commit=False)
    await eng.dispose()


async def _rows(eng: AsyncEngine) -> dict[str, dict[str, Any]]:
    async with eng.connect() as c:
        res = await c.execute(
            text(
                "SELECT code, name, level::text AS level, parent_code, ST_AsBinary(geom) AS wkb, ST_SRID(geom) AS srid, "
                "GeometryType(geom) AS gtype, xmin::text AS xmin FROM admin_area"
            )
        )
        return {r.code: dict(r._mapping) for r in res}


async def _import(sm: Any, path: Path, **kw: Any) -> Any:
    return await import_areas(sm, read_area_file(path), **kw)


def _write_csv(path: Path, header: list[str], rows: list[list[str]], bom: bool = False) -> Path:
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
async def loaded(areas, tmp_path) -> Any:  # type: ignore[no-untyped-def]
    """The database holding the Liangshan files (imported again: a no-op when the first test ran)."""
    _, sm = areas
    await _import(sm, _write_csv(tmp_path / "parents.csv", ["code", "name"], [list(p) for p in PARENTS]))
    await _import(sm, LIANGSHAN / "counties.geojson")
    await _import(sm, LIANGSHAN / "xide_divisions.csv")
    return areas


def _geodesic_km2(g: Any) -> float:
    return abs(GEOD.geometry_area_perimeter(g)[0]) / 1e6


async def test_liangshan_files_into_a_fresh_database(areas, tmp_path, count_statements):  # type: ignore[no-untyped-def]
    eng, sm = areas
    parents = _write_csv(tmp_path / "parents.csv", ["code", "name"], [list(p) for p in PARENTS], bom=True)
    counts = await _import(sm, parents)
    assert (counts.inserted, counts.updated, counts.unchanged) == (2, 0, 0)

    feats = json.loads((LIANGSHAN / "counties.geojson").read_text(encoding="utf-8"))["features"]
    counts = await _import(sm, LIANGSHAN / "counties.geojson")
    assert (counts.inserted, counts.updated, counts.unchanged) == (len(feats), 0, 0) == (17, 0, 0)
    with (LIANGSHAN / "xide_divisions.csv").open(encoding="utf-8") as f:
        divisions = list(csv.DictReader(f))
    engine_statements = count_statements()
    with engine_statements:
        counts = await _import(sm, LIANGSHAN / "xide_divisions.csv")
    # the county row is in both files: unchanged (its polygon stays; a code-only row never erases a boundary)
    assert (counts.inserted, counts.updated, counts.unchanged) == (len(divisions) - 1, 0, 1) == (115, 0, 1)
    # set-based: a handful of statements for 116 rows (the rows themselves travel by COPY)
    assert len(engine_statements.statements) <= 8

    rows = await _rows(eng)
    assert len(rows) == 2 + 17 + 115
    assert rows["510000"]["level"] == "province" and rows["510000"]["parent_code"] is None
    assert rows["513400"]["parent_code"] == "510000" and rows["513400"]["level"] == "prefecture"
    for feat in feats:
        code, geom = feat["properties"]["code"], shape(feat["geometry"])
        row = rows[code]
        assert (row["name"], row["level"], row["parent_code"]) == (feat["properties"]["name"], "county", "513400")
        assert row["srid"] == 4326 and row["gtype"] == "MULTIPOLYGON"
        stored = shapely.from_wkb(row["wkb"])
        assert stored.equals(geom)
        assert _geodesic_km2(stored) == pytest.approx(_geodesic_km2(geom), rel=1e-9)
    # the README's figure for Xide, 2,191.5 km² (pyproj Geod), from the stored polygon
    assert _geodesic_km2(shapely.from_wkb(rows["513432"]["wkb"])) == pytest.approx(2191.5, abs=0.1)
    for d in divisions:
        row = rows[d["code"]]
        assert (row["name"], row["level"]) == (d["name"], d["level"])
        assert row["parent_code"] == (d["parent_code"] if d["level"] != "county" else "513400")
    assert rows["513432100004"]["name"] == "彝欣社区居民委员会" and rows["513432100004"]["parent_code"] == "513432100"
    assert rows["513432208201"]["name"] == "且拖村村民委员会" and rows["513432208"]["name"] == "且拖乡"
    assert rows["513432100"]["wkb"] is None


def _generated_gpkg(path: Path, *, crs: str = "EPSG:4326") -> list[dict[str, Any]]:
    """GENERATED TEST DATA (made-up names and boxes under Guizhou's code 520000): a province, a prefecture, a county under
    it, a province-administered county (no prefecture 529000), a township and a village. Written with pyogrio."""
    feats = [
        {"code": "520000", "name": "测试省 [generated]", "level": None, "g": None},
        {"code": "520100", "name": "测试市 [generated]", "level": "prefecture", "g": box(106.0, 26.0, 107.0, 27.0)},
        {"code": "520102", "name": "测试区 [generated]", "level": "county", "g": box(106.0, 26.0, 106.5, 26.5)},
        {"code": "529001", "name": "省直辖测试县 [generated]", "level": None, "g": MultiPolygon([box(108, 26, 108.5, 26.5)])},
        {"code": "520102001", "name": "测试街道 [generated]", "level": "township", "g": box(106.1, 26.1, 106.2, 26.2)},
        {"code": "520102001001", "name": "测试社区 [generated]", "level": "village", "g": None},
    ]
    # children before parents on purpose: order in the file does not matter
    feats = feats[::-1]
    geoms = np.array([shapely.to_wkb(f["g"]) if f["g"] is not None else None for f in feats], dtype=object)
    fields = [np.array([f[k] for f in feats], dtype=object) for k in ("code", "name", "level")]
    pyogrio.raw.write(path, geoms, fields, ["code", "name", "level"], geometry_type="MultiPolygon", crs=crs, driver="GPKG")
    return feats


async def test_generated_geopackage_twice_writes_nothing_the_second_time(areas, tmp_path):  # type: ignore[no-untyped-def]
    eng, sm = areas
    path = tmp_path / "generated_divisions.gpkg"
    feats = _generated_gpkg(path)
    before = await _rows(eng)
    dry = await _import(sm, path, dry_run=True)
    assert (dry.inserted, dry.updated, dry.unchanged, dry.dry_run) == (6, 0, 0, True)
    assert await _rows(eng) == before
    first = await _import(sm, path)
    assert (first.inserted, first.updated, first.unchanged) == (6, 0, 0)
    rows = await _rows(eng)
    assert len(rows) == len(before) + 6
    expected_parent = {
        "520000": None,
        "520100": "520000",
        "520102": "520100",
        "529001": "520000",  # no prefecture 529000: province-administered
        "520102001": "520102",
        "520102001001": "520102001",
    }
    for f in feats:
        row = rows[f["code"]]
        assert row["name"] == f["name"] and row["parent_code"] == expected_parent[f["code"]]
        if f["g"] is None:
            assert row["wkb"] is None
        else:
            assert shapely.from_wkb(row["wkb"]).equals(f["g"]) and row["gtype"] == "MULTIPOLYGON"
    second = await _import(sm, path)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 6)
    assert await _rows(eng) == rows  # xmin (the writing transaction) of every row unchanged

    # one name changed: one row updated, the rest untouched
    renamed = tmp_path / "renamed.csv"
    _write_csv(renamed, ["code", "name", "parent_code"], [["520102", "改名区 [generated]", "520100"]])
    third = await _import(sm, renamed)
    assert (third.inserted, third.updated, third.unchanged) == (0, 1, 0)
    after = await _rows(eng)
    assert after["520102"]["name"] == "改名区 [generated]" and after["520102"]["wkb"] == rows["520102"]["wkb"]
    assert {c: r["xmin"] for c, r in after.items() if c != "520102"} == {c: r["xmin"] for c, r in rows.items() if c != "520102"}


BOWTIE = Polygon([(106.0, 26.0), (106.2, 26.2), (106.2, 26.0), (106.0, 26.2), (106.0, 26.0)])


def _fc(features: list[tuple[dict[str, Any], Any]], crs: str | None = None) -> str:
    doc: dict[str, Any] = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": p, "geometry": mapping(g) if g is not None else None} for p, g in features
        ],
    }
    if crs:
        doc["crs"] = {"type": "name", "properties": {"name": crs}}
    return json.dumps(doc, ensure_ascii=False)


_OK = ({"code": "513432", "name": "喜德县"}, None)
BAD_FILES = [
    pytest.param(
        "bad.csv",
        "code,name\n513432,喜德县\n51343,短码\n",
        [("line 3", "code", "is not 6, 9 or 12 digits")],
        id="code-shape",
    ),
    pytest.param(
        "bad.csv",
        "code,name,level\n513432,喜德县,county\n513432999001,没有上级的村,village\n",
        [("line 3", "parent_code", "parent 513432999 of 513432999001 is neither in the file nor in the database")],
        id="missing-township",
    ),
    pytest.param(
        "bad.csv",
        "code,name\n513432100,光明镇\n523432101,无上级镇\n",
        [("line 3", "parent_code", "parent 523432 of 523432101 is neither in the file nor in the database")],
        id="missing-parent",
    ),
    pytest.param(
        "bad.csv",
        "code,name,level\n513432,喜德县,county\n513432100,光明镇,village\n",
        [("line 3", "level", "'village' but code 513432100 is a township")],
        id="level-mismatch",
    ),
    pytest.param(
        "bad.csv",
        "code,name,parent_code\n513432100,光明镇,513431\n",
        [("line 2", "parent_code", "513431, but the parent of 513432100 is 513432")],
        id="parent-mismatch",
    ),
    pytest.param(
        "bad.geojson",
        _fc([_OK, ({"code": "513432100", "name": "光明镇"}, BOWTIE)]),
        [("feature 2", "geometry", "invalid polygon: Self-intersection")],
        id="bow-tie",
    ),
    pytest.param(
        "bad.geojson",
        _fc([({"code": "513432", "name": "喜德县"}, box(11_400_000, 3_270_000, 11_410_000, 3_280_000))], "EPSG:3857"),
        [("file", "crs", "EPSG:3857 is not WGS84")],
        id="wrong-crs",
    ),
    pytest.param(
        "bad.geojson",
        _fc([({"code": "513432", "name": "喜德县"}, box(200, 26, 201, 27))]),
        [("feature 1", "geometry", "longitude 200.0 outside [-180, 180]")],
        id="lon-out-of-range",
    ),
    pytest.param(
        "bad.csv",
        "code,name\n513432100,光明镇\n513432101,冕山镇\n513432100,又一个光明镇\n",
        [("line 4", "code", "code 513432100 also in line 2")],
        id="duplicate-code",
    ),
]


@pytest.mark.parametrize(("filename", "content", "expected"), BAD_FILES)
async def test_bad_files_name_row_and_field_and_write_nothing(loaded, tmp_path, filename, content, expected):  # type: ignore[no-untyped-def]
    eng, sm = loaded
    path = tmp_path / filename
    path.write_text(content, encoding="utf-8")
    async with eng.connect() as c:
        before = await c.scalar(text("SELECT count(*) FROM admin_area"))
    snapshot = await _rows(eng)
    with pytest.raises(AreaImportError) as caught:
        await _import(sm, path)
    found = [(i.where, i.field, i.message) for i in caught.value.issues]
    for where, fld, fragment in expected:
        assert any(w == where and f == fld and fragment in msg for w, f, msg in found), found
    assert len(found) == len(expected), found
    async with eng.connect() as c:
        assert await c.scalar(text("SELECT count(*) FROM admin_area")) == before
    assert await _rows(eng) == snapshot


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param("code,name\n513432100,光明镇\n".encode("gb18030"), ("line 2", "file", "not UTF-8"), id="gb18030"),
        pytest.param(b"code,name\n513432100,a\x00b\n", ("line 2", "name", "control characters"), id="nul-in-name"),
    ],
)
async def test_unreadable_text_is_a_problem_of_its_row_not_a_crash(loaded, tmp_path, content, expected):  # type: ignore[no-untyped-def]
    """Bytes the import cannot take (another encoding, a NUL) are reported like any bad row; nothing is written."""
    eng, sm = loaded
    path = tmp_path / "raw.csv"
    path.write_bytes(content)
    snapshot = await _rows(eng)
    with pytest.raises(AreaImportError) as caught:
        await _import(sm, path)
    found = [(i.where, i.field, i.message) for i in caught.value.issues]
    assert any(w == expected[0] and f == expected[1] and expected[2] in msg for w, f, msg in found), found
    assert await _rows(eng) == snapshot


async def test_every_problem_of_a_file_at_once(loaded, tmp_path):  # type: ignore[no-untyped-def]
    eng, sm = loaded
    path = tmp_path / "many.geojson"
    path.write_text(
        _fc(
            [
                ({"adcode": 513432999, "名称": "新镇", "level": "county"}, None),  # numeric code; level mismatch
                ({"adcode": "5134", "名称": "短"}, None),
                ({"adcode": "513432998", "名称": "蝴蝶镇"}, BOWTIE),
                ({"adcode": "513432998", "名称": "重复"}, None),
                ({"adcode": "513432997", "名称": "点镇"}, shapely.Point(106, 26)),
            ]
        ),
        encoding="utf-8",
    )
    with pytest.raises(AreaImportError) as caught:
        await _import(sm, path)
    got = [str(i) for i in caught.value.issues]
    assert got[0].startswith("feature 1: level: 'county' but code 513432999 is a township")
    assert any(s.startswith("feature 2: adcode: '5134' is not 6, 9 or 12 digits") for s in got)
    assert any(s.startswith("feature 3: geometry: invalid polygon: Self-intersection") for s in got)
    assert any(s.startswith("feature 4: adcode: code 513432998 also in feature 3") for s in got)
    assert any(s.startswith("feature 5: geometry: Point; expected Polygon or MultiPolygon") for s in got)
    assert len(got) == 5


async def test_wrong_crs_geopackage_and_unknown_columns(loaded, tmp_path):  # type: ignore[no-untyped-def]
    _, sm = loaded
    path = tmp_path / "cgcs2000.gpkg"
    _generated_gpkg(path, crs="EPSG:4490")
    with pytest.raises(AreaImportError) as caught:
        await _import(sm, path)
    assert [str(i) for i in caught.value.issues] == [
        "file: crs: CRS EPSG:4490 is not WGS84 lon/lat; expected WGS84 lon/lat (EPSG:4326 or OGC:CRS84); reproject first, "
        "e.g. ogr2ogr -t_srs EPSG:4326"
    ]
    crs84 = tmp_path / "crs84.gpkg"  # GDAL reports it as a WKT with AUTHORITY["OGC","CRS84"]: accepted
    _generated_gpkg(crs84, crs="OGC:CRS84")
    assert (await _import(sm, crs84, dry_run=True)).dry_run
    odd = _write_csv(tmp_path / "odd.csv", ["id", "title"], [["513432", "喜德县"]])
    with pytest.raises(AreaImportError) as caught:
        await _import(sm, odd)
    assert [(i.where, i.field) for i in caught.value.issues] == [("file", "code-field"), ("file", "name-field")]
    # the override names the columns
    counts = await import_areas(sm, read_area_file(odd, code_field="id", name_field="title"))
    assert (counts.inserted, counts.updated, counts.unchanged) == (0, 0, 1)


def test_cli_exit_codes_and_counts(loaded, settings, tmp_path):  # type: ignore[no-untyped-def]
    from tests.test_cli import _env

    env = _env(settings)
    env["ANJU_LOCAL_DB__DATABASE" if settings.uses_local_db else "DATABASE_URL"] = (
        NAME if settings.uses_local_db else settings.sqlalchemy_url(NAME)
    )

    def anju(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "anju.cli", *args], env=env, capture_output=True, text=True, timeout=120)

    bad = tmp_path / "bad.csv"
    bad.write_text("code,name\n51343,短码\n", encoding="utf-8")
    r = anju("areas", "import", str(bad))
    assert r.returncode == 1
    assert "bad.csv: line 2: code: '51343' is not 6, 9 or 12 digits" in r.stderr and "nothing written" in r.stderr
    r = anju("areas", "import", str(LIANGSHAN / "xide_divisions.csv"), "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "would insert 0, would update 0, unchanged 116 (dry run: nothing written)" in r.stdout


async def test_admin_areas_layer_filter_is_by_code(loaded, settings, schema, tmp_path):  # type: ignore[no-untyped-def]
    """featureCollection(ADMIN_AREAS, filter: {areaCode}) holds the area and what lies below it by code — not the prefecture
    containing it, nor the counties touching its border."""
    eng, sm = loaded
    # polygons for Liangshan (the union of its counties, by shapely) and for a township and village inside Xide
    feats = json.loads((LIANGSHAN / "counties.geojson").read_text(encoding="utf-8"))["features"]
    counties = {f["properties"]["code"]: shape(f["geometry"]) for f in feats}
    xide = counties["513432"]
    town = box(102.40, 28.30, 102.42, 28.32)
    village = box(102.405, 28.305, 102.41, 28.31)
    assert xide.contains(town) and town.contains(village)
    path = tmp_path / "polygons.geojson"
    path.write_text(
        _fc(
            [
                ({"code": "513400", "name": "凉山彝族自治州"}, shapely.union_all(list(counties.values()))),
                ({"code": "513432100", "name": "光明镇"}, town),
                ({"code": "513432100004", "name": "彝欣社区居民委员会"}, village),
            ]
        ),
        encoding="utf-8",
    )
    counts = await _import(sm, path)
    assert (counts.inserted, counts.updated) == (0, 3)
    neighbours = {c for c, g in counties.items() if c != "513432" and g.intersects(xide)}
    assert neighbours  # Xide touches other counties: the old polygon filter brought them
    ctx = Context(sessionmaker=sm, settings=settings, viewer=ADMIN)
    r = await schema.execute('{ featureCollection(layer: ADMIN_AREAS, filter: {areaCode: "513432"}) }', context_value=ctx)
    assert r.errors is None
    ids = {f["id"] for f in r.data["featureCollection"]["features"]}
    assert ids == {"513432", "513432100", "513432100004"}
    assert not ids & (neighbours | {"513400", "510000"})
    r = await schema.execute('{ featureCollection(layer: ADMIN_AREAS, filter: {areaCode: "513400"}) }', context_value=ctx)
    assert {f["id"] for f in r.data["featureCollection"]["features"]} == {"513400", *counties, "513432100", "513432100004"}
