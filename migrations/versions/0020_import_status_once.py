"""a bulk import refreshes household_status once, at its end, instead of after each of its statements

``anju_status_deferred()`` (household_status.sql): true inside a transaction that ``SET LOCAL anju.defer_status = 'on'``
— the roster import (resolvers/household_import.py), which then calls ``anju_refresh_household_status`` itself for
every household it wrote, once, before committing. The statement triggers of member, employment and
household_residence skip their refresh while it is on; everywhere else they refresh as before. A roster import
refreshed each new household twice (after its residence rows, again after its members): 20 s of a 36,000-household
import's 86 s of writing (bench/results/import_export.md).

The file: migrations/sql/household_status.sql (previous: sql/previous/0020/).

Revision ID: 0020
Revises: 0013
"""

from collections.abc import Sequence

from alembic import op

from migrations import sql

revision: str = "0020"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL_FILES = {"household_status": "7d427d519eb9577b"}


def upgrade() -> None:
    sql.apply_at(op.execute, revision, *SQL_FILES)
    # Upgrading through history, 0010 and 0013 skip household_status.sql (this revision applies it last): the households
    # recorded meanwhile have no status rows yet and are refreshed here (none on a database already at 0013).
    op.execute(
        "SELECT anju_refresh_household_status(ARRAY(SELECT h.id FROM household h "
        "WHERE NOT EXISTS (SELECT 1 FROM household_status s WHERE s.household_id = h.id)))"
    )


def downgrade() -> None:
    for statement in sql.split(sql.previous(revision, "household_status")):
        op.execute(statement)
    op.execute("DROP FUNCTION IF EXISTS anju_status_deferred()")
