"""live updates: identical events of one transaction are numbered once

A mutation that writes a household twice (``updateHousehold``: its version claimed, then its own fields changed, two
``UPDATE household`` statements) left two identical pending rows, which the sequencer numbered as two events: a
subscriber received the same change twice. ``anju_live_sequence()`` now numbers the identical rows of one transaction
(topic, operation, table, record, owner, admin codes, grids) once, at the first of them; different changes stay apart.

The file: migrations/sql/live_events.sql (previous: sql/previous/0026/).

Revision ID: 0026
Revises: 0025
"""

from collections.abc import Sequence

from alembic import op

from migrations import sql

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL_FILES = {"live_events": "9324269d9869492f"}


def upgrade() -> None:
    sql.apply_at(op.execute, revision, *SQL_FILES)


def downgrade() -> None:
    for statement in sql.split(sql.previous(revision, "live_events")):
        op.execute(statement)
