"""a roster import inserts new households with their member counts: the member INSERT trigger leaves them as given

``anju_counts_given()`` (household_counts.sql): inside a transaction that ``SET LOCAL anju.counts = 'given'`` the
statement-level INSERT trigger on ``member`` (``anju_member_counts``) adds nothing: the roster import inserts a new
household with ``member_count`` / ``labor_force_count`` counted from the rows it is about to insert as its members, then
inserts them. Adding them again rewrote every new household row once more (39 s of a 360,000-household import, with a
live event per household). Every other insert, update and delete keeps the counts as before.

The file: migrations/sql/household_counts.sql (previous: sql/previous/0025/). Its earlier appliers (0008, 0010, 0013)
skip it when a database is built from empty; the definitions 0002 and 0005 write inline serve until this revision, and
no revision between needs more of them.

Revision ID: 0025
Revises: 0024
"""

from collections.abc import Sequence

from alembic import op

from migrations import sql

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL_FILES = {"household_counts": "b6976ad4fbbc68ca"}


def upgrade() -> None:
    sql.apply_at(op.execute, revision, *SQL_FILES)


def downgrade() -> None:
    for name in SQL_FILES:
        for statement in sql.split(sql.previous(revision, name)):
            op.execute(statement)
    op.execute("DROP FUNCTION IF EXISTS anju_counts_given()")
