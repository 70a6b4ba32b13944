"""household member/labor-force counts and employment.household_id, kept by triggers

Coverage over a province (~360,000 households) must not join every member row. Two derived
values are kept current by PostgreSQL itself, in the same transaction as every change, whoever
writes (ORM, Core, psql):
- household.member_count / labor_force_count: statement-level triggers on member (transition
  tables, one grouped UPDATE per statement, so bulk loads stay fast);
- employment.household_id: copied from the member by a BEFORE INSERT/UPDATE trigger (a member
  never moves household; the trigger still recomputes on a member_id change).

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# This revision's SQL is history; as it is today it lives in migrations/sql/household_counts.sql.
FUNCTIONS = """
CREATE FUNCTION anju_member_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE household h SET member_count = h.member_count + d.n, labor_force_count = h.labor_force_count + d.lf
        FROM (SELECT household_id, count(*) AS n, count(*) FILTER (WHERE labor_force) AS lf
              FROM new_rows GROUP BY household_id) d
        WHERE h.id = d.household_id;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE household h SET member_count = h.member_count - d.n, labor_force_count = h.labor_force_count - d.lf
        FROM (SELECT household_id, count(*) AS n, count(*) FILTER (WHERE labor_force) AS lf
              FROM old_rows GROUP BY household_id) d
        WHERE h.id = d.household_id;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION anju_employment_household() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT household_id INTO NEW.household_id FROM member WHERE id = NEW.member_id;
    RETURN NEW;
END $$;
"""

TRIGGERS = """
CREATE TRIGGER member_counts_insert AFTER INSERT ON member REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_member_counts();
CREATE TRIGGER member_counts_update AFTER UPDATE ON member REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_member_counts();
CREATE TRIGGER member_counts_delete AFTER DELETE ON member REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anju_member_counts();
CREATE TRIGGER employment_household BEFORE INSERT OR UPDATE OF member_id ON employment
    FOR EACH ROW EXECUTE FUNCTION anju_employment_household();
"""


def upgrade() -> None:
    op.add_column("household", sa.Column("member_count", sa.Integer(), server_default="0", nullable=False))
    op.add_column("household", sa.Column("labor_force_count", sa.Integer(), server_default="0", nullable=False))
    op.create_check_constraint(
        "ck_household_counts_nonneg", "household", "member_count >= 0 AND labor_force_count BETWEEN 0 AND member_count"
    )
    op.add_column("employment", sa.Column("household_id", sa.BigInteger(), nullable=True))
    op.execute("""
        UPDATE household h SET member_count = c.n, labor_force_count = c.lf
        FROM (SELECT household_id, count(*) AS n, count(*) FILTER (WHERE labor_force) AS lf
              FROM member GROUP BY household_id) c
        WHERE h.id = c.household_id""")
    op.execute("UPDATE employment e SET household_id = m.household_id FROM member m WHERE m.id = e.member_id")
    op.alter_column("employment", "household_id", nullable=False)
    op.create_foreign_key(
        "fk_employment_household_id_household", "employment", "household", ["household_id"], ["id"], ondelete="CASCADE"
    )
    op.create_index("ix_employment_household_id", "employment", ["household_id"])
    # asyncpg prepares each statement: one command per execute.
    for statement in FUNCTIONS.split("END $$;"):
        if statement.strip():
            op.execute(statement + "END $$;")
    for statement in TRIGGERS.split(";"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    for trig, table in (
        ("member_counts_insert", "member"),
        ("member_counts_update", "member"),
        ("member_counts_delete", "member"),
        ("employment_household", "employment"),
    ):
        op.execute(f"DROP TRIGGER IF EXISTS {trig} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS anju_member_counts()")
    op.execute("DROP FUNCTION IF EXISTS anju_employment_household()")
    op.drop_index("ix_employment_household_id", table_name="employment")
    op.drop_constraint("fk_employment_household_id_household", "employment", type_="foreignkey")
    op.drop_column("employment", "household_id")
    op.drop_constraint("ck_household_counts_nonneg", "household", type_="check")
    op.drop_column("household", "labor_force_count")
    op.drop_column("household", "member_count")
