"""live updates of monitoring cases; grid workers receive the events of their grids

- ``live_topic`` gains ``monitoring_case``: a case, its steps, assistance measures and follow-up visits (id: the
  case's), scoped as the case's household.
- ``live_pending.grid_ids`` / ``live_event.grid_ids``: the household's grid before and after a change; grid workers
  read the events of their grids (as the grid table says at delivery), of households and of cases.

The file: migrations/sql/live_events.sql (previous: sql/previous/0021/).

Revision ID: 0021
Revises: 0020
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from migrations import sql

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL_FILES = {"live_events": "209159108d85291d"}
CASE_TABLES = ("monitoring_case", "case_step", "assistance_measure", "follow_up_visit")


def upgrade() -> None:
    # A value added in this transaction may not be used in it; the triggers name it only when they fire.
    op.execute("ALTER TYPE live_topic ADD VALUE IF NOT EXISTS 'monitoring_case'")
    for table in ("live_pending", "live_event"):
        op.add_column(table, sa.Column("grid_ids", postgresql.ARRAY(sa.BigInteger()), nullable=True))
    sql.apply_at(op.execute, revision, *SQL_FILES)


def downgrade() -> None:
    for table in CASE_TABLES:
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS live_{event} ON {table}")
    op.execute("DROP POLICY IF EXISTS anju_grid_worker_scope ON live_event")
    op.execute("REVOKE SELECT ON live_event FROM anju_grid_worker")
    op.execute("REVOKE EXECUTE ON FUNCTION anju_live_bounds() FROM anju_grid_worker")
    op.execute("DROP FUNCTION IF EXISTS anju_live_cases()")
    for statement in sql.split(sql.previous(revision, "live_events")):
        op.execute(statement)
    for table in ("live_pending", "live_event"):
        op.drop_column(table, "grid_ids")
    # PostgreSQL cannot drop an enum value: the type is made again without it (its events go first).
    for table in ("live_pending", "live_event"):
        op.execute(f"DELETE FROM {table} WHERE topic = 'monitoring_case'")
    op.execute("ALTER TYPE live_topic RENAME TO live_topic_0021")
    op.execute("CREATE TYPE live_topic AS ENUM ('household', 'import_job')")
    for table in ("live_pending", "live_event"):
        op.execute(f"ALTER TABLE {table} ALTER COLUMN topic TYPE live_topic USING topic::text::live_topic")
    op.execute("DROP TYPE live_topic_0021")
