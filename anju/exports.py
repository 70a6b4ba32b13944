"""Exports: ``anju export KIND …`` and ``GET /exports/{kind}.{fmt}?<filters>``, one code path (``export_chunks``).

Formats (``resolvers.exports.FORMATS``):

- ``csv``: UTF-8 with a BOM (Excel opens it right), the header row Chinese-and-English, then PostgreSQL's own
  ``COPY (SELECT …) TO STDOUT (FORMAT csv)`` of the kind's statement, streamed as it comes (constant memory). Text that a
  spreadsheet would take for a formula is prefixed with ``'`` in SQL (``spreadsheet_safe``).
- ``xlsx``: xlsxwriter in ``constant_memory`` mode, rows fetched from a server-side cursor in batches and written in a
  worker thread; codes and ID numbers are strings (never numbers: Excel keeps 15 digits), text is written as strings
  (never a formula) and formula-looking text carries Excel's quote prefix; dates are dates, yuan numbers. A sheet holds
  at most 1,048,575 rows: longer lists continue on further sheets, each with the header. A last sheet ``说明 notes``
  tells the kind, filters, viewer and time of the export.
- ``gpkg`` / ``fgb``: pyogrio (GDAL) ``write_arrow`` fed batch by batch (Arrow record batches) from the cursor,
  written to a temporary file and then streamed; field names are the Chinese-and-English headers; EPSG:4326.
- ``geojson``: RFC 7946 FeatureCollection; each Feature built by PostgreSQL (``json_build_object``), streamed.

Every statement runs in the viewer's scoped transaction (``resolvers.access.scoped_sessionmaker``): the rows and masking
are exactly GraphQL's. Coverage runs in the viewer's aggregate scope (partners: their paired counties) and is suppressed
for partners as in GraphQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime as dt
import io
import json
import logging
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from resolvers.access import AGGREGATES, RECORDS, Role, Viewer, scoped_sessionmaker
from resolvers.errors import AnjuError
from resolvers.exports import FORMATS, FORMULA_START, ExportArgs, ExportKind, kind_named, parse_filters, source_select
from resolvers.query import SessionMaker
from resolvers.sqljson import compile_statement

log = logging.getLogger("anju.exports")
BATCH = 2000
"""Rows fetched from the server-side cursor at a time (XLSX, GIS formats)."""
CHUNK = 1 << 16
"""Bytes per streamed chunk (GeoJSON, files)."""
XLSX_ROWS = 1_048_575
"""Data rows per XLSX sheet (Excel's limit is 1,048,576 rows, the header included)."""
BOM = "\ufeff".encode()


def safe_text(v: str) -> str:
    """Python's ``spreadsheet_safe`` (for rows computed in Python: aggregates): ``'`` before formula-looking text."""
    return "'" + v if v[:1] in FORMULA_START else v


async def _driver(s: Any) -> Any:
    conn = await s.connection()
    return (await conn.get_raw_connection()).driver_connection


async def _plan(s: Any, stmt: Any) -> Any:
    """``stmt`` compiled for the session's dialect (asyncpg ``$n`` parameters)."""
    return compile_statement(stmt, (await s.connection()).dialect)


async def _cursor_batches(s: Any, stmt: Any) -> AsyncIterator[list[Any]]:
    """The rows of ``stmt`` in ``s``'s transaction from a server-side cursor, ``BATCH`` at a time."""
    plan = await _plan(s, stmt)
    cur = await (await _driver(s)).cursor(plan.sql, *plan.params)
    while batch := await cur.fetch(BATCH):
        yield batch


def _sessionmaker(sm: SessionMaker, kind: ExportKind, viewer: Viewer) -> SessionMaker:
    mode = AGGREGATES if kind.aggregate is not None and viewer.role is Role.PARTNER else RECORDS
    return scoped_sessionmaker(sm, viewer, mode)


async def _rows(
    sm: SessionMaker, kind: ExportKind, a: ExportArgs, viewer: Viewer, k: int | None, geometry: str | None, safe: bool
) -> AsyncGenerator[list[Any]]:
    """Batches of rows: the fields' values (then the geometry as ``geometry`` asks: ``wkb``/``geojson``/None)."""
    scoped = _sessionmaker(sm, kind, viewer)
    if kind.aggregate is not None:
        rows = await kind.aggregate(scoped, a, viewer, k)
        n = len(kind.fields)
        extra = {"wkb": n, "geojson": n + 1}.get(geometry or "")
        out = [(*r[:n], *([r[extra]] if extra is not None else [])) for r in rows]
        if safe:
            out = [tuple(safe_text(v) if isinstance(v, str) else v for v in r) for r in out]
        yield out
        return
    async with scoped() as s, s.begin():
        async for batch in _cursor_batches(s, source_select(kind, a, viewer, geometry=geometry, safe=safe)):
            yield batch


# --------------------------------------------------------------------------- CSV


CSV_STALL_SECONDS = 120
"""A CSV download whose client reads nothing for this long is ended (its database connection freed)."""


def _csv_line(cells: list[Any]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerow(cells)
    return buf.getvalue().encode()


async def _csv(sm: SessionMaker, kind: ExportKind, a: ExportArgs, viewer: Viewer, k: int | None) -> AsyncIterator[bytes]:
    yield BOM + _csv_line([f.header for f in kind.fields])
    if kind.aggregate is not None:
        async for batch in _rows(sm, kind, a, viewer, k, None, True):
            buf = io.StringIO()
            csv.writer(buf).writerows(["" if v is None else v for v in r] for r in batch)
            yield buf.getvalue().encode()
        return
    stmt = source_select(kind, a, viewer, geometry=None, safe=True)
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=16)  # back-pressure: COPY waits for a slow client

    async def sink(chunk: bytes) -> None:
        # a client that takes nothing for CSV_STALL_SECONDS ends the download (and frees the connection)
        async with asyncio.timeout(CSV_STALL_SECONDS):
            await queue.put(bytes(chunk))

    async with _sessionmaker(sm, kind, viewer)() as s, s.begin():
        # The COPY lasts as long as the client takes to read the file: the service's per-statement timeout (30 s, meant
        # for requests) cut a slow client's 214 MB province roster off mid-file. A stalled client is bounded instead.
        await s.execute(text("SET LOCAL statement_timeout = 0"))
        plan = await _plan(s, stmt)
        driver = await _driver(s)

        async def copy() -> None:
            try:
                await driver.copy_from_query(plan.sql, *plan.params, output=sink, format="csv")
            finally:
                await queue.put(None)

        task = asyncio.create_task(copy())
        try:
            while (chunk := await queue.get()) is not None:
                yield chunk
            await task  # its error, if any
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


# --------------------------------------------------------------------------- XLSX


class _Sheets:
    """An xlsxwriter workbook in constant-memory mode, rows appended batch by batch (in a worker thread)."""

    def __init__(self, path: Path, kind: ExportKind) -> None:
        import xlsxwriter

        self.kind = kind
        self.wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_formulas": False})
        self.bold = self.wb.add_format({"bold": True, "bg_color": "#DDEBF7"})
        self.text = self.wb.add_format({"num_format": "@"})
        self.quoted = self.wb.add_format({"num_format": "@", "quote_prefix": True})
        self.date = self.wb.add_format({"num_format": "yyyy-mm-dd"})
        self.ws: Any = None
        self.sheets = 0
        self.row = XLSX_ROWS  # a new sheet before the first row
        self.count = 0

    def _sheet(self) -> None:
        self.sheets += 1
        name = self.kind.title if self.sheets == 1 else f"{self.kind.title} ({self.sheets})"
        self.ws = self.wb.add_worksheet(name[:31])
        for i, f in enumerate(self.kind.fields):
            self.ws.set_column(i, i, max(10, len(f.header) + 2), self.text if f.type == "text" else None)
            self.ws.write_string(0, i, f.header, self.bold)
        self.ws.freeze_panes(1, 0)
        self.row = 0

    def write(self, batch: list[Any]) -> None:
        fields = self.kind.fields
        for rec in batch:
            if self.row >= XLSX_ROWS:
                self._sheet()
            self.row += 1
            ws, r = self.ws, self.row
            for i, f in enumerate(fields):
                v = rec[i]
                if v is None:
                    continue
                if f.type == "text":
                    s = str(v)
                    ws.write_string(r, i, s, self.quoted if s[:1] in FORMULA_START else self.text)
                elif f.type == "date" and isinstance(v, dt.date):
                    ws.write_datetime(r, i, v, self.date)
                elif isinstance(v, int | float | Decimal):
                    ws.write_number(r, i, float(v))
                else:
                    ws.write_string(r, i, str(v), self.text)
        self.count += len(batch)

    def close(self, notes: list[tuple[str, str]]) -> None:
        if self.ws is None:
            self._sheet()
        ws = self.wb.add_worksheet("说明 notes")
        ws.set_column(0, 0, 24)
        ws.set_column(1, 1, 100)
        for i, (k, v) in enumerate(notes):
            ws.write_string(i, 0, k, self.bold)
            ws.write_string(i, 1, v)
        self.wb.close()


def _notes(kind: ExportKind, a: ExportArgs, params: dict[str, str], viewer: Viewer, rows: int) -> list[tuple[str, str]]:
    return [
        ("导出 export", f"{kind.title} ({kind.name})"),
        ("说明 note", kind.note),
        ("筛选 filters", "; ".join(f"{k}={v}" for k, v in sorted(params.items())) or "无 none"),
        ("日期 asOf", a.as_of.isoformat()),
        ("用户 viewer", f"{viewer.name} ({viewer.role.name})"),
        ("行数 rows", str(rows)),
        ("时间 exported at", dt.datetime.now(dt.UTC).isoformat(timespec="seconds")),
    ]


async def _xlsx(
    sm: SessionMaker, kind: ExportKind, a: ExportArgs, viewer: Viewer, k: int | None, path: Path, params: dict[str, str]
) -> None:
    sheets = _Sheets(path, kind)
    async for batch in _rows(sm, kind, a, viewer, k, None, False):
        await asyncio.to_thread(sheets.write, batch)
    await asyncio.to_thread(sheets.close, _notes(kind, a, params, viewer, sheets.count))


# --------------------------------------------------------------------------- GeoPackage, FlatGeobuf


def _arrow_schema(kind: ExportKind) -> Any:
    import pyarrow as pa

    types = {"text": pa.string(), "integer": pa.int64(), "number": pa.float64(), "date": pa.date32()}
    geometry = pa.field("geometry", pa.binary(), metadata={"ARROW:extension:name": "geoarrow.wkb"})
    return pa.schema([pa.field(f.header, types[f.type]) for f in kind.fields] + [geometry])


def _arrow_batch(kind: ExportKind, schema: Any, batch: list[Any]) -> Any:
    import pyarrow as pa

    cols = []
    for i, f in enumerate(kind.fields):
        values = [r[i] for r in batch]
        if f.type == "number":
            values = [None if v is None else float(v) for v in values]
        elif f.type == "text":
            values = [None if v is None else str(v) for v in values]
        cols.append(pa.array(values, type=schema.field(i).type))
    cols.append(pa.array([None if r[-1] is None else bytes(r[-1]) for r in batch], type=pa.binary()))
    return pa.RecordBatch.from_arrays(cols, schema=schema)


async def _gis(sm: SessionMaker, kind: ExportKind, a: ExportArgs, viewer: Viewer, k: int | None, path: Path, fmt: str) -> None:
    """Rows → Arrow record batches → pyogrio ``write_arrow`` in a worker thread, which pulls each batch from the loop."""
    import pyarrow as pa
    from pyogrio.raw import write_arrow

    loop = asyncio.get_running_loop()
    schema = _arrow_schema(kind)
    batches = _rows(sm, kind, a, viewer, k, "wkb", False)

    async def next_batch() -> list[Any]:
        return await batches.__anext__()

    def pull() -> Iterator[Any]:
        while True:
            try:
                batch = asyncio.run_coroutine_threadsafe(next_batch(), loop).result()
            except StopAsyncIteration:
                return
            yield _arrow_batch(kind, schema, batch)

    def write() -> None:
        reader = pa.RecordBatchReader.from_batches(schema, pull())
        write_arrow(
            reader,
            str(path),
            layer=kind.name,
            driver="GPKG" if fmt == "gpkg" else "FlatGeobuf",
            geometry_name="geometry",
            geometry_type=kind.geometry_type,
            crs="EPSG:4326",
            encoding="UTF-8" if fmt == "gpkg" else None,
            # FlatGeobuf's spatial index refuses features without a geometry (a household without a dwelling): no index,
            # no row lost
            layer_options={"SPATIAL_INDEX": "NO"} if fmt == "fgb" else None,
        )

    try:
        await asyncio.to_thread(write)
    finally:
        await batches.aclose()


# --------------------------------------------------------------------------- GeoJSON


async def _geojson(sm: SessionMaker, kind: ExportKind, a: ExportArgs, viewer: Viewer, k: int | None) -> AsyncIterator[bytes]:
    head = {"type": "FeatureCollection", "name": kind.name}
    yield (json.dumps(head, ensure_ascii=False)[:-1] + ', "features": [\n').encode()
    first = True
    if kind.aggregate is not None:
        async for batch in _rows(sm, kind, a, viewer, k, "geojson", False):
            parts = []
            for r in batch:
                props = {f.header: _json_value(v) for f, v in zip(kind.fields, r, strict=False)}
                geom = r[-1] or "null"
                parts.append(f'{{"type": "Feature", "geometry": {geom}, "properties": {json.dumps(props, ensure_ascii=False)}}}')
            if parts:
                yield (("" if first else ",\n") + ",\n".join(parts)).encode()
                first = False
    else:
        async with _sessionmaker(sm, kind, viewer)() as s, s.begin():
            buf: list[str] = []
            size = 0
            async for batch in _cursor_batches(s, source_select(kind, a, viewer, geometry="feature", safe=False)):
                for (text,) in batch:
                    buf.append(text)
                    size += len(text)
                if size >= CHUNK:
                    yield (("" if first else ",\n") + ",\n".join(buf)).encode()
                    first, buf, size = False, [], 0
            if buf:
                yield (("" if first else ",\n") + ",\n".join(buf)).encode()
    yield b"\n]}\n"


def _json_value(v: Any) -> Any:
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    return v


# --------------------------------------------------------------------------- one entry for both


async def export_chunks(
    sm: SessionMaker,
    kind: ExportKind,
    fmt: str,
    a: ExportArgs,
    viewer: Viewer,
    *,
    k: int | None,
    params: dict[str, str] | None = None,
) -> AsyncGenerator[bytes]:
    """The export file's bytes, chunk by chunk.

    Args:
        sm: the service's (unscoped) sessionmaker; the viewer's scope is applied here.
        kind: the kind (``kind.check_viewer`` and ``check_format`` passed).
        fmt: one of ``FORMATS``.
        a: the filters (``parse_filters``).
        viewer: who asks.
        k: partners' small-cell threshold (households), None for others.
        params: the filters as given (XLSX notes).
    """
    if fmt == "csv":
        async for chunk in _csv(sm, kind, a, viewer, k):
            yield chunk
        return
    if fmt == "geojson":
        async for chunk in _geojson(sm, kind, a, viewer, k):
            yield chunk
        return
    with tempfile.TemporaryDirectory(prefix="anju-export-") as tmp:
        path = Path(tmp) / f"{kind.name}.{fmt}"
        if fmt == "xlsx":
            await _xlsx(sm, kind, a, viewer, k, path, params or {})
        else:
            await _gis(sm, kind, a, viewer, k, path, fmt)
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk


def prepare(kind_name: str, fmt: str, params: dict[str, str], viewer: Viewer, settings: Any) -> tuple[ExportKind, ExportArgs]:
    """The kind and its validated filters for ``viewer``: what both entry points check before any row is read.

    Raises:
        NotFound: unknown kind. InvalidInput: unknown format, a GIS format of a kind without geometry, a bad filter.
        OutOfScope: a partner and a household-level kind (or coverage below county level).
    """
    kind = kind_named(kind_name)
    kind.check_format(fmt)
    kind.check_viewer(viewer)
    today = dt.datetime.now(ZoneInfo(settings.timezone)).date()
    a = parse_filters(kind, params, today=today, threshold=settings.monitoring.per_capita_threshold)
    kind.check_args(a, viewer)
    return kind, a


def suppression_k(viewer: Viewer, settings: Any) -> int | None:
    """Partners' small-cell threshold k (households; setting privacy.min_cell_households), None for other viewers."""
    return settings.privacy.min_cell_households if viewer.suppresses_small_cells else None


STATUS = {"BAD_USER_INPUT": 400, "FORBIDDEN": 403, "NOT_FOUND": 404}


async def download(request: Request) -> Response:
    """``GET /exports/{kind}.{fmt}?<filters>``: the export as a streamed attachment.

    Filters are query parameters named as in GraphQL (``areaCode``, ``siteId``, ``asOf``, ``zeroEmployment``, ``bbox``,
    ``kinds``, ``year``, ``perCapitaThreshold``, ``level``; which ones a kind accepts: docs/api.md). 401/503 as every
    request (``ViewerMiddleware``), 404 ``NOT_FOUND`` for an unknown kind or format, 400 ``BAD_USER_INPUT`` naming the
    parameter, 403 ``FORBIDDEN`` for partners and household records. The first chunk is produced before the answer
    starts, so a failing query still answers a JSON error, not a cut file.
    """
    from anju.app import _error_response

    viewer: Viewer = request.state.viewer
    settings = request.state.settings
    kind_name, fmt = request.path_params["kind"], request.path_params["fmt"]
    if fmt not in FORMATS:
        return _error_response(f"format: {fmt[:20]!r} is not one of {', '.join(FORMATS)}", 404, "NOT_FOUND")
    params = dict(request.query_params)
    try:
        kind, a = prepare(kind_name, fmt, params, viewer, settings)
    except AnjuError as exc:
        return _error_response(exc.message, STATUS.get(exc.code, 400), exc.code)
    chunks = export_chunks(request.state.sessionmaker, kind, fmt, a, viewer, k=suppression_k(viewer, settings), params=params)
    try:
        first = await chunks.__anext__()
    except AnjuError as exc:
        await chunks.aclose()
        return _error_response(exc.message, STATUS.get(exc.code, 400), exc.code)
    except Exception as exc:
        await chunks.aclose()
        log.warning("export %s.%s failed (%s)", kind.name, fmt, type(exc).__name__)
        return _error_response("the export failed; try again shortly", 503, "INTERNAL")

    async def body() -> AsyncIterator[bytes]:
        yield first
        async for chunk in chunks:
            yield chunk

    name = f"{kind.name}-{a.as_of.isoformat()}.{fmt}"
    return StreamingResponse(
        body(),
        media_type=FORMATS[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "private, no-store"},
    )


async def export_to_file(
    sm: SessionMaker,
    kind: ExportKind,
    fmt: str,
    a: ExportArgs,
    viewer: Viewer,
    path: Path,
    *,
    k: int | None,
    params: dict[str, str],
) -> int:
    """``export_chunks`` written to ``path`` (``anju export``); answers the bytes written."""
    size = 0
    with path.open("wb") as out:
        async for chunk in export_chunks(sm, kind, fmt, a, viewer, k=k, params=params):
            out.write(chunk)
            size += len(chunk)
    return size
