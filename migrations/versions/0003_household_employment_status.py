"""household_employment_status: each household's employment counts as a step function of the date

Coverage over a province (~360,000 households, ~560,000 employments) from the raw tables takes
seconds on a 2-core machine; this table makes it one indexed join. For every household it holds
the segments [valid_from, valid_to) between the dates where any member's employment starts or
ends (end_on + 1), with the counts that hold throughout the segment: distinct members employed,
stably employed, and employed per channel. The first segment starts at -infinity, the last ends
at +infinity, so every date falls in exactly one segment of every household — exact for past,
present and future dates alike (no "as of today" snapshot that goes stale at midnight).

Statement-level triggers recompute the segments of the households touched by any insert, update
or delete of employments (and create the first segment of new households), in the same
transaction, whoever writes. Definitions: API.md ("active", "employed", "stably employed").

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# This revision's SQL is history; as it is today it lives in migrations/sql/employment_status.sql.
# The channels of 0001's employment_channel type when this revision was written: history, frozen
# here on purpose (a channel added later comes with its own revision adding the type label and the
# column). Today's list is models.EmploymentChannel; the function at head reads the type
# (migrations/sql/employment_status.sql).
CHANNELS = ("labor_export", "workshop", "self_employment", "public_welfare_post", "local_enterprise", "flexible")
COLS = ", ".join(CHANNELS)
AGGS = ", ".join(f"count(DISTINCT e.member_id) FILTER (WHERE e.channel = '{c}')" for c in CHANNELS)


def refresh_function(*, lock_households: bool) -> str:
    """``anju_refresh_employment_status(ids)``: recompute the segments of the households ``ids``.

    As created here ``lock_households=False``; migration 0005 adds the row locks (``True``).
    """
    lock = "    SELECT 1 FROM household WHERE id = ANY(ids) ORDER BY id FOR UPDATE;\n" if lock_households else ""
    return f"""
CREATE OR REPLACE FUNCTION anju_refresh_employment_status(ids bigint[]) RETURNS void LANGUAGE sql AS $$
{lock}    DELETE FROM household_employment_status WHERE household_id = ANY(ids);
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


TRIGGER_FUNCTIONS = [
    """
CREATE FUNCTION anju_employment_status_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM anju_refresh_employment_status(ARRAY(SELECT DISTINCT household_id FROM new_rows));
    RETURN NULL;
END $$""",
    """
CREATE FUNCTION anju_employment_status_old() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM anju_refresh_employment_status(ARRAY(SELECT DISTINCT household_id FROM old_rows));
    RETURN NULL;
END $$""",
    """
CREATE FUNCTION anju_employment_status_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM anju_refresh_employment_status(ARRAY(SELECT household_id FROM new_rows
                                                 UNION SELECT household_id FROM old_rows));
    RETURN NULL;
END $$""",
    """
CREATE FUNCTION anju_household_status_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO household_employment_status (household_id, valid_from, valid_to)
    SELECT id, date '-infinity', date 'infinity' FROM new_rows;
    RETURN NULL;
END $$""",
]

TRIGGERS = [
    "CREATE TRIGGER employment_status_insert AFTER INSERT ON employment REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION anju_employment_status_new()",
    "CREATE TRIGGER employment_status_update AFTER UPDATE ON employment REFERENCING OLD TABLE AS old_rows "
    "NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION anju_employment_status_changed()",
    "CREATE TRIGGER employment_status_delete AFTER DELETE ON employment REFERENCING OLD TABLE AS old_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION anju_employment_status_old()",
    "CREATE TRIGGER household_status_insert AFTER INSERT ON household REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION anju_household_status_new()",
]


def upgrade() -> None:
    op.create_table(
        "household_employment_status",
        sa.Column(
            "household_id",
            sa.BigInteger(),
            sa.ForeignKey("household.id", ondelete="CASCADE", name="fk_household_employment_status_household_id_household"),
            nullable=False,
        ),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=False),
        sa.Column("employed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("stably_employed", sa.Integer(), server_default="0", nullable=False),
        *[sa.Column(c, sa.Integer(), server_default="0", nullable=False) for c in CHANNELS],
        sa.PrimaryKeyConstraint("household_id", "valid_from", name="pk_household_employment_status"),
        sa.CheckConstraint("valid_from < valid_to", name="ck_household_employment_status_segment"),
    )
    op.execute(refresh_function(lock_households=False))
    for fn in TRIGGER_FUNCTIONS:
        op.execute(fn)
    for trig in TRIGGERS:
        op.execute(trig)
    op.execute("SELECT anju_refresh_employment_status(ARRAY(SELECT id FROM household))")


def downgrade() -> None:
    for trig, table in (
        ("employment_status_insert", "employment"),
        ("employment_status_update", "employment"),
        ("employment_status_delete", "employment"),
        ("household_status_insert", "household"),
    ):
        op.execute(f"DROP TRIGGER IF EXISTS {trig} ON {table}")
    for fn in (
        "anju_employment_status_new()",
        "anju_employment_status_old()",
        "anju_employment_status_changed()",
        "anju_household_status_new()",
        "anju_refresh_employment_status(bigint[])",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS {fn}")
    op.drop_table("household_employment_status")
