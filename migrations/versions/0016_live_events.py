"""live updates: an outbox of changes (households and their records, import jobs) numbered without gaps; household remarks

- ``live_pending``: what each writing transaction changed (topic, operation, table, id; never row data), appended by
  statement-level triggers, with the writer's transaction id.
- ``live_event``: the same rows numbered (``seq``) by ``anju_live_sequence()`` once no running transaction can still
  add an earlier one; GraphQL subscriptions read them under the subscriber's row-level security (anju/live.py).
- ``live_topic`` enum: ``household``, ``import_job`` (a monitoring case is one more value and one trigger).
- ``household.remark`` (备注): free text about a household.

The file: migrations/sql/live_events.sql.

Revision ID: 0016
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from migrations import sql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL_FILES = {"live_events": "afa225fed117d17b"}
TOPIC = postgresql.ENUM("household", "import_job", name="live_topic", create_type=False)


def _columns() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("topic", TOPIC, nullable=False),
        sa.Column("operation", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("entity_id", sa.BigInteger(), nullable=False),
        sa.Column("admin_codes", postgresql.ARRAY(sa.String(12)), nullable=True),
        sa.Column("owner", sa.Text(), nullable=True),
    ]


def upgrade() -> None:
    op.add_column("household", sa.Column("remark", sa.Text(), nullable=True))
    TOPIC.create(op.get_bind())
    op.create_table(
        "live_pending",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("xid", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        *_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_pending")),
    )
    op.execute(
        "ALTER TABLE live_pending ALTER COLUMN xid TYPE xid8 USING NULL::xid8, ALTER COLUMN xid SET DEFAULT pg_current_xact_id()"
    )
    op.create_table(
        "live_event",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        *_columns(),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_live_event")),
    )
    op.create_index(op.f("ix_live_event_at"), "live_event", ["at"])
    op.execute("CREATE SEQUENCE live_event_seq AS bigint OWNED BY live_event.seq")
    sql.apply_at(op.execute, revision, *SQL_FILES)


def downgrade() -> None:
    for table in ("household", "member", "employment", "income_linkage", "household_income", "import_job"):
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS live_{event} ON {table}")
    for function in (
        "anju_live_household_rows()",
        "anju_live_households()",
        "anju_live_import_jobs()",
        "anju_live_sequence()",
        "anju_live_bounds()",
        "anju_live_prune(interval)",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
    op.drop_table("live_event")
    op.drop_table("live_pending")
    TOPIC.drop(op.get_bind())
    op.drop_column("household", "remark")
