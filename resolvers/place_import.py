"""Importing relocation sites (安置点) and facilities (产业/服务设施), the way ``anju import households`` works.

Files: CSV/XLSX with longitude and latitude columns (``经度 lon``, ``纬度 lat``), or GeoJSON/GeoPackage whose features carry
the place's geometry: a Point is the location; a Polygon/MultiPolygon is a site's ``boundary`` (a facility's
``footprint``), the location then coming from the lon/lat columns when given, else a point on the polygon's surface.
Coordinates are WGS84, or GCJ-02/BD-09 declared with ``coord_sys`` (converted as the API's ``coordSys`` arguments are).

Steps, in one transaction, as the other imports (``resolvers/household_import.py``):

1. Each row checked in Python with the registry's own rules (``place_fields``/``origin_codes``, resolvers/places.py, one
   field at a time so that every problem of a row is reported; ``parse_geometry`` for the geometry; ``china_problem``
   for a location outside China, naming swapped lon/lat), streamed by COPY into a temporary table.
2. Each row's place looked up once by its natural key (``_match_sql``), then checked in SQL over all rows at once: admin
   codes exist at an allowed level (``area_problem``), the location lies
   within ``registry.location_tolerance_meters`` of the area (``anju_area_distance``, ``outside_area_problem``), a
   facility's site exists, a site's origin areas exist, a county officer's rows lie under its areas (reported, not
   written), a place once per file, an existing site's opening date not after its first household moved in.
3. ``UPDATE … FROM`` the changed places (version bumped), ``INSERT … SELECT`` the new ones, origin areas replaced where
   given, one audit row per place written (``write_staged``: before and after, ``row_json_sql``). The located-code
   trigger fills ``located_code``.

Matching (the natural key): a place is named once within its admin area and kind of place, so a row matches the site
(facility) with the same ``admin_code`` and ``name``; renaming or moving a place to another area is updateRelocationSite's
(updateFacility's) work. A blank optional cell keeps the stored value; the same file twice writes nothing. Rows whose name
starts with ``示例`` are the template's examples: skipped. Modes: atomic (default), ``valid_only``, ``dry_run``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, shape
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

import models as m
from resolvers.admin_areas import area_problem, outside_area_problem
from resolvers.coords import CoordSys, geojson_to_wgs84
from resolvers.errors import AnjuError, InvalidInput, NotFound
from resolvers.geometry import china_problem, parse_geometry
from resolvers.household_import import (
    EXAMPLE_PREFIX,
    Column,
    ImportResult,
    Problem,
    _cell_text,
    _date,
    _float,
    _int,
    _labels,
    _text,
    map_header,
    open_staging,
    staged_counts,
    write_staged,
)
from resolvers.mutations import client_error
from resolvers.places import FACILITY_KEYS, FIELD, SITE_KEYS, SITE_LEVELS, origin_codes, place_fields
from resolvers.query import SessionMaker, check_period
from resolvers.tabular import GEOMETRY, FileLimits, Table, open_table

_site_kind = _labels(m.SiteKind, {"城镇集中安置": "URBAN", "集镇安置": "TOWN", "中心村安置": "CENTRAL_VILLAGE", "其他": "OTHER"})
_facility_kind = _labels(
    m.FacilityKind,
    {
        "产业园区": "INDUSTRIAL_PARK",
        "蔬菜基地": "VEGETABLE_BASE",
        "帮扶车间": "ASSISTANCE_WORKSHOP",
        "社区工厂": "COMMUNITY_FACTORY",
        "培训基地": "TRAINING_BASE",
        "茶园": "TEA_PLANTATION",
        "加工厂": "PROCESSING_PLANT",
        "合作社": "COOPERATIVE",
        "学校": "SCHOOL",
        "卫生室": "CLINIC",
        "供水设施": "WATER_SUPPLY",
    },
)


def _codes(v: Any, field: str) -> list[str] | None:
    s = _cell_text(v)
    if s is None:
        return None
    return [x.strip() for x in s.replace("，", "、").replace(",", "、").replace(";", "、").split("、") if x.strip()]


def _geometry_cell(v: Any, field: str) -> Any:
    return v  # a GeoJSON object from a GeoJSON/GeoPackage file (resolvers/tabular.py); judged in _Row.geometry


EXAMPLE = f"{EXAMPLE_PREFIX}安置点"
_COMMON_HEAD = (
    Column("name", "名称", "name", True, True, _text, "名称，1–200 字符；在同一行政区划内唯一（导入按 行政区划代码+名称 匹配）。"
           "Name, unique within its admin area (an import matches by admin code + name).", (EXAMPLE, EXAMPLE + "二")),
)  # fmt: skip
_LONLAT = (
    Column("lon", "经度", "location", True, False, _float,
           "经度（十进制度；WGS84，或 --coord-sys 所声明的坐标系）；GeoJSON/GeoPackage 用要素几何。Longitude, decimal degrees.",
           ("102.4109", "102.4150")),
    Column("lat", "纬度", "location", True, False, _float, "纬度（十进制度）。Latitude, decimal degrees.",
           ("28.3101", "28.3120")),
)  # fmt: skip
GEOMETRY_COLUMN = Column(
    "geometry", "几何", "location", True, False, _geometry_cell,
    "GeoJSON/GeoPackage 要素几何：点为位置，面为边界/占地范围。A feature's geometry: a Point, or a (Multi)Polygon.", ("", ""),
)  # fmt: skip
"""A GeoJSON/GeoPackage file's geometry (resolvers/tabular.py ``GEOMETRY``); not a spreadsheet template's column."""
SITE_COLUMNS: tuple[Column, ...] = (
    *_COMMON_HEAD,
    Column("kind", "安置方式", "kind", True, True, _site_kind, "城镇集中安置、集镇安置、中心村安置、其他。URBAN, TOWN, "
           "CENTRAL_VILLAGE or OTHER.", ("城镇集中安置", "集镇安置")),
    Column("admin_code", "行政区划代码", "adminCode", True, True, _text,
           "所在县、乡镇或村的区划代码（6、9 或 12 位）。Code of the county, township or village it lies in.",
           ("513432", "513432100")),
    *_LONLAT,
    Column("planned_households", "规划安置户数", "plannedHouseholds", True, False, _int, "规划安置户数，≥ 0。Planned households.",
           ("1200", "")),
    Column("planned_population", "规划安置人数", "plannedPopulation", True, False, _int, "规划安置人数，≥ 0。Planned population.",
           ("5000", "")),
    Column("opened_on", "启用日期", "openedOn", True, False, _date, "启用日期 YYYY-MM-DD（可为将来：规划中）。Day it opened.",
           ("2019-05-01", "")),
    Column("origin_area_codes", "迁出地代码", "originAreaCodes", True, False, _codes,
           "迁出乡镇/村代码，用 、 分隔，最多 200 个；填写即替换。Origin areas, separated by 、 (given: replaces).",
           ("513432102201、513432102", "")),
)  # fmt: skip
FACILITY_COLUMNS: tuple[Column, ...] = (
    Column("name", "名称", "name", True, True, _text, "名称，1–200 字符；在同一行政区划内唯一（导入按 行政区划代码+名称 匹配）。"
           "Name, unique within its admin area (an import matches by admin code + name).", ("示例车间", "示例学校")),
    Column("kind", "设施类型", "kind", True, True, _facility_kind,
           "产业园区、蔬菜基地、帮扶车间、社区工厂、培训基地、茶园、加工厂、合作社、学校、卫生室、供水设施（或英文名）。"
           "Facility kind (INDUSTRIAL_PARK … WATER_SUPPLY).", ("帮扶车间", "学校")),
    Column("admin_code", "行政区划代码", "adminCode", True, True, _text, "所在行政区划代码（6、9 或 12 位）。Admin area code.",
           ("513432100004", "513432100004")),
    *_LONLAT,
    Column("site_id", "安置点编号", "siteId", True, False, _int, "所属安置点 id（可空）。Relocation site id it serves.",
           ("1", "")),
    Column("area_mu", "占地面积亩", "areaMu", True, False, _float, "占地面积（亩），≥ 0。Area in mu.", ("12.5", "")),
    Column("planned_jobs", "规划岗位数", "plannedJobs", True, False, _int, "规划就业岗位数，≥ 0。Planned jobs.", ("80", "")),
    Column("operator", "运营主体", "operator", True, False, _text, "运营主体。Operator.", ("某某服饰有限公司", "")),
    Column("opened_on", "启用日期", "openedOn", True, False, _date, "启用日期 YYYY-MM-DD。Day it opened.", ("2020-06-01", "")),
)  # fmt: skip
KINDS: dict[str, tuple[Any, str, tuple[Column, ...], frozenset[str], str, str]] = {
    "sites": (m.RelocationSite, "relocation_site", SITE_COLUMNS, SITE_KEYS, "boundary", "importRelocationSites"),
    "facilities": (m.Facility, "facility", FACILITY_COLUMNS, FACILITY_KEYS, "footprint", "importFacilities"),
}
"""Import kind → (model, table, columns, the registry's keys, its polygon column, audit action)."""
LAYOUT = {
    "sites": "每行一个安置点；名称以“示例”开头的行跳过。One row per relocation site; rows named 示例… are skipped.",
    "facilities": "每行一个设施；名称以“示例”开头的行跳过。One row per facility; rows named 示例… are skipped.",
}

_STAGE = (
    "row", "name", "kind", "admin_code", "lon", "lat", "shape", "planned_households", "planned_population", "opened_on",
    "origins", "site_id", "area_mu", "planned_jobs", "operator", "bad",
)  # fmt: skip
_CREATE = """
CREATE TEMP TABLE imp_place (
    row integer PRIMARY KEY, name text, kind text, admin_code text, lon double precision, lat double precision,
    shape bytea, planned_households integer, planned_population integer, opened_on date, origins text[], site_id bigint,
    area_mu double precision, planned_jobs integer, operator text, bad boolean NOT NULL, place_id bigint, matches integer,
    state text
) ON COMMIT DROP
"""
_IN_SCOPE = """coalesce(left(i.admin_code, 6) = ANY (CAST(nullif(current_setting('anju.counties', true), '') AS text[]))
    AND i.admin_code LIKE ANY (CAST(nullif(current_setting('anju.patterns', true), '') AS text[])), false)"""


def _match_sql(table: str) -> str:
    """The one lookup of each row's place by its natural key (``admin_code``, ``name``): its id and how many match."""
    return f"""
UPDATE imp_place i SET place_id = p.id, matches = p.n
FROM (SELECT i2.row, min(t.id) AS id, count(*) AS n FROM imp_place i2
      JOIN {table} t ON t.admin_code = i2.admin_code AND t.name = i2.name
      WHERE NOT i2.bad GROUP BY i2.row) p
WHERE p.row = i.row
"""  # noqa: S608 - table from KINDS, never input


def _check_sql(table: str) -> str:
    """The checks over all rows at once: areas, distances, scope, duplicates, sites, origins, residents (``_match_sql`` first)."""
    return f"""
SELECT i.row, i.name, i.admin_code, i.site_id, i.opened_on, aa.level AS admin_level, d.code AS near_code, d.distance_meters,
       {_IN_SCOPE} AS in_scope,
       first_value(i.row) OVER (PARTITION BY i.admin_code, i.name ORDER BY i.row) AS first_row,
       coalesce(i.matches, 0) AS matches, i.place_id, t.closed_on,
       {"(SELECT s.id FROM relocation_site s WHERE s.id = i.site_id)" if table == "facility" else "NULL"} AS site_found,
       (SELECT min(c) FROM unnest(i.origins) c WHERE NOT EXISTS (SELECT 1 FROM admin_area a WHERE a.code = c))
           AS missing_origin,
       {
        "(SELECT min(r.valid_from) FROM household_residence r WHERE r.site_id = i.place_id)"
        if table == "relocation_site"
        else "NULL"
    }
           AS first_resident
FROM imp_place i
LEFT JOIN {table} t ON t.id = i.place_id
LEFT JOIN admin_area aa ON aa.code = i.admin_code
LEFT JOIN LATERAL anju_area_distance(i.admin_code, i.lon, i.lat) d ON aa.code IS NOT NULL AND i.lon IS NOT NULL
WHERE NOT i.bad
ORDER BY i.row
"""  # noqa: S608 - table from KINDS, never input


# The columns a row sets: given cells replace, blank optional cells keep what is stored.
def _new_values(kind: str) -> dict[str, str]:
    geom = "ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326)"
    polygon = KINDS[kind][4]
    out = {
        "name": "i.name",
        "kind": f"CAST(i.kind AS {'site_kind' if kind == 'sites' else 'facility_kind'})",
        "admin_code": "i.admin_code",
        "location": geom,
        polygon: f"coalesce(ST_SetSRID(ST_GeomFromWKB(i.shape), 4326), t.{polygon})",
        "opened_on": "coalesce(i.opened_on, t.opened_on)",
    }
    extra = (
        ("planned_households", "planned_population") if kind == "sites" else ("site_id", "area_mu", "planned_jobs", "operator")
    )
    return out | {c: f"coalesce(i.{c}, t.{c})" for c in extra}


def _statements(kind: str) -> tuple[str, str, str]:
    """(classify, update, insert) statements of ``kind``."""
    table = KINDS[kind][1]
    new = _new_values(kind)
    cols = list(new)
    differs = f"({', '.join(f't.{c}' for c in cols)}) IS DISTINCT FROM ({', '.join(new.values())})"
    origins = ""
    if kind == "sites":  # a site's origin areas, when given, are part of what changes
        origins = (
            " OR (i.origins IS NOT NULL AND ARRAY(SELECT DISTINCT c FROM unnest(i.origins) c ORDER BY c) IS DISTINCT FROM "
            "ARRAY(SELECT o.origin_admin_code::text FROM site_origin o WHERE o.site_id = t.id ORDER BY 1))"
        )
    classify = f"""
UPDATE imp_place i SET state = CASE WHEN t.id IS NULL THEN 'new' WHEN {differs}{origins} THEN 'changed' ELSE 'same' END
FROM imp_place i2 LEFT JOIN {table} t ON t.id = i2.place_id
WHERE i2.row = i.row AND NOT i.bad
"""  # noqa: S608
    update = (
        f"UPDATE {table} t SET "
        + ", ".join(f"{c} = {v}" for c, v in new.items())
        + ", version = t.version + 1 FROM imp_place i WHERE i.state = 'changed' AND t.id = i.place_id"
    )
    inserted = {c: v.replace(f"t.{c}", "NULL").replace(", NULL)", ")") for c, v in new.items()}
    insert = f"""
WITH new AS (
    INSERT INTO {table} ({", ".join(inserted)})
    SELECT {", ".join(inserted.values())} FROM imp_place i WHERE i.state = 'new' ORDER BY i.row
    RETURNING id, admin_code, name
)
UPDATE imp_place i SET place_id = new.id FROM new WHERE i.state = 'new' AND new.admin_code = i.admin_code AND new.name = i.name
"""  # noqa: S608
    return classify, update, insert


_ORIGINS = (
    "DELETE FROM site_origin o USING imp_place i WHERE i.state IN ('new', 'changed') AND i.origins IS NOT NULL "
    "AND o.site_id = i.place_id",
    "INSERT INTO site_origin (site_id, origin_admin_code) SELECT DISTINCT i.place_id, c FROM imp_place i, unnest(i.origins) c "
    "WHERE i.state IN ('new', 'changed') AND i.origins IS NOT NULL",
)


class _Rows:
    """The Python pass of a place import: each row checked with the registry's rules and turned into a staging record."""

    def __init__(
        self, kind: str, header: list[str], index: dict[str, int], coord_sys: CoordSys, max_vertices: int, result: ImportResult
    ) -> None:
        self.kind, self.header, self.index, self.coord_sys, self.max_vertices = kind, header, index, coord_sys, max_vertices
        self.columns = {c.key: c for c in (*KINDS[kind][2], GEOMETRY_COLUMN)}
        self.keys = KINDS[kind][3]
        self.polygon = KINDS[kind][4]
        self.result = result
        self.problems: list[tuple[int | None, str, str, str]] = []

    def column(self, key: str) -> str:
        """The header of ``key`` as the file writes it (the template's when absent)."""
        i = self.index.get(key)
        return self.header[i] if i is not None else self.columns[key].header

    def add(self, row: int, key: str, value: Any, exc: AnjuError) -> None:
        self.problems.append((row, self.column(key), ("" if value is None else str(value))[:100], exc.message))

    def location(self, row: int, lon: Any, lat: Any, geometry: Any) -> tuple[float | None, float | None, bytes | None, bool]:
        """(lon, lat, polygon WKB, ok): from the geometry cell and/or the lon/lat columns, in WGS84, checked."""
        ok = True
        polygon: bytes | None = None
        if geometry is not None:
            try:
                if self.coord_sys is not CoordSys.WGS84 and isinstance(geometry, dict) and "coordinates" in geometry:
                    geometry = geojson_to_wgs84(geometry, self.coord_sys)
                g = parse_geometry(
                    geometry, FIELD["location"] if geometry.get("type") == "Point" else FIELD[self.polygon],
                    allowed=("Point", "Polygon", "MultiPolygon"), max_vertices=self.max_vertices,
                )  # fmt: skip
            except (InvalidInput, AttributeError) as exc:
                msg = exc if isinstance(exc, InvalidInput) else InvalidInput("location: unreadable geometry", field="location")
                self.add(row, "geometry", (geometry or {}).get("type") if isinstance(geometry, dict) else "", msg)
                return None, None, None, False
            if g.geom_type == "Point":
                if lon is None:
                    lon, lat = g.x, g.y
            else:
                mp = g if isinstance(g, MultiPolygon) else MultiPolygon([g])
                polygon = shapely.to_wkb(mp)
                if lon is None and lat is None:
                    p = g.point_on_surface()
                    lon, lat = p.x, p.y
                    if (cp := china_problem(lon, lat, FIELD[self.polygon])) is not None:
                        self.add(row, "geometry", g.geom_type, cp)
                        return None, None, None, False
                    return lon, lat, polygon, True
        elif lon is not None and lat is not None and self.coord_sys is not CoordSys.WGS84:
            pt = geojson_to_wgs84({"type": "Point", "coordinates": [lon, lat]}, self.coord_sys)
            lon, lat = pt["coordinates"]
        if lon is None or lat is None:
            if lon is None and lat is None:
                self.add(
                    row,
                    "lon",
                    "",
                    InvalidInput("location: required: give 经度 lon and 纬度 lat (or a geometry)", field="location"),
                )
            else:
                self.add(row, "lon", "", InvalidInput("location: give both 经度 lon and 纬度 lat", field="location"))
            return None, None, None, False
        if math.isfinite(lon) and math.isfinite(lat) and (cp := china_problem(lon, lat, "location")) is not None:
            self.add(row, "lon", f"{lon}, {lat}", cp)  # before the range checks: it names swapped lon/lat
            return None, None, None, False
        try:
            point = shape(parse_geometry({"type": "Point", "coordinates": [lon, lat]}, "location", allowed=("Point",)))
        except InvalidInput as exc:
            self.add(row, "lon", f"{lon}, {lat}", exc)
            return None, None, None, False
        if (cp := china_problem(point.x, point.y, "location")) is not None:
            self.add(row, "lon", f"{lon}, {lat}", cp)
            ok = False
        return point.x, point.y, polygon, ok

    def stage(self, rows: Any) -> Any:
        """Each row checked (``place_fields`` one field at a time: every problem reported) and staged."""
        for number, cells in rows:
            raw = {k: cells[i] if i < len(cells) else None for k, i in self.index.items()}
            name = _cell_text(raw.get("name"))
            if name is not None and name.startswith(EXAMPLE_PREFIX):
                self.result.example_rows += 1
                continue
            self.result.rows += 1
            before = len(self.problems)
            v: dict[str, Any] = {}
            for key, c in self.columns.items():
                try:
                    v[key] = c.parse(raw.get(key), c.field)
                except InvalidInput as exc:
                    self.add(number, key, _cell_text(raw.get(key)), exc)
                    v[key] = None
            checked: dict[str, Any] = {}
            for key in dict.fromkeys(("name", "kind", "admin_code", *(k for k in self.columns if k in self.keys))):
                if key in ("location", self.polygon):
                    continue
                if v.get(key) is None:
                    if key in ("name", "kind", "admin_code") and _cell_text(raw.get(key)) is None:
                        self.add(number, key, "", InvalidInput(f"{FIELD[key]}: required", field=FIELD[key]))
                    continue
                try:
                    checked |= place_fields(self.keys, {key: v[key]}, max_vertices=self.max_vertices)
                except InvalidInput as exc:
                    self.add(number, key, raw.get(key), exc)
            origins = None
            if self.kind == "sites" and v.get("origin_area_codes") is not None:
                try:
                    origins = origin_codes({"origin_area_codes": v["origin_area_codes"]})
                except InvalidInput as exc:
                    self.add(number, "origin_area_codes", raw.get("origin_area_codes"), exc)
            lon, lat, polygon, _ = self.location(number, v.get("lon"), v.get("lat"), v.get("geometry"))
            kind = checked.get("kind")
            g = checked.get
            yield (
                number, g("name"), kind.value if kind is not None else None, g("admin_code"), lon, lat, polygon,
                g("planned_households"), g("planned_population"), g("opened_on"), origins, g("site_id"), g("area_mu"),
                g("planned_jobs"), g("operator"), len(self.problems) > before,
            )  # fmt: skip


def _level(value: str | None) -> m.AdminLevel | None:
    return m.AdminLevel(value) if value is not None else None


async def import_places(
    sm: SessionMaker,
    path: str | Path,
    kind: str,
    *,
    limits: FileLimits,
    tolerance_meters: float = 2000,
    max_vertices: int = 10_000,
    encoding: str | None = None,
    coord_sys: CoordSys = CoordSys.WGS84,
    layer: str | None = None,
    dry_run: bool = False,
    valid_only: bool = False,
) -> ImportResult:
    """Import relocation sites (``kind="sites"``) or facilities (``"facilities"``) in one transaction.

    Args:
        sm: the importing viewer's sessionmaker (a county officer: rows outside its areas are reported, not written), or
            the plain one (a system run, audited as ``system``).
        path: ``.csv`` (UTF-8 or GB18030 by the strict rule), ``.xlsx``, ``.geojson``/``.json`` or ``.gpkg`` (WGS84 CRS).
        kind: ``sites`` or ``facilities``.
        limits: settings ``imports``.
        tolerance_meters: settings ``registry.location_tolerance_meters`` (a location's distance from its admin area).
        max_vertices: settings ``features.max_vertices``.
        encoding: a CSV's encoding, overriding the rule.
        coord_sys: the coordinates' system (lon/lat columns and geometries): WGS84 (default), GCJ02 or BD09; stored WGS84.
        layer: a GeoPackage's layer (default: the first).
        dry_run: check and count, write nothing.
        valid_only: write the rows that pass, report the others (default: any problem → nothing written).

    Returns:
        ``ImportResult`` with ``records``: places inserted / updated / unchanged / rejected, and the problems (row = the
        spreadsheet's row, header = 1; a feature's number, 1-based, in GeoJSON/GeoPackage).

    Raises:
        FileRefused: the file as a whole; OutOfScope: planners and partners, or row-level security refused a write;
        ValueError: an unknown ``kind``. Nothing written in any of these cases.

    Source: writes relocation_site (+ site_origin) or facility, audit_log.
    """
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}: expected sites or facilities")
    columns = KINDS[kind][2]
    table = open_table(path, limits, encoding=encoding, layer=layer)
    header = table.header
    index = map_header(header, (*columns, GEOMETRY_COLUMN) if GEOMETRY in header else columns)
    result = ImportResult(table.kind, table.encoding, 0, 0, dry_run=dry_run, valid_only=valid_only)
    reader = _Rows(kind, header, index, coord_sys, max_vertices, result)
    levels = SITE_LEVELS if kind == "sites" else tuple(m.AdminLevel)
    try:
        return await _run(sm, kind, table, reader, index, result, levels, tolerance_meters, valid_only, dry_run)
    finally:
        table.close()


