"""the database's logic as current-state files: re-apply migrations/sql/*.sql

Functions, triggers, grants and row-level-security policies now live, as they are at head, in one
idempotent file per concern under ``migrations/sql/`` (household_counts, employment_status,
located_code, masks, access_policies). This revision applies them all; after 0007 that changes
nothing in effect (the same functions, triggers, grants and policies; only the text of function
bodies may differ in layout and comments). A later change to the logic edits a file and adds a
revision that applies it again (``apply(op.execute, "<file>")``), with the previous definitions in its
downgrade.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

from alembic import op

from migrations import sql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    sql.apply(op.execute)


def downgrade() -> None:
    # 0007's objects, in effect unchanged: 0007's downgrade drops them by name.
    pass
