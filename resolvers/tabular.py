"""Spreadsheet files read row by row for imports: CSV (UTF-8 with or without BOM, GB18030/GBK) and XLSX, within limits.

Encoding of a CSV, decided from the bytes and never guessed: the whole file must decode as strict UTF-8 (a BOM is
dropped); if it does not, it must decode as strict GB18030 (a superset of GBK and GB2312, so files saved by Excel or WPS
as "CSV" on a Chinese Windows read too); if neither, the file is refused. Statistical detectors guess wrong on short
Chinese files (a few names can look like Latin-1, Big5 or Shift-JIS), the strict rule does not: GB18030 text is almost
never valid UTF-8. ``encoding`` overrides the rule.

XLSX: the zip directory is checked first (the sum of the declared uncompressed sizes against
``max_xlsx_unzipped_bytes``: a small file can unpack to gigabytes); Python's zipfile never inflates a member past its
declared size (it stops there and fails the CRC check), so the declared sizes bound the work. Then openpyxl reads the
first sheet in read-only mode, streaming rows (never the whole workbook in memory).

Row numbers are those a spreadsheet shows: the header is row 1, the first data row is row 2 (a CSV record spanning
several lines is one row).

GeoJSON (``.geojson``/``.json``) and GeoPackage (``.gpkg``): read with pyogrio (GDAL), the first layer (or the one
named); the file's CRS must be WGS84 lon/lat. The header is the attribute fields plus ``geometry`` (``GEOMETRY``); a
row's ``geometry`` cell is the feature's geometry as a GeoJSON object (None without one), for ``parse_geometry`` (the
API's checks) to judge. Row numbers are feature numbers, 1-based.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import zipfile
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resolvers.errors import InvalidInput

CHUNK = 1 << 16


GEOMETRY = "geometry"
"""The header of a GeoJSON/GeoPackage file's geometry column (``Table.header``)."""
GEO_KINDS = {".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg"}
WGS84_CRS = ("EPSG:4326", "OGC:CRS84")
"""CRS that pyogrio may report for WGS84 lon/lat; GDAL reports a GeoJSON without ``crs`` member as EPSG:4326 (RFC 7946)."""
_CRS84_WKT = re.compile(r'AUTHORITY\["OGC",\s*"CRS84"\]\]\s*$')


def crs_problem(crs: str | None) -> str | None:
    """None when ``crs`` (as pyogrio reports it) is WGS84 lon/lat, else the message refusing it."""
    if crs in WGS84_CRS or (crs is not None and _CRS84_WKT.search(crs)):
        return None
    hint = "expected WGS84 lon/lat (EPSG:4326 or OGC:CRS84); reproject first, e.g. ogr2ogr -t_srs EPSG:4326"
    if crs is None:
        return f"the file declares no CRS; {hint}"
    name = crs if len(crs) <= 60 else crs[:60] + "…"
    return f"CRS {name} is not WGS84 lon/lat; {hint}"


@dataclass(frozen=True)
class FileLimits:
    """Limits of an import file (settings ``imports``).

    Attributes:
        max_file_bytes: the file's size on disk, bytes.
        max_rows: data rows (the header not counted).
        max_cell_chars: characters of one cell.
        max_xlsx_unzipped_bytes: an XLSX's declared uncompressed size (all zip members), bytes.
    """

    max_file_bytes: int
    max_rows: int
    max_cell_chars: int
    max_xlsx_unzipped_bytes: int


