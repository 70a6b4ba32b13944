"""``anju_analyze_registry()``: a big roster import's ANALYZE of household and member, with the owner's rights

A roster import that inserted 1,000 households or more analyses ``household`` and ``member`` inside its transaction
before reading them back for its audit rows (with the statistics of before the import, PostgreSQL nested-looped the
new households over their members' aggregate: a 60,000-household import ran over 9 minutes). ANALYZE is the tables'
owner's, and a county officer's import runs under the officer's role, where PostgreSQL skipped it with a warning only.

The file: migrations/sql/import_stats.sql (new; its own file, no earlier file taken over).

Revision ID: 0027
Revises: 0026
"""

from collections.abc import Sequence

from alembic import op

from migrations import sql

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL_FILES = {"import_stats": "b9fbeb48522a4d96"}


def upgrade() -> None:
    sql.apply_at(op.execute, revision, *SQL_FILES)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS anju_analyze_registry()")
