"""Loading official division codes and boundaries (行政区划) into ``admin_area`` from a file.

GB/T 2260 codes (6 digits: province ``XX0000``, prefecture ``XXYY00``, county) and the NBS 12-digit statistical codes
(township = 9 digits, village = 12) with their names and, optionally, boundary polygons (WGS84 lon/lat, stored as
MultiPolygon SRID 4326). Input: GeoJSON or GeoPackage (read with pyogrio/GDAL) or CSV (UTF-8, with or without BOM).

Two steps: ``read_area_file`` reads and checks each row on its own (code shape, level, geometry type and lon/lat range,
duplicate codes); ``import_areas`` loads the rows into a temporary table in bulk (asyncpg COPY) and lets PostgreSQL check the
rest (parent chain per GB/T 2260 against the file and the database, ``ST_IsValid``) and write everything with one
``INSERT … ON CONFLICT DO UPDATE … WHERE … IS DISTINCT FROM`` in one transaction: every problem of the file is reported and
nothing is written while any remains, and a second run of the same file writes nothing.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Polygon
from sqlalchemy import text

import models as m
from resolvers.errors import InvalidInput
from resolvers.query import SessionMaker
from resolvers.tabular import crs_problem

CODE_FIELDS = ("code", "adcode", "区划代码")
"""Column names read as the division code, first found wins (``--code-field`` overrides)."""
NAME_FIELDS = ("name", "名称")
"""Column names read as the name (``--name-field`` overrides)."""
PARENT_FIELDS = ("parent_code",)
"""Optional column: the parent's code, checked against the one GB/T 2260 gives."""
LEVEL_FIELDS = ("level",)
"""Optional column: the level, checked against the one the code gives."""
LEVEL_NAMES: dict[str, m.AdminLevel] = {lv.value: lv for lv in m.AdminLevel} | {
    # the words of AMap/DataV boundary files
    "city": m.AdminLevel.PREFECTURE,
    "district": m.AdminLevel.COUNTY,
    "street": m.AdminLevel.TOWNSHIP,
}
_CODE = re.compile(r"[0-9]{6}([0-9]{3}([0-9]{3})?)?")
_SUFFIXES = {".csv": "csv", ".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg"}


@dataclass(frozen=True)
class AreaIssue:
    """One problem of an input file: where (``line 5``, ``feature 3``, ``file``), which field, what is wrong."""

    where: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.field}: {self.message}"


@dataclass(frozen=True)
class AreaRecord:
    """One division as read: its code, name, the level its code gives, the given parent code, its boundary.

    ``row`` is the CSV line (the header is line 1) or the feature number (1-based); ``wkb`` is a 2-D MultiPolygon in WGS84
    lon/lat (WKB, no SRID) or None (a code-only row, or one whose geometry was refused).
    """

    row: int
    code: str
    name: str
    level: m.AdminLevel
    parent_code: str | None
    wkb: bytes | None


@dataclass
class AreaFile:
    """A file's well-formed records and the problems found while reading it (``where`` names rows by ``row_word``)."""

    path: Path
    kind: str
    row_word: str
    records: list[AreaRecord] = field(default_factory=list)
    issues: list[AreaIssue] = field(default_factory=list)


@dataclass(frozen=True)
class ImportCounts:
    """What an import wrote (with ``dry_run``: would write): rows inserted, updated and left unchanged."""

    inserted: int
    updated: int
    unchanged: int
    dry_run: bool


class AreaImportError(InvalidInput):
    """The file has problems; ``issues`` lists every one of them (nothing was written)."""

    def __init__(self, issues: list[AreaIssue]) -> None:
        super().__init__(f"{len(issues)} problem(s) in the file; nothing written")
        self.issues = issues


def level_of_code(code: str) -> m.AdminLevel:
    """The level a well-formed code (6, 9 or 12 digits) stands for.

    Args:
        code: a GB/T 2260 code (``XX0000`` province, ``XXYY00`` prefecture, other 6-digit codes county) or an NBS statistical
            code (9 digits township, 12 digits village).

    Returns:
        The ``AdminLevel``.
    """
    if len(code) == 12:
        return m.AdminLevel.VILLAGE
    if len(code) == 9:
        return m.AdminLevel.TOWNSHIP
    if code.endswith("0000"):
        return m.AdminLevel.PROVINCE
    if code.endswith("00"):
        return m.AdminLevel.PREFECTURE
    return m.AdminLevel.COUNTY


