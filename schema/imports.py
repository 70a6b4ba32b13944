"""Import jobs sent over HTTP (``POST /imports/{kind}``, households to facilities): ``importJob(id)`` tells their progress."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import strawberry

from resolvers.import_jobs import job_by_id
from resolvers.query import parse_id
from schema.types import Ctx


@strawberry.type(description="Records of one kind an import wrote (with dryRun, or a file with problems: would write).")
class ImportCounts:
    inserted: int = strawberry.field(description="New records.")
    updated: int = strawberry.field(description="Records changed (audited).")
    unchanged: int = strawberry.field(description="Records already as the file has them.")
    rejected: int = strawberry.field(description="Records of households left out (a problem in one of their rows).")


@strawberry.type(description="One problem of an imported file, in the API's words (personal data masked).")
class ImportProblem:
    row: int | None = strawberry.field(description="Row as the spreadsheet shows it (the header is row 1); null: the file.")
    column: str = strawberry.field(description="The column's header as written in the file (e.g. 出生年份 birth_year).")
    value: str = strawberry.field(description="The offending value; names, phone and ID numbers masked.")
    reason: str = strawberry.field(
        description="Why, as the API's errors say it (e.g. birthYear: 1850 is outside 1900..2026, the current year)."
    )


def _counts(value: Any) -> ImportCounts | None:
    return ImportCounts(**value) if value is not None else None


@strawberry.type(description="An import sent over HTTP (POST /imports/households): its state and, once done, its result.")
class ImportJob:
    id: strawberry.ID = strawberry.field(description="Job id, as POST /imports/households answered it.")
    kind: str = strawberry.field(description="What is imported: households, incomes, employments, linkages, sites or facilities.")
    state: str = strawberry.field(description="queued, reading, checking, writing (progress), then done or failed (final).")
    file_name: str = strawberry.field(description="The uploaded file's name.")
    dry_run: bool = strawberry.field(description="Checked and counted only; nothing written.")
    valid_only: bool = strawberry.field(description="Households whose rows all pass are written, the others reported.")
    rows: int | None = strawberry.field(description="Data rows read so far (example rows not counted).")
    households: ImportCounts | None = strawberry.field(description="Households (户) inserted, updated, unchanged, rejected.")
    members: ImportCounts | None = strawberry.field(description="Members (家庭成员) inserted, updated, unchanged, rejected.")
    records: ImportCounts | None = strawberry.field(
        description="Records of kind incomes (家庭纯收入), employments (就业), linkages (利益联结), sites (安置点) or "
        "facilities (设施): inserted, updated, unchanged, rejected; "
        "null for households."
    )
    written: bool = strawberry.field(
        description="Whether the import committed (false: a dry run, or problems in atomic mode); true also when every "
        "record was unchanged and so nothing needed writing: the counts say what was inserted and updated."
    )
    error: str | None = strawberry.field(description="Why the file as a whole was refused or the job failed; null otherwise.")
    created_at: dt.datetime = strawberry.field(description="When it was sent (timestamp with time zone).")
    finished_at: dt.datetime | None = strawberry.field(description="When it ended; null while it runs.")
    report_url: str = strawberry.field(description="Where its problems download as CSV: /imports/{id}/report.csv.")
    problem_list: strawberry.Private[list[dict[str, Any]]]

    @strawberry.field(description="Number of problems (rows × columns) found.")
    def problem_count(self) -> int:
        return len(self.problem_list)

    @strawberry.field(description="The problems by row, at most `first` (default 100, at most 500) from `offset`.")
    def problems(
        self,
        first: Annotated[int, strawberry.argument(description="How many, 1..500.")] = 100,
        offset: Annotated[int, strawberry.argument(description="How many to skip, >= 0.")] = 0,
    ) -> list[ImportProblem]:
        from resolvers.errors import InvalidInput

        if not 1 <= first <= 500:
            raise InvalidInput(f"first: {first} is outside 1..500", field="first")
        if offset < 0:
            raise InvalidInput(f"offset: {offset} is negative", field="offset")
        return [ImportProblem(**p) for p in self.problem_list[offset : offset + first]]


@strawberry.type(description="Import jobs.")
class ImportQuery:
    @strawberry.field(
        description="An import job you sent over HTTP (admins: anyone's); null when there is none or it is not yours."
    )
    async def import_job(
        self, info: Ctx, id: Annotated[strawberry.ID, strawberry.argument(description="The job's id.")]
    ) -> ImportJob | None:
        viewer = info.context.viewer
        key = parse_id(id)
        if key is None or not (viewer.writes_households or viewer.is_admin):
            return None
        job = await job_by_id(info.context.sessionmaker, key, viewer)
        if job is None:
            return None
        return ImportJob(
            id=strawberry.ID(str(job.id)),
            kind=job.kind,
            state=job.state,
            file_name=job.file_name,
            dry_run=job.dry_run,
            valid_only=job.valid_only,
            rows=job.rows,
            households=_counts(job.households),
            members=_counts(job.members),
            records=_counts(job.records),
            written=job.written,
            error=job.error,
            created_at=job.created_at,
            finished_at=job.finished_at,
            report_url=f"/imports/{job.id}/report.csv",
            problem_list=list(job.problems or []),
        )
