"""harden the trigger-kept values: concurrent writers, members moving household, TRUNCATE

- anju_refresh_employment_status locks the households' rows first (FOR UPDATE, in id order), so
  two transactions refreshing the same household serialise instead of colliding on the primary key;
- a member moved to another household (UPDATE member SET household_id) carries its employments'
  household_id along (which refreshes both households' status through the employment trigger);
- TRUNCATE, which fires no row or statement DML triggers, resets what it invalidates.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNELS = ("labor_export", "workshop", "self_employment", "public_welfare_post", "local_enterprise", "flexible")
COLS = ", ".join(CHANNELS)
AGGS = ", ".join(f"count(DISTINCT e.member_id) FILTER (WHERE e.channel = '{c}')" for c in CHANNELS)

REFRESH = f"""
CREATE OR REPLACE FUNCTION anju_refresh_employment_status(ids bigint[]) RETURNS void LANGUAGE sql AS $$
    SELECT 1 FROM household WHERE id = ANY(ids) ORDER BY id FOR UPDATE;
    DELETE FROM household_employment_status WHERE household_id = ANY(ids);
    INSERT INTO household_employment_status (household_id, valid_from, valid_to, employed, stably_employed, {COLS})
    WITH bounds AS (
        SELECT h.id AS household_id, date '-infinity' AS d FROM household h WHERE h.id = ANY(ids)
        UNION SELECT e.household_id, e.start_on FROM employment e WHERE e.household_id = ANY(ids)
        UNION SELECT e.household_id, e.end_on + 1 FROM employment e
              WHERE e.household_id = ANY(ids) AND e.end_on IS NOT NULL
    ),
    segments AS (
        SELECT household_id, d AS valid_from,
               lead(d, 1, date 'infinity') OVER (PARTITION BY household_id ORDER BY d) AS valid_to
        FROM bounds
    )
    SELECT s.household_id, s.valid_from, s.valid_to,
           count(DISTINCT e.member_id), count(DISTINCT e.member_id) FILTER (WHERE e.stable), {AGGS}
    FROM segments s
    LEFT JOIN employment e ON e.household_id = s.household_id
         AND e.start_on <= s.valid_from AND (e.end_on IS NULL OR e.end_on >= s.valid_from)
    GROUP BY s.household_id, s.valid_from, s.valid_to;
$$
"""

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
    op.execute(REFRESH)
    for st in STATEMENTS:
        op.execute(st)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS member_truncated ON member")
    op.execute("DROP TRIGGER IF EXISTS employment_truncated ON employment")
    op.execute("DROP TRIGGER IF EXISTS member_moved ON member")
    for fn in ("anju_member_truncated()", "anju_employment_truncated()", "anju_member_moved()"):
        op.execute(f"DROP FUNCTION IF EXISTS {fn}")
    op.execute(REFRESH.replace("    SELECT 1 FROM household WHERE id = ANY(ids) ORDER BY id FOR UPDATE;\n", ""))