def _text(value: Any) -> str | None:
    """A cell as text: None/NaN/blank → None; whole numbers (GeoJSON ``"adcode": 513432``) without a decimal point."""
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            value = int(value)
    if hasattr(value, "item"):  # numpy scalars
        return _text(value.item())
    s = str(value).strip()
    return s or None


def _pick(columns: list[str], override: str | None, candidates: tuple[str, ...]) -> str | None:
    if override is not None:
        return override if override in columns else None
    lower = {c.lower(): c for c in columns}
    for c in candidates:
        if c.lower() in lower:
            return lower[c.lower()]
    return None


def _geometry(wkb: bytes | None) -> tuple[bytes | None, str | None]:
    """(2-D MultiPolygon WKB, None) for a polygon in lon/lat range; (None, message) otherwise; (None, None) for none."""
    if wkb is None:
        return None, None
    try:
        g = shapely.from_wkb(wkb)
    except shapely.errors.GEOSException:
        return None, "unreadable geometry"
    if g is None:
        return None, None
    if not isinstance(g, Polygon | MultiPolygon):
        return None, f"{g.geom_type}; expected Polygon or MultiPolygon"
    if g.is_empty:
        return None, "empty geometry; give a polygon or no geometry"
    xy = shapely.get_coordinates(g)
    if not all(math.isfinite(v) for v in xy.flat):
        return None, "coordinates must be finite numbers"
    minx, miny, maxx, maxy = g.bounds
    for v in (minx, maxx):
        if not -180 <= v <= 180:
            return None, f"longitude {v} outside [-180, 180]; expected WGS84 lon/lat"
    for v in (miny, maxy):
        if not -90 <= v <= 90:
            return None, f"latitude {v} outside [-90, 90]; expected WGS84 lon/lat"
    g2 = shapely.force_2d(g)
    if isinstance(g2, Polygon):
        g2 = MultiPolygon([g2])
    return shapely.to_wkb(g2), None


def _parent_given(value: str) -> str | None:
    """A given parent code, with the short forms of lists that omit trailing zeros (``51`` → 510000, ``5134`` → 513400)."""
    if re.fullmatch(r"[0-9]{2}", value):
        return value + "0000"
    if re.fullmatch(r"[0-9]{4}", value):
        return value + "00"
    return value if _CODE.fullmatch(value) else None