class FileRefused(InvalidInput):
    """The file as a whole cannot be imported (size, kind, encoding, a limit, its header); nothing was read into the database."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="file")


@dataclass
class Table:
    """An opened file: its kind (``csv``/``xlsx``/``geojson``/``gpkg``), the CSV encoding used, the header and the data rows.

    ``rows`` yields (row number as the spreadsheet shows it, cells) for every non-blank row; cells are strings (CSV) or
    openpyxl values (str, int, float, bool, datetime, None). Iterating raises FileRefused at a limit or a decoding error.
    """

    kind: str
    encoding: str | None
    header: list[str]
    rows: Iterator[tuple[int, list[Any]]]
    closer: Callable[[], Any] | None = None

    def close(self) -> None:
        """Release the file (also when its rows were never read: an import refused before reading them)."""
        if self.closer is not None:
            self.closer()


def _mb(n: int) -> str:
    return f"{n / 1_048_576:,.1f} MiB"


def detect_encoding(path: Path) -> str:
    """The encoding of a CSV by the strict rule: ``utf-8-sig`` (valid UTF-8, BOM or not), else ``gb18030``.

    Streams the file (constant memory).

    Raises:
        FileRefused: UTF-16 (a BOM), or neither valid UTF-8 nor valid GB18030 (naming the line of the first bad byte).
    """
    with path.open("rb") as f:
        head = f.read(4)
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise FileRefused("file: UTF-16 text (Excel's 'Unicode text'); save it as 'CSV UTF-8' and import again")
    bad_line = 0
    for encoding in ("utf-8-sig", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)("strict")
        lines = 1
        try:
            with path.open("rb") as f:
                while chunk := f.read(CHUNK):
                    decoder.decode(chunk)
                    lines += chunk.count(b"\n")
                decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            bad_line = bad_line or lines
    raise FileRefused(
        f"file: neither UTF-8 nor GB18030/GBK text (first undecodable byte near line {bad_line}); "
        "save it as 'CSV UTF-8', or name its encoding with --encoding"
    )


def open_table(path: str | Path, limits: FileLimits, *, encoding: str | None = None, layer: str | None = None) -> Table:
    """Open a ``.csv``, ``.xlsx``, ``.geojson``/``.json`` or ``.gpkg`` file to read row by row, after the cheap checks.

    Args:
        path: the file; its kind comes from the suffix (``.csv``, ``.xlsx``, ``.geojson``, ``.json``, ``.gpkg``).
        limits: the import limits (size before anything, XLSX unzipped size from the zip directory before parsing;
            rows and cell length while reading).
        encoding: a CSV's encoding (any Python codec name, e.g. ``gbk``, ``utf-8``); None: the strict rule.
        layer: a GeoPackage's layer (default: the first).

    Returns:
        A ``Table`` whose ``rows`` iterator streams the data rows.

    Raises:
        FileRefused: missing, empty, too large, unknown kind, bad encoding, not a workbook, unpacking too large, no header.
    """
    p = Path(path)
    if not p.is_file():
        raise FileRefused(f"file: {p.name}: no such file")
    kind = ({".csv": "csv", ".xlsx": "xlsx"} | GEO_KINDS).get(p.suffix.lower())
    if kind is None:
        raise FileRefused(
            f"file: {p.name}: unknown kind {p.suffix!r}; expected .csv, .xlsx, .geojson or .gpkg (.xls: save it as .xlsx)"
        )
    size = p.stat().st_size
    if size > limits.max_file_bytes:
        raise FileRefused(f"file: {_mb(size)} is larger than the limit of {_mb(limits.max_file_bytes)} (imports.max_file_bytes)")
    if size == 0:
        raise FileRefused("file: empty; expected a header row and data rows")
    if kind == "csv":
        return _open_csv(p, limits, encoding)
    if kind == "xlsx":
        return _open_xlsx(p, limits)
    return _open_geo(p, kind, limits, layer)


def _check_cells(row: int, cells: list[Any], limits: FileLimits, header: list[str]) -> None:
    for i, v in enumerate(cells):
        if isinstance(v, str) and len(v) > limits.max_cell_chars:
            column = header[i] if i < len(header) else f"column {i + 1}"
            raise FileRefused(
                f"file: row {row}, column {column!r}: a cell of {len(v):,} characters; at most {limits.max_cell_chars:,} "
                "(imports.max_cell_chars)"
            )


def _blank(cells: list[Any]) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in cells)


def too_many_rows(limits: FileLimits) -> FileRefused:
    """The refusal of a file with more than ``limits.max_rows`` data rows."""
    return FileRefused(f"file: more than {limits.max_rows:,} data rows (imports.max_rows); split it into several files")


def _open_csv(p: Path, limits: FileLimits, encoding: str | None) -> Table:
    if encoding is not None:
        try:
            encoding = codecs.lookup(encoding).name
        except LookupError:
            raise FileRefused(f"--encoding {encoding[:40]!r}: unknown; e.g. utf-8, gb18030, gbk") from None
        if encoding == "utf-8":
            encoding = "utf-8-sig"  # a BOM is never data
    else:
        encoding = detect_encoding(p)
    chosen = encoding
    f = p.open("r", encoding=chosen, errors="strict", newline="")
    reader = _csv_reader(f, limits)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        f.close()
        raise FileRefused("file: empty; expected a header row and data rows") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        f.close()
        raise FileRefused(f"file: row 1 cannot be read as {chosen} CSV ({type(exc).__name__})") from None
    _check_cells(1, header, limits, header)

    return Table("csv", chosen, header, _csv_rows(reader, f, 1, limits, header, chosen), f.close)


def _csv_reader(lines: Any, limits: FileLimits) -> Any:
    """The csv module's reader of ``lines``, its field limit above ``max_cell_chars``.

    A longer cell is then refused by ``_check_cells``, naming its row and column, rather than by the csv module.
    """
    csv.field_size_limit(max(limits.max_cell_chars * 4 + 16, 1024))
    return csv.reader(lines)


def _midfile_codec(encoding: str) -> str:
    """The codec of a CSV's bytes after its start: ``utf-8-sig`` drops a BOM at the start only."""
    return "utf-8" if encoding == "utf-8-sig" else encoding


