"""Imports over HTTP, for the people who have no shell: ``POST /imports/{kind}`` and ``GET /imports/{id}/report.csv``.

Both need ``Authorization: Bearer <token>`` (as ``/tiles``). The upload is the file itself (raw body, with
``?filename=roster.csv`` or a CSV/XLSX/GeoJSON/GeoPackage ``Content-Type``) or a ``multipart/form-data`` form with a
``file`` field; options ``dryRun``, ``validOnly``, ``encoding`` and (sites, facilities) ``coordSys`` as query parameters
(or form fields). The answer is 202 with the job's id: the
import runs off the request (the same code as ``anju import households``, in a worker thread with its own event loop
and connections, so a long Python pass does not hold up other requests' event loop), and GraphQL ``importJob(id)``
tells its state, counts and problems. Jobs live in the server process: one that a restart interrupts stays in its last
state (not resumed).
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import logging
import tempfile
import uuid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from anju import observe
from anju.auth import AuthError
from anju.db import create_engine, create_sessionmaker
from anju.settings import Settings
from resolvers.access import Viewer
from resolvers.coords import CoordSys
from resolvers.errors import AnjuError
from resolvers.import_jobs import KINDS, JobOptions, create_job, job_by_id, run_import_job
from resolvers.place_import import LAYOUT
from resolvers.tabular import FileLimits

log = logging.getLogger("anju.imports")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
UPLOADS = Path(tempfile.gettempdir()) / "anju-imports"


def _error(message: str, status: int, code: str = "BAD_USER_INPUT") -> JSONResponse:
    from anju.app import _error_response

    return _error_response(message, status, code)


async def _viewer(request: Request) -> Viewer | JSONResponse:
    from anju.app import UNAVAILABLE, Unavailable, authenticate

    viewer = getattr(request.state, "viewer", None)
    if viewer is not None:  # ViewerMiddleware authenticated the request (every route but the public ones)
        return viewer
    try:
        return await authenticate(request)
    except AuthError as exc:
        return _error(str(exc), 401, "UNAUTHENTICATED")
    except Unavailable:
        return _error(UNAVAILABLE, 503, "INTERNAL")


def _flag(value: str | None, name: str) -> bool:
    if value is None or value.lower() in ("", "0", "false", "no"):
        return False
    if value.lower() in ("1", "true", "yes"):
        return True
    raise ValueError(f"{name}: {value[:20]!r}; expected true or false")


def _coord_sys(value: str | None) -> CoordSys:
    if not value:
        return CoordSys.WGS84
    try:
        return CoordSys[value.upper()]
    except KeyError:
        raise ValueError(f"coordSys: {value[:20]!r}; expected one of {', '.join(c.name for c in CoordSys)}") from None


def _suffix(name: str, content_type: str) -> str | None:
    suffix = Path(name).suffix.lower() if name else ""
    if suffix in (".csv", ".xlsx", ".geojson", ".json", ".gpkg"):
        return suffix
    if content_type.startswith(("application/geo+json", "application/geojson")):
        return ".geojson"
    if content_type.startswith("application/geopackage+sqlite3"):
        return ".gpkg"
    if content_type.startswith("text/csv"):
        return ".csv"
    if content_type.startswith(XLSX_TYPE):
        return ".xlsx"
    return None


async def upload(request: Request) -> Response:
    """``POST /imports/{kind}``: store the file, create the job, start it; 202 ``{"id", "state", "report"}``.

    400 for a missing or unknown file kind or a bad option, 401/503 as every request, 403 for viewers who write no
    households, 404 for an unknown kind, 413 for a file over ``imports.max_file_bytes``.
    """
    viewer = await _viewer(request)
    if isinstance(viewer, JSONResponse):
        return viewer
    kind = request.path_params["kind"]
    if kind not in KINDS:
        return _error(f"kind: {kind[:40]!r} cannot be imported; expected one of {', '.join(KINDS)}", 404, "NOT_FOUND")
    if not viewer.writes_households:
        return _error(f"{viewer.role.name} viewers import nothing (admins, and county officers in their areas)", 403, "FORBIDDEN")
    settings: Settings = request.state.settings
    limit = settings.imports.max_file_bytes
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit + 64 * 1024:
        return _error(f"file: larger than the limit of {limit:,} bytes (imports.max_file_bytes)", 413, "QUERY_TOO_COMPLEX")
    UPLOADS.mkdir(parents=True, exist_ok=True)
    content_type = request.headers.get("content-type", "")
    params: dict[str, Any] = dict(request.query_params)
    path: Path | None = None
    try:
        if content_type.startswith("multipart/form-data"):
            async with request.form(max_files=1, max_fields=10) as form:
                params |= {k: v for k, v in form.items() if isinstance(v, str)}
                file = form.get("file")
                if file is None or isinstance(file, str):
                    return _error("file: send the roster as the form's `file` field", 400)
                name = file.filename or ""
                suffix = _suffix(name, file.content_type or "")
                if suffix is None:
                    return _error("file: expected a .csv, .xlsx, .geojson or .gpkg file", 400)
                path = UPLOADS / f"{uuid.uuid4().hex}{suffix}"
                size = 0
                with path.open("wb") as out:
                    while chunk := await file.read(1 << 16):
                        size += len(chunk)
                        if size > limit:
                            return _error(
                                f"file: larger than the limit of {limit:,} bytes (imports.max_file_bytes)",
                                413,
                                "QUERY_TOO_COMPLEX",
                            )
                        out.write(chunk)
        else:
            name = params.get("filename", "")
            suffix = _suffix(name, content_type)
            if suffix is None:
                return _error("file: name it (?filename=roster.csv) or send Content-Type text/csv or the XLSX type", 400)
            path = UPLOADS / f"{uuid.uuid4().hex}{suffix}"
            size = 0
            with path.open("wb") as out:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        return _error(
                            f"file: larger than the limit of {limit:,} bytes (imports.max_file_bytes)", 413, "QUERY_TOO_COMPLEX"
                        )
                    out.write(chunk)
        options = JobOptions(
            kind=kind,
            file_name=name or f"upload{suffix}",
            dry_run=_flag(params.get("dryRun"), "dryRun"),
            valid_only=_flag(params.get("validOnly"), "validOnly"),
            encoding=params.get("encoding") or None,
            coord_sys=_coord_sys(params.get("coordSys")),
        )
        job_id = await create_job(request.state.sessionmaker, viewer, options)
    except ValueError as exc:
        if path is not None:
            path.unlink(missing_ok=True)
        return _error(str(exc), 400)
    except AnjuError as exc:
        if path is not None:
            path.unlink(missing_ok=True)
        return _error(exc.message, 403 if exc.code == "FORBIDDEN" else 400, exc.code)
    except BaseException:
        if path is not None:
            path.unlink(missing_ok=True)
        raise
    tasks: set[asyncio.Task[None]] = request.app.state.__dict__.setdefault("import_tasks", set())
    task = asyncio.create_task(asyncio.to_thread(_run_in_thread, settings, job_id, path, viewer, options))
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return JSONResponse(
        {"id": str(job_id), "state": "queued", "report": f"/imports/{job_id}/report.csv"},
        status_code=202,
        headers={"Location": f"/imports/{job_id}/report.csv"},
    )


def _run_in_thread(settings: Settings, job_id: int, path: Path, viewer: Viewer, options: JobOptions) -> None:
    """The job in a worker thread: its own event loop, engine and connections (asyncpg connections belong to one loop)."""
    from anju.auth import keys

    async def run() -> str:
        engine = create_engine(settings)
        try:
            sm = create_sessionmaker(engine)
            await run_import_job(
                sm,
                job_id,
                path,
                viewer,
                options,
                limits=FileLimits(**settings.imports.model_dump()),
                today=dt.datetime.now(ZoneInfo(settings.timezone)).date(),
                id_number_key=keys(settings).id_number_key,
                tolerance_meters=settings.registry.location_tolerance_meters,
                max_vertices=settings.features.max_vertices,
            )
            job = await job_by_id(sm, job_id, viewer)
            return job.state if job is not None else "failed"
        finally:
            await engine.dispose()

    with observe.import_job(options.kind) as outcome:  # anju_import_jobs_running / anju_import_jobs_total{kind, state}
        try:
            outcome["state"] = asyncio.run(run())
        except Exception:  # logged; the job row keeps its last state
            log.exception("import job %s: the worker failed", job_id)


async def report(request: Request) -> Response:
    """``GET /imports/{id}/report.csv``: the job's problems as CSV (UTF-8 with BOM): 行号 row, 列 column, 值 value, 原因 reason.

    404 for a job that does not exist or is not the viewer's; 409 while it runs.
    """
    viewer = await _viewer(request)
    if isinstance(viewer, JSONResponse):
        return viewer
    raw = request.path_params["id"]
    job = await job_by_id(request.state.sessionmaker, int(raw), viewer) if raw.isdigit() and len(raw) < 19 else None
    if job is None:
        return _error(f"id: no import job {raw[:20]!r} of yours", 404, "NOT_FOUND")
    if job.state not in ("done", "failed"):
        return _error(f"import job {job.id} is {job.state}; its report is ready when the state is done", 409, "CONFLICT")
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["行号 row", "列 column", "值 value", "原因 reason"])
    if job.error:
        w.writerow(["", "file", "", job.error])
    for p in job.problems or []:
        w.writerow(["" if p["row"] is None else p["row"], p["column"], p["value"], p["reason"]])
    return Response(
        "\ufeff" + buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{job.id}-report.csv"', "Cache-Control": "private"},
    )


TEMPLATES = {
    "households": ("resolvers.household_import", "COLUMNS", "花名册 roster", None),
    "incomes": (
        "resolvers.income_import",
        "INCOME_COLUMNS",
        "家庭纯收入 incomes",
        "每行一户一年。One row per household and year.",
    ),
    "employments": (
        "resolvers.employment_import",
        "EMPLOYMENT_COLUMNS",
        "就业 employments",
        "每行一段就业。One row per job spell.",
    ),
    "linkages": (
        "resolvers.linkage_import",
        "LINKAGE_COLUMNS",
        "利益联结 linkages",
        "每行一项利益联结。One row per linkage.",
    ),
    "sites": ("resolvers.place_import", "SITE_COLUMNS", "安置点 sites", LAYOUT["sites"]),
    "facilities": ("resolvers.place_import", "FACILITY_COLUMNS", "设施 facilities", LAYOUT["facilities"]),
}
"""Each import kind's template: module, columns, sheet name, layout note (None: the roster's)."""


async def template(request: Request) -> Response:
    """``GET /imports/templates/{kind}.{csv|xlsx}``: the kind's template (as ``anju import template KIND``); no token needed.

    It holds no data: the documented header row and the example rows. 404 for an unknown kind or format.
    """
    import importlib

    from resolvers.household_import import ROSTER_LAYOUT, write_template

    kind, fmt = request.path_params["kind"], request.path_params["fmt"]
    if kind not in TEMPLATES or fmt not in ("csv", "xlsx"):
        return _error(
            f"template {kind[:40]}.{fmt[:10]}: expected one of {', '.join(TEMPLATES)} as .csv or .xlsx", 404, "NOT_FOUND"
        )
    module, name, sheet, layout = TEMPLATES[kind]
    columns = getattr(importlib.import_module(module), name)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{kind}-template.{fmt}"
        write_template(path, fmt, columns, sheet=sheet, layout=layout or ROSTER_LAYOUT)
        data = path.read_bytes()
    media = "text/csv; charset=utf-8" if fmt == "csv" else XLSX_TYPE
    return Response(data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{kind}-template.{fmt}"'})