def read_area_file(
    path: str | Path, *, code_field: str | None = None, name_field: str | None = None, layer: str | None = None
) -> AreaFile:
    """Read a file of divisions and check each row on its own.

    Checks: a code and a name in every row; code of 6, 9 or 12 digits; a given ``level`` (``province``, ``prefecture``,
    ``county``, ``township``, ``village``; also ``city``/``district``/``street``) equal to the one the code gives; a given
    ``parent_code`` well-formed (``51``/``5134`` read as 510000/513400); geometry Polygon/MultiPolygon or none, lon in
    [-180, 180] and lat in [-90, 90]; the file's CRS WGS84 (EPSG:4326 or OGC:CRS84); no code twice. The parent chain and
    polygon validity need the database: ``import_areas`` checks them.

    Args:
        path: a ``.geojson``/``.json``, ``.gpkg`` or ``.csv`` file (CSV: UTF-8, with or without BOM, no geometry).
        code_field: the column holding the code (default: the first of ``code``, ``adcode``, ``区划代码``).
        name_field: the column holding the name (default: the first of ``name``, ``名称``).
        layer: the GeoPackage layer (default: the first).

    Returns:
        An ``AreaFile``: the well-formed records and the problems found (``where`` = ``line N`` for CSV, counting the header
        as line 1; ``feature N``, 1-based, otherwise; ``file`` for the file as a whole).

    Raises:
        InvalidInput: the file is missing or of an unknown kind (by suffix), or GDAL cannot read it.
    """
    p = Path(path)
    kind = _SUFFIXES.get(p.suffix.lower())
    if kind is None:
        raise InvalidInput(f"{p.name}: unknown file kind; expected .geojson, .json, .gpkg or .csv", field="file")
    if not p.is_file():
        raise InvalidInput(f"{p}: no such file", field="file")
    out = AreaFile(p, kind, "line" if kind == "csv" else "feature")
    rows: list[tuple[int, dict[str, Any], bytes | None]] = []
    if kind == "csv":
        try:
            with p.open(encoding="utf-8-sig", newline="") as f:
                reader = csv.DictReader(f)
                columns = list(reader.fieldnames or [])
                for r in reader:
                    rows.append((reader.line_num, dict(r), None))
        except UnicodeDecodeError as exc:
            line = p.read_bytes()[: exc.start].count(b"\n") + 1
            out.issues.append(
                AreaIssue(f"line {line}", "file", "not UTF-8 text (a GB18030/GBK file? save it as UTF-8 and import again)")
            )
            return out
    else:
        import pyogrio
        import pyogrio.errors

        try:
            meta, _, geoms, values = pyogrio.raw.read(p, layer=layer)
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
            raise InvalidInput(f"{p.name}: cannot read it as {kind} ({str(exc)[:200]})", field="file") from exc
        problem = crs_problem(meta.get("crs"))
        if problem:
            out.issues.append(AreaIssue("file", "crs", problem))
            return out
        columns = [str(c) for c in meta["fields"]]
        for i in range(len(geoms) if geoms is not None else 0):
            rows.append((i + 1, {c: values[j][i] for j, c in enumerate(columns)}, geoms[i]))
    code_col = _pick(columns, code_field, CODE_FIELDS)
    name_col = _pick(columns, name_field, NAME_FIELDS)
    parent_col = _pick(columns, None, PARENT_FIELDS)
    level_col = _pick(columns, None, LEVEL_FIELDS)
    for col, given, candidates, option in (
        (code_col, code_field, CODE_FIELDS, "--code-field"),
        (name_col, name_field, NAME_FIELDS, "--name-field"),
    ):
        if col is None:
            wanted = repr(given) if given else " or ".join(candidates)
            listed = ", ".join(columns) or "none"
            out.issues.append(AreaIssue("file", option[2:], f"no column {wanted} (columns: {listed}); name it with {option}"))
    if code_col is None or name_col is None:
        return out
    first_row: dict[str, int] = {}
    for row, values_of, wkb in rows:
        where = f"{out.row_word} {row}"
        code = _text(values_of.get(code_col))
        name = _text(values_of.get(name_col))
        if code is None:
            out.issues.append(AreaIssue(where, code_col, "missing; expected the division code"))
        elif not _CODE.fullmatch(code):
            out.issues.append(
                AreaIssue(where, code_col, f"{code[:40]!r} is not 6, 9 or 12 digits (GB/T 2260 / NBS statistical code)")
            )
        if name is None:
            out.issues.append(AreaIssue(where, name_col, "missing; expected the division's name"))
        elif len(name) > 100 or any(ord(ch) < 32 for ch in name):
            out.issues.append(AreaIssue(where, name_col, "expected 1 to 100 characters without control characters"))
        geom, geom_problem = _geometry(wkb)
        if geom_problem:
            out.issues.append(AreaIssue(where, "geometry", geom_problem))
        if code is None or not _CODE.fullmatch(code):
            continue
        level = level_of_code(code)
        given_level = _text(values_of.get(level_col)) if level_col else None
        if given_level is not None:
            named = LEVEL_NAMES.get(given_level.lower())
            if named is None:
                out.issues.append(
                    AreaIssue(where, level_col or "level", f"{given_level[:40]!r} is not one of {', '.join(LEVEL_NAMES)}")
                )
            elif named is not level:
                out.issues.append(
                    AreaIssue(
                        where, level_col or "level", f"{given_level!r} but code {code} is a {level.value} ({_level_rule(level)})"
                    )
                )
        given_parent = _text(values_of.get(parent_col)) if parent_col else None
        parent = None
        if given_parent is not None:
            parent = _parent_given(given_parent)
            if parent is None:
                msg = f"{given_parent[:40]!r} is not a division code (6, 9 or 12 digits)"
                out.issues.append(AreaIssue(where, parent_col or "parent_code", msg))
        if code in first_row:
            out.issues.append(AreaIssue(where, code_col, f"code {code} also in {out.row_word} {first_row[code]}"))
            continue
        first_row[code] = row
        if name is not None and len(name) <= 100 and "\x00" not in name:
            # loaded for the database's checks even when the row has other problems (not a name it cannot hold)
            out.records.append(AreaRecord(row, code, name, level, parent, geom))
    return out


