"""registry rules shared by single writes and the roster import; a linear household_status refresh

- ``anju_area_distance(area, lon, lat)``: the distance from a point to its admin area's polygon (or the
  nearest ancestor's that has one), the rule of a registered location; before, the same recursive query
  lived only in resolvers/admin_areas.py. The roster import applies it to all its rows in one statement.
- ``anju_recorded_household_codes(codes)`` / ``anju_recorded_id_hashes(hashes)``: which household codes and
  ID-number hashes are recorded, whoever may see them (owner rights): a county officer's import reports a
  code or ID number recorded outside its areas as a row problem instead of failing on the unique index.

- ``anju_refresh_household_status(ids)`` counts each segment's members and employments by an index lookup (LATERAL)
  instead of joining per-segment aggregates back to the segments: PostgreSQL guesses ``= ANY(ids)`` holds 10 ids and
  planned that join as a nested loop, quadratic in the segments (a 10,000-household import spent 95 s in one refresh;
  1.9 s now). Same rows (migrations/sql/household_status.sql).

- ``import_job``: imports sent over HTTP (``POST /imports/households``), their state and result (``importJob(id)``).

- anju_member_counts() (member counts, household_counts.sql) finds the households by primary key and joins their
  counts by hash: under a county officer's row-level security PostgreSQL guessed one household and re-aggregated the
  counts for each of the county's households (54 s for an import of 35,000 members; 0.1 s now).

The files: migrations/sql/registry_rules.sql, household_status.sql, household_counts.sql (previous: sql/previous/0013/).

Revision ID: 0013
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from migrations import sql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL_FILES = {"household_counts": "1fd64279d1bb2501", "registry_rules": "2c1a7864c63372d6", "household_status": "61b0f431ee158a8f"}


def upgrade() -> None:
    op.create_table(
        "import_job",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), server_default="queued", nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("user_name", sa.Text(), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("valid_only", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("households", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("members", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("records", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("problems", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("written", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('queued', 'reading', 'checking', 'writing', 'done', 'failed')", name=op.f("ck_import_job_state_known")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name=op.f("fk_import_job_user_id_app_user"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_job")),
    )
    op.create_index(op.f("ix_import_job_user_name_id"), "import_job", ["user_name", "id"])
    sql.apply_at(op.execute, revision, *SQL_FILES)
    # Upgrading through history, 0010 skips household_status.sql (a later revision applies it last), so its residence
    # rows of existing households set off no refresh there: every household is refreshed by the revision that applies
    # the file (here while this revision was its last applier; 0020 since).
    if sql.last_appliers().get("household_status") == revision:
        op.execute("SELECT anju_refresh_household_status(ARRAY(SELECT id FROM household))")


def downgrade() -> None:
    op.drop_table("import_job")
    for name in ("household_status", "household_counts"):
        for statement in sql.split(sql.previous(revision, name)):
            op.execute(statement)
    op.execute("DROP FUNCTION IF EXISTS anju_recorded_id_hashes(text[])")
    op.execute("DROP FUNCTION IF EXISTS anju_recorded_household_codes(text[])")
    op.execute("DROP FUNCTION IF EXISTS anju_area_distance(text, double precision, double precision)")