def _csv_rows(
    reader: Any, f: Any, number: int, limits: FileLimits, header: list[str], chosen: str
) -> Generator[tuple[int, list[Any]], None, None]:
    """A CSV's data records after row ``number`` as (row number, cells), blank ones skipped, within the limits; closes ``f``.

    Raises:
        FileRefused: a record that does not decode, a broken record, more than ``max_rows`` rows or a cell too long.
    """
    seen = 0
    try:
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError:
                raise FileRefused(
                    f"file: row {number + 1} is not {chosen} text; save the file as 'CSV UTF-8' or give --encoding"
                ) from None
            except csv.Error as exc:
                raise FileRefused(f"file: row {number + 1}: {exc} (a cell too long, or a quote not closed)") from None
            number += 1
            if _blank(cells):
                continue
            seen += 1
            if seen > limits.max_rows:
                raise too_many_rows(limits)
            if max(map(len, cells)) > limits.max_cell_chars:  # every cell a str (a CSV's); non-blank: at least one
                _check_cells(number, cells, limits, header)
            yield number, cells
    finally:
        f.close()


@dataclass(frozen=True)
class CsvPart:
    """A run of whole records of a CSV file: bytes ``start`` to ``end`` (exclusive), the first record being row ``row``."""

    start: int
    end: int
    row: int


class _Positions:
    """A CSV file's lines as the csv module reads them, with the byte offset after the last line read.

    Lines end as with ``newline=""`` (CR LF, LF or CR). The csv module reads a record's lines and no further, so after each
    record ``at`` is where the next one starts. ``last`` is the last line's bytes (re-encoded: ``split_csv`` checks them
    against the file).
    """

    def __init__(self, f: Any, encoding: str, bom: bool) -> None:
        self.lines = f
        self.encoding = _midfile_codec(encoding)
        self.at = 3 if bom else 0
        self.last = b""

    def __iter__(self) -> Iterator[str]:
        for line in self.lines:
            self.last = line.encode(self.encoding)
            self.at += len(self.last)
            yield line