async def _run(
    sm: SessionMaker,
    kind: str,
    table: Table,
    reader: _Rows,
    index: dict[str, int],
    result: ImportResult,
    levels: Any,
    tolerance_meters: float,
    valid_only: bool,
    dry_run: bool,
) -> ImportResult:
    model, table_name, _columns, _keys, _polygon, action = KINDS[kind]
    try:
        async with sm() as s:
            scoped = await open_staging(s, _CREATE, "imp_place", reader.stage(table.rows), _STAGE)
            await s.execute(text("ANALYZE imp_place"))
            await s.execute(text(_match_sql(table_name)))
            add: Callable[[int, str, Any, AnjuError], None] = reader.add
            for r in (await s.execute(text(_check_sql(table_name)))).all():
                if scoped and not r.in_scope:
                    msg = f"adminCode: {r.admin_code} is outside your areas"
                    add(r.row, "admin_code", r.admin_code, InvalidInput(msg, field="adminCode"))
                    continue
                if (p := area_problem(r.admin_code, _level(r.admin_level), "adminCode", levels)) is not None:
                    add(r.row, "admin_code", r.admin_code, p)
                    continue
                if r.first_row < r.row:
                    msg = f"name: {r.name} in {r.admin_code} is also in row {r.first_row}; a place once per file"
                    add(r.row, "name", r.name, InvalidInput(msg, field="name"))
                elif r.matches > 1:
                    msg = (f"name: {r.matches} places named {r.name} are recorded in {r.admin_code}; correct them one by one "
                           f"({'updateRelocationSite' if kind == 'sites' else 'updateFacility'})")  # fmt: skip
                    add(r.row, "name", r.name, InvalidInput(msg, field="name"))
                near = SimpleNamespace(code=r.near_code, distance_meters=r.distance_meters)
                if (
                    r.near_code is not None
                    and (p := outside_area_problem(near, r.admin_code, tolerance_meters, "location")) is not None
                ):
                    add(r.row, "lon" if "lon" in index else "geometry", "", p)
                if r.site_id is not None and r.site_found is None:
                    add(
                        r.row,
                        "site_id",
                        r.site_id,
                        NotFound(f"siteId: relocation site {r.site_id} does not exist", field="siteId"),
                    )
                if r.missing_origin is not None:
                    msg = f"originAreaCodes: admin area {r.missing_origin} does not exist"
                    add(r.row, "origin_area_codes", r.missing_origin, NotFound(msg, field="originAreaCodes"))
                try:
                    check_period(r.opened_on, r.closed_on, "openedOn", "closedOn", blame_start=True)
                except InvalidInput as exc:
                    add(r.row, "opened_on", r.opened_on, exc)
                if r.opened_on is not None and r.first_resident is not None and r.first_resident < r.opened_on:
                    since = "since before its records begin" if r.first_resident == dt.date.min else f"since {r.first_resident}"
                    msg = f"openedOn: households live at relocation site {r.place_id} {since}, before {r.opened_on}"
                    add(r.row, "opened_on", r.opened_on, InvalidInput(msg, field="openedOn"))
            problems = reader.problems
            bad_rows = sorted({p[0] for p in problems if p[0] is not None})
            await s.execute(
                text("UPDATE imp_place i SET bad = true WHERE i.row = ANY(CAST(:rows AS integer[]))"), {"rows": bad_rows}
            )
            classify, update, insert = _statements(kind)
            await s.execute(text(classify))
            result.records = await staged_counts(s, "imp_place")
            result.problems = sorted((Problem(*p) for p in problems), key=lambda p: (p.row or 0, p.column))
            if (problems and not valid_only) or dry_run:
                return result
            await write_staged(
                s,
                staging="imp_place",
                table=model.__table__,
                entity=table_name,
                action=action,
                keys=(("place_id", "id"),),
                statements=(update, insert, *(_ORIGINS if kind == "sites" else ())),
                households=False,
            )
            await s.commit()
            result.written = True
    except DBAPIError as exc:
        client = client_error(exc)
        if client is None:
            raise
        raise client from None
    return result
