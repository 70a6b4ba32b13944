"""Imports sent over HTTP: one ``import_job`` row per upload, run by the same code as ``anju import``.

``POST /imports/households`` (anju/imports.py) stores the upload, creates the job (``create_job``) and runs
``run_import_job`` off the request: state ``queued`` → ``reading`` → ``checking`` → ``writing`` (not with a dry run or
when the file has problems) → ``done`` (or ``failed``, with the reason). GraphQL ``importJob(id)`` reads it
(``job_by_id``), and ``GET /imports/{id}/report.csv`` gives its problems. A job is visible to the user who sent it
and to admins.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update

import models as m
from resolvers.access import Viewer, scoped_sessionmaker
from resolvers.coords import CoordSys
from resolvers.employment_import import import_employments
from resolvers.errors import AnjuError
from resolvers.household_import import ImportResult, check_importer, import_households
from resolvers.income_import import import_incomes
from resolvers.linkage_import import import_linkages
from resolvers.place_import import KINDS as PLACE_KINDS
from resolvers.place_import import import_places
from resolvers.query import SessionMaker
from resolvers.tabular import FileLimits

log = logging.getLogger("anju.imports")
J = m.ImportJob
KINDS = ("households", "incomes", "employments", "linkages", "sites", "facilities")
"""What can be imported over HTTP (``POST /imports/{kind}``)."""


@dataclass(frozen=True)
class JobOptions:
    """What an import job was asked to do: kind, file name (as uploaded), dry run, valid rows only, CSV encoding, coordinates."""

    kind: str
    file_name: str
    dry_run: bool = False
    valid_only: bool = False
    encoding: str | None = None
    coord_sys: CoordSys = CoordSys.WGS84


async def create_job(sm: SessionMaker, viewer: Viewer, options: JobOptions) -> int:
    """A new job, state ``queued``, owned by ``viewer``; its id.

    Raises:
        OutOfScope: the viewer may not write households (planners, partners).
    """
    check_importer(viewer)
    async with sm() as s, s.begin():
        job_id = (
            await s.execute(
                insert(J)
                .values(
                    kind=options.kind,
                    user_id=viewer.user_id,
                    user_name=viewer.name,
                    file_name=options.file_name[:200],
                    dry_run=options.dry_run,
                    valid_only=options.valid_only,
                )
                .returning(J.id)
            )
        ).scalar_one()
    return int(job_id)


async def _set(sm: SessionMaker, job_id: int, **values: Any) -> None:
    async with sm() as s, s.begin():
        await s.execute(update(J).where(J.id == job_id).values(**values))


def _counts(c: Any) -> dict[str, int]:
    return {"inserted": c.inserted, "updated": c.updated, "unchanged": c.unchanged, "rejected": c.rejected}


async def run_import_job(
    sm: SessionMaker,
    job_id: int,
    path: Path,
    viewer: Viewer,
    options: JobOptions,
    *,
    limits: FileLimits,
    today: dt.date,
    id_number_key: bytes,
    tolerance_meters: float,
    max_vertices: int,
) -> None:
    """Run job ``job_id`` on the uploaded file ``path`` as ``viewer`` (its scope, its audit name); record the outcome.

    The file is deleted at the end. A refused file or a client error ends ``failed`` with its message; anything else
    ends ``failed`` with a generic message (logged with its traceback), never the exception's text.
    """

    async def progress(state: str, rows: int) -> None:
        await _set(sm, job_id, state=state, rows=rows)

    try:
        if options.kind == "employments":
            await progress("reading", 0)
            result: ImportResult = await import_employments(
                scoped_sessionmaker(sm, viewer),
                path,
                limits=limits,
                today=today,
                id_number_key=id_number_key,
                encoding=options.encoding,
                dry_run=options.dry_run,
                valid_only=options.valid_only,
            )
        elif options.kind == "linkages":
            await progress("reading", 0)
            result = await import_linkages(
                scoped_sessionmaker(sm, viewer),
                path,
                limits=limits,
                encoding=options.encoding,
                dry_run=options.dry_run,
                valid_only=options.valid_only,
            )
        elif options.kind in PLACE_KINDS:
            await progress("reading", 0)
            result = await import_places(
                scoped_sessionmaker(sm, viewer),
                path,
                options.kind,
                limits=limits,
                tolerance_meters=tolerance_meters,
                max_vertices=max_vertices,
                encoding=options.encoding,
                coord_sys=options.coord_sys,
                dry_run=options.dry_run,
                valid_only=options.valid_only,
            )
        elif options.kind == "incomes":
            await progress("reading", 0)
            result = await import_incomes(
                scoped_sessionmaker(sm, viewer),
                path,
                limits=limits,
                today=today,
                encoding=options.encoding,
                dry_run=options.dry_run,
                valid_only=options.valid_only,
            )
        else:
            result = await import_households(
                scoped_sessionmaker(sm, viewer),
                path,
                limits=limits,
                today=today,
                id_number_key=id_number_key,
                tolerance_meters=tolerance_meters,
                max_vertices=max_vertices,
                encoding=options.encoding,
                dry_run=options.dry_run,
                valid_only=options.valid_only,
                progress=progress,
            )
    except AnjuError as exc:
        await _set(sm, job_id, state="failed", error=exc.message, finished_at=func.now())
        return
    except Exception:  # the job must end, and its user be told it failed
        log.exception("import job %s failed", job_id)
        await _set(
            sm, job_id, state="failed", error="the import failed on the server; nothing was written", finished_at=func.now()
        )
        return
    finally:
        path.unlink(missing_ok=True)
    await _set(
        sm,
        job_id,
        state="done",
        rows=result.rows,
        households=_counts(result.households) if options.kind == "households" else None,
        members=_counts(result.members) if options.kind == "households" else None,
        records=_counts(result.records) if options.kind != "households" else None,
        problems=_kept(result),
        written=result.written,
        finished_at=func.now(),
    )


MAX_KEPT_PROBLEMS = 100_000
"""Problems a job keeps (its report); beyond them one line says how many more there were."""


def _kept(result: ImportResult) -> list[dict[str, Any]]:
    kept = [{"row": p.row, "column": p.column, "value": p.value, "reason": p.reason} for p in result.problems[:MAX_KEPT_PROBLEMS]]
    more = len(result.problems) - MAX_KEPT_PROBLEMS
    if more > 0:
        kept.append({"row": None, "column": "file", "value": "", "reason": f"{more:,} more problems not kept; fix these first"})
    return kept


async def job_by_id(sm: SessionMaker, job_id: int, viewer: Viewer) -> m.ImportJob | None:
    """The job, when ``viewer`` sent it or is an admin; None otherwise (or when there is no such job)."""
    q = select(J).where(J.id == job_id)
    if not viewer.is_admin:
        q = q.where(J.user_name == viewer.name)
    async with sm() as s:
        return (await s.scalars(q)).first()