CUTTABLE = frozenset(
    ("utf-8-sig", "utf-8", "gb18030", "gbk", "gb2312", "big5", "cp950", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
    + ("ascii", "iso8859-1", "cp1252")
)
"""The encodings (``codecs`` names) in which ``split_csv`` cuts a file: stateless, each character's bytes as long as its
re-encoding, so a line's bytes are counted exactly and a part's reading can begin between any two lines. In another
(UTF-7, ISO-2022, HZ: a line's bytes depend on the lines before it; ``--encoding`` takes any codec) a line can be shorter
than its bytes, and a cut checked against a repeated line falls a line early: the file is read in one process."""


def split_csv(path: str | Path, encoding: str, parts: int, limits: FileLimits) -> list[CsvPart]:
    """The data records of a CSV file in up to ``parts`` runs of about equal bytes, for as many processes to read at once.

    The file is read as ``encoding`` (as ``open_table`` decided it) by the same reader as ``open_table``, up to the last
    cut; the cuts fall between records as the csv module ends them (a quoted cell may hold line breaks). Each part is read
    by ``csv_part_rows``.

    Returns:
        The parts in file order: one (all the data rows) when the file is too short to cut, or when a cut cannot be placed
        for certain (an encoding not in ``CUTTABLE``; the bytes at a cut are not the line read: a codec that does not
        re-encode a line to its bytes).

    Raises:
        FileRefused: as ``open_table``'s rows (a record that does not decode, a broken one, a cell too long) before the
        last cut.
    """
    p = Path(path)
    size = p.stat().st_size
    with p.open("rb") as raw:
        bom = encoding == "utf-8-sig" and raw.read(3) == codecs.BOM_UTF8
    f = p.open("r", encoding=encoding, errors="strict", newline="")
    lines = _Positions(f, encoding, bom)
    reader = _csv_reader(lines, limits)
    try:  # row 1, the header, as open_table reads it (its refusals name the header's columns)
        header = [h.strip() for h in next(reader)]
    except (StopIteration, UnicodeDecodeError, csv.Error):
        f.close()
        return [CsvPart(0, size, 2)]  # open_table refuses such a file before it is split
    cuts = [(lines.at, 2, lines.last)]  # (byte offset, row number of the record starting there, the line before it)
    if encoding not in CUTTABLE:
        parts = 1
    rows: Generator[tuple[int, list[Any]], None, None] = _csv_rows(reader, f, 1, limits, header, encoding)
    try:
        for k in range(1, parts):
            target = size * k // parts
            for number, _ in rows:
                if lines.at >= target:
                    cuts.append((lines.at, number + 1, lines.last))
                    break
            else:
                break
    finally:
        rows.close()
        f.close()  # (a generator closed before it started runs no finally)
    while len(cuts) > 1 and cuts[-1][0] >= size:  # a cut at the end: no records after it
        cuts.pop()
    with p.open("rb") as raw:
        for at, _, last in cuts:
            raw.seek(at - len(last))
            if raw.read(len(last)) != last:
                cuts = cuts[:1]
                break
    ends = [c[0] for c in cuts[1:]] + [size]
    return [CsvPart(at, end, row) for (at, row, _), end in zip(cuts, ends, strict=True)]


class _Range(io.RawIOBase):
    """Bytes ``start`` to ``end`` of a file, as a file of its own."""

    def __init__(self, path: Path, start: int, end: int) -> None:
        self.f = path.open("rb")
        self.f.seek(start)
        self.left = end - start

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self.f.readinto(memoryview(b)[: min(len(b), self.left)])
        self.left -= n
        return n

    def close(self) -> None:
        self.f.close()
        super().close()


def csv_part_rows(
    path: str | Path, encoding: str, part: CsvPart, limits: FileLimits, header: list[str]
) -> Iterator[tuple[int, list[Any]]]:
    """The data rows of one ``split_csv`` part, as ``open_table``'s ``rows`` yields them for the same records.

    ``max_rows`` is checked within the part; the caller checks the parts' sum.

    Raises:
        FileRefused: as ``open_table``'s rows.
    """
    raw = io.BufferedReader(_Range(Path(path), part.start, part.end), CHUNK)
    f = io.TextIOWrapper(raw, encoding=_midfile_codec(encoding), errors="strict", newline="")
    return _csv_rows(_csv_reader(f, limits), f, part.row - 1, limits, header, encoding)


def csv_refusal(path: str | Path, encoding: str, limits: FileLimits) -> FileRefused | None:
    """What reading a CSV file's rows in one process (``open_table``'s, as ``encoding``) refuses it for first; None: nothing.

    For a file whose parts (``split_csv``) were refused: a part's reader finds a refusal of its own part, but the file as a
    whole is refused for the first one in file order, or for its row count before that, and an undecodable byte is reported
    on the row being read when the decoder meets it (which depends on where the reading began).
    """
    try:
        table = open_table(path, limits, encoding=encoding)
    except FileRefused as exc:
        return exc
    try:
        for _ in table.rows:
            pass
    except FileRefused as exc:
        return exc
    finally:
        table.close()
    return None


def _open_xlsx(p: Path, limits: FileLimits) -> Table:
    import openpyxl

    if not zipfile.is_zipfile(p):
        raise FileRefused("file: not an XLSX workbook (not a zip archive); .xls files: save them as .xlsx")
    with zipfile.ZipFile(p) as z:
        unzipped = sum(i.file_size for i in z.infolist())
    if unzipped > limits.max_xlsx_unzipped_bytes:
        raise FileRefused(
            f"file: the workbook unpacks to {_mb(unzipped)}, more than the limit of {_mb(limits.max_xlsx_unzipped_bytes)} "
            "(imports.max_xlsx_unzipped_bytes); refused before reading it"
        )
    try:
        wb = openpyxl.load_workbook(p, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise FileRefused(f"file: not a readable XLSX workbook ({type(exc).__name__})") from None
    ws = wb.worksheets[0]
    it = ws.iter_rows(values_only=True)
    try:
        first = next(it, None)
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        wb.close()
        raise FileRefused(f"file: its first sheet cannot be read ({type(exc).__name__})") from None
    if first is None or _blank(list(first)):
        wb.close()
        raise FileRefused("file: the first sheet's row 1 is empty; expected the header row there")
    header = [("" if v is None else str(v)).strip() for v in first]
    while header and not header[-1]:
        header.pop()
    _check_cells(1, header, limits, header)

    def rows() -> Iterator[tuple[int, list[Any]]]:
        seen = 0
        try:
            for number, values in enumerate(it, start=2):
                cells = list(values)
                if _blank(cells):
                    continue
                seen += 1
                if seen > limits.max_rows:
                    raise too_many_rows(limits)
                _check_cells(number, cells, limits, header)
                yield number, cells
        except (zipfile.BadZipFile, ValueError, OSError) as exc:
            raise FileRefused(f"file: the sheet cannot be read past row {seen + 1} ({type(exc).__name__})") from None
        finally:
            wb.close()

    return Table("xlsx", None, header, rows(), wb.close)


def _open_geo(p: Path, kind: str, limits: FileLimits, layer: str | None) -> Table:
    """A GeoJSON or GeoPackage layer as a table: its attribute fields and ``geometry`` (GeoJSON objects), by pyogrio."""
    import pyogrio
    import pyogrio.errors
    import shapely

    try:
        info = pyogrio.read_info(p, layer=layer)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise FileRefused(f"file: cannot read it as {kind} ({str(exc)[:200]})") from None
    if (problem := crs_problem(info.get("crs"))) is not None:
        raise FileRefused(f"file: {problem}")
    if int(info.get("features") or 0) > limits.max_rows:
        raise too_many_rows(limits)
    try:
        meta, _, geoms, values = pyogrio.raw.read(p, layer=layer, max_features=limits.max_rows + 1)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise FileRefused(f"file: cannot read it as {kind} ({str(exc)[:200]})") from None
    header = [str(c).strip() for c in meta["fields"]] + [GEOMETRY]
    _check_cells(1, header, limits, header)
    count = len(geoms) if geoms is not None else (len(values[0]) if values else 0)
    if count > limits.max_rows:
        raise too_many_rows(limits)

    def cell(v: Any) -> Any:
        if v is None or (isinstance(v, float) and v != v):  # GDAL's null
            return None
        if hasattr(v, "item"):  # a numpy scalar
            v = v.item()
        return v

    def rows() -> Iterator[tuple[int, list[Any]]]:
        for i in range(count):
            cells = [cell(col[i]) for col in values]
            wkb = geoms[i] if geoms is not None else None
            g = None
            if wkb is not None:
                try:
                    parsed = shapely.from_wkb(wkb)
                    g = None if parsed is None else json.loads(shapely.to_geojson(shapely.force_2d(parsed)))
                except (shapely.errors.GEOSException, ValueError):
                    g = {"type": "unreadable"}
            cells.append(g)
            _check_cells(i + 1, cells, limits, header)
            yield i + 1, cells

    return Table(kind, None, header, rows())
