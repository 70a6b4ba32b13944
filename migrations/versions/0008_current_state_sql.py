"""the database's logic as current-state files: re-apply migrations/sql/*.sql

Functions, triggers, grants and row-level-security policies now live, as they are at head, in one
idempotent file per concern under ``migrations/sql/`` (household_counts, employment_status,
located_code, masks, access_policies). This revision applies them all; after 0007 that changes
nothing in effect (the same functions, triggers, grants and policies; only the text of function
bodies may differ in layout and comments). A later change to the logic edits a file and adds a
revision that applies it again, recording the file's new checksum in its own ``SQL_FILES``, with the
previous definitions in its downgrade (migrations/sql/__init__.py).

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

# The files this revision applies, with their checksums when it was written (sql.checksum);
# tests/test_db_logic.py checks that the last revision applying each file has its current checksum.
SQL_FILES = {
    "household_counts": "82e60164dbb1e259",
    "located_code": "44659a19f18e2cba",
    "masks": "d2ad1c25a29bb399",
    "access_policies": "62f5c95e7cb71b0d",
}


def upgrade() -> None:
    # A file a later revision applies again is left to that revision (sql.apply_at). employment_status.sql,
    # which this revision applied when it was written, became household_status.sql in 0010: from an empty
    # database this revision keeps 0003/0005's employment-status functions, as it did then in effect.
    sql.apply_at(op.execute, revision, *SQL_FILES)


def downgrade() -> None:
    # 0007's objects, in effect unchanged: 0007's downgrade drops them by name.
    pass