def _level_rule(level: m.AdminLevel) -> str:
    return {
        m.AdminLevel.PROVINCE: "XX0000",
        m.AdminLevel.PREFECTURE: "XXYY00",
        m.AdminLevel.COUNTY: "6 digits, not ending in 00",
        m.AdminLevel.TOWNSHIP: "9 digits",
        m.AdminLevel.VILLAGE: "12 digits",
    }[level]


_CREATE = """
CREATE TEMP TABLE anju_area_import (
    row integer NOT NULL, code text NOT NULL, name text NOT NULL, level text NOT NULL, parent_given text, wkb bytea,
    parent text, geom geometry(MultiPolygon, 4326)
) ON COMMIT DROP
"""
_COLUMNS = ("row", "code", "name", "level", "parent_given", "wkb")

# GB/T 2260 parents: village → its first 9 digits, township → first 6, county → XXYY00 when that prefecture is in the
# file or the database (else XX0000: a county-level unit administered by the province), prefecture → XX0000.
_PREPARE = """
UPDATE anju_area_import t SET
    geom = ST_GeomFromWKB(t.wkb, :srid),
    parent = CASE
        WHEN length(t.code) = 12 THEN left(t.code, 9)
        WHEN length(t.code) = 9 THEN left(t.code, 6)
        WHEN t.code LIKE '__0000' THEN NULL
        WHEN t.code LIKE '____00' THEN left(t.code, 2) || '0000'
        WHEN EXISTS (SELECT 1 FROM anju_area_import p WHERE p.code = left(t.code, 4) || '00')
          OR EXISTS (SELECT 1 FROM admin_area p WHERE p.code = left(t.code, 4) || '00') THEN left(t.code, 4) || '00'
        ELSE left(t.code, 2) || '0000'
    END
"""

_CHECK = """
SELECT row, 'parent_code' AS field,
       format('%s, but the parent of %s is %s (GB/T 2260)', parent_given, code, coalesce(parent, 'none: a province'))
FROM anju_area_import WHERE parent_given IS DISTINCT FROM parent AND parent_given IS NOT NULL
UNION ALL
SELECT t.row, 'parent_code',
       format('parent %s of %s is neither in the file nor in the database', t.parent, t.code)
       || CASE WHEN length(t.code) = 6 AND t.parent LIKE '__0000' AND t.code NOT LIKE '____00'
               THEN format(' (nor is prefecture %s, the parent of a county under a prefecture)', left(t.code, 4) || '00')
               ELSE '' END
FROM anju_area_import t
WHERE t.parent IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM anju_area_import p WHERE p.code = t.parent)
  AND NOT EXISTS (SELECT 1 FROM admin_area p WHERE p.code = t.parent)
UNION ALL
SELECT row, 'geometry', 'invalid polygon: ' || ST_IsValidReason(geom)
FROM anju_area_import WHERE geom IS NOT NULL AND NOT ST_IsValid(geom)
ORDER BY 1, 2
"""

# A row without geometry keeps the boundary already stored (a code list never erases polygons).
_NEW = "coalesce(t.geom, a.geom)"
_COUNT = f"""
SELECT count(*) FILTER (WHERE a.code IS NULL) AS inserted,
       count(*) FILTER (WHERE a.code IS NOT NULL AND (a.name, a.level, a.parent_code, a.geom)
                        IS DISTINCT FROM (t.name, CAST(t.level AS admin_level), t.parent, {_NEW})) AS updated,
       count(*) AS total
FROM anju_area_import t LEFT JOIN admin_area a ON a.code = t.code
"""

