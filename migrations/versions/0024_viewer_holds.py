"""``anju_viewer_holds``: whether a viewer held in memory still describes its user row, as one SQL function

The fast read path (anju/db.py ``ReadPool``) answers a repeated read on a connection that already holds the viewer's
scope in one message: the planned statement, gated by ``anju_viewer_holds(name, role, area codes, partner)`` (a
disabled or changed user reads nothing and falls through to the full path). The scoped roles cannot read ``app_user``,
so the function runs with its owner's rights. ``ScopeCheck`` (resolvers/access.py), which applies a scope, uses the
same function: one definition of "the viewer still holds".

The file: migrations/sql/viewer.sql (new; its own file so that no earlier file is taken over: a revision that applies a
file last makes the earlier revisions skip it when a database is built from empty, with whatever later files needed).

Revision ID: 0024
Revises: 0022
"""

from collections.abc import Sequence

from alembic import op

from migrations import sql

revision: str = "0024"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL_FILES = {"viewer": "e1284c982139baa4"}


def upgrade() -> None:
    sql.apply_at(op.execute, revision, *SQL_FILES)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS anju_viewer_holds(text, text, text[], bigint)")
