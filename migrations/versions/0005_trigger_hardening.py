"""harden the trigger-kept values: concurrent writers, members moving household, TRUNCATE

- anju_refresh_employment_status locks the households' rows first (FOR UPDATE, in id order), so
  two transactions refreshing the same household serialise instead of colliding on the primary key;
- a member moved to another household (UPDATE member SET household_id) carries its employments'
  household_id along (which refreshes both households' status through the employment trigger);
- TRUNCATE, which fires no row or statement DML triggers, resets what it invalidates.

Revision ID: 0005
Revises: 0004
"""

import importlib
from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# This revision's SQL is history; as it is today it lives in migrations/sql/household_counts.sql and employment_status.sql.
# anju_refresh_employment_status as 0003 wrote it, plus the row locks.
_0003 = importlib.import_module("migrations.versions.0003_household_employment_status")


STATEMENTS = [
    """
CREATE FUNCTION anju_member_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE employment SET household_id = NEW.household_id WHERE member_id = NEW.id;
    RETURN NULL;
END $$""",
    "CREATE TRIGGER member_moved AFTER UPDATE OF household_id ON member FOR EACH ROW "
    "WHEN (OLD.household_id IS DISTINCT FROM NEW.household_id) EXECUTE FUNCTION anju_member_moved()",
    """
CREATE FUNCTION anju_employment_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM household_employment_status;
    INSERT INTO household_employment_status (household_id, valid_from, valid_to)
    SELECT id, date '-infinity', date 'infinity' FROM household;
    RETURN NULL;
END $$""",
    "CREATE TRIGGER employment_truncated AFTER TRUNCATE ON employment FOR EACH STATEMENT "
    "EXECUTE FUNCTION anju_employment_truncated()",
    """
CREATE FUNCTION anju_member_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE household SET member_count = 0, labor_force_count = 0 WHERE member_count <> 0 OR labor_force_count <> 0;
    RETURN NULL;
END $$""",
    "CREATE TRIGGER member_truncated AFTER TRUNCATE ON member FOR EACH STATEMENT EXECUTE FUNCTION anju_member_truncated()",
]


def upgrade() -> None:
    op.execute(_0003.refresh_function(lock_households=True))
    for st in STATEMENTS:
        op.execute(st)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS member_truncated ON member")
    op.execute("DROP TRIGGER IF EXISTS employment_truncated ON employment")
    op.execute("DROP TRIGGER IF EXISTS member_moved ON member")
    for fn in ("anju_member_truncated()", "anju_employment_truncated()", "anju_member_moved()"):
        op.execute(f"DROP FUNCTION IF EXISTS {fn}")
    op.execute(_0003.refresh_function(lock_households=False))