# One statement; parents first by code length although PostgreSQL checks the self-referencing foreign key at the end of the
# statement anyway (RI triggers of non-deferrable constraints fire after the statement, not per row).
_UPSERT = """
WITH written AS (
    INSERT INTO admin_area AS a (code, name, level, parent_code, geom)
    SELECT code, name, CAST(level AS admin_level), parent, geom FROM anju_area_import ORDER BY length(code), code
    ON CONFLICT (code) DO UPDATE
        SET name = excluded.name, level = excluded.level, parent_code = excluded.parent_code,
            geom = coalesce(excluded.geom, a.geom)
        WHERE (a.name, a.level, a.parent_code, a.geom)
              IS DISTINCT FROM (excluded.name, excluded.level, excluded.parent_code, coalesce(excluded.geom, a.geom))
    RETURNING xmax = 0 AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM written
"""


async def import_areas(sm: SessionMaker, area_file: AreaFile, *, dry_run: bool = False) -> ImportCounts:
    """Check a read file against the database and write its divisions into ``admin_area``, in one transaction.

    PostgreSQL checks, over all rows at once: each row's parent per GB/T 2260 (village → first 9 digits, township → first 6,
    county → ``XXYY00`` if that prefecture is in the file or the database, else ``XX0000``; prefecture → ``XX0000``) exists in
    the file or the database and equals a given ``parent_code``; polygons are valid (``ST_IsValid``; refused with
    ``ST_IsValidReason``, never repaired). Then one ``INSERT … ON CONFLICT (code) DO UPDATE … WHERE (name, level,
    parent_code, geom) IS DISTINCT FROM …`` writes new and changed rows only; it is not sent at all when nothing differs, so
    a second run of a file writes nothing (and does not set off ``admin_area``'s statement trigger, which locates every
    site, facility and household again). A row without geometry leaves a stored boundary as it is.

    Args:
        sm: the sessionmaker (the login role: admin areas are written by the operator, not through the API).
        area_file: what ``read_area_file`` returned; its issues are reported together with the database's.
        dry_run: check and count, then roll back: nothing is written.

    Returns:
        ``ImportCounts``: rows inserted, updated (or with ``dry_run``: that would be) and unchanged.

    Raises:
        AreaImportError: any problem in the file (``issues`` lists all, read and database checks together); nothing written.

    Source: the file; writes ``admin_area(code, name, level, parent_code, geom)`` (DESIGN §4), never ``assistance_tier``.
    """
    issues = list(area_file.issues)
    if any(i.where == "file" for i in issues):
        raise AreaImportError(issues)
    records = [(r.row, r.code, r.name, r.level.value, r.parent_code, r.wkb) for r in area_file.records]
    async with sm() as s:
        await s.execute(text("SET LOCAL statement_timeout = 0"))  # an operator's bulk load, not a request
        await s.execute(text(_CREATE))
        conn = await s.connection()
        apg: Any = (await conn.get_raw_connection()).driver_connection  # asyncpg's connection: COPY
        await apg.copy_records_to_table("anju_area_import", records=records, columns=_COLUMNS)
        await s.execute(text(_PREPARE), {"srid": m.SRID})
        for row, fld, msg in (await s.execute(text(_CHECK))).all():
            issues.append(AreaIssue(f"{area_file.row_word} {row}", fld, msg))
        if issues:
            order = {id(i): n for n, i in enumerate(issues)}
            issues.sort(key=lambda i: (i.where != "file", _row_of(i), order[id(i)]))
            raise AreaImportError(issues)
        inserted, updated, total = (await s.execute(text(_COUNT))).one()
        if not dry_run and inserted + updated:
            inserted, updated = (await s.execute(text(_UPSERT))).one()
        if not dry_run:
            await s.commit()
        # leaving the session without a commit rolls back (dry run): the temporary table goes with it
    return ImportCounts(inserted, updated, total - inserted - updated, dry_run)


def _row_of(issue: AreaIssue) -> int:
    tail = issue.where.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0
