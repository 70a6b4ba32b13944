"""``anju_viewer_holds``: whether a viewer held in memory still describes its user row, as one SQL function

The fast read path (anju/db.py ``ReadPool``) answers a repeated read on a connection that already holds the viewer's
scope in one message: the planned statement, gated by ``anju_viewer_holds(name, role, area codes, partner)`` (a
disabled or changed user reads nothing and falls through to the full path). The scoped roles cannot read ``app_user``,
so the function runs with its owner's rights. ``ScopeCheck`` (resolvers/access.py), which applies a scope, uses the
same function: one definition of "the viewer still holds".

The files: migrations/sql/access_policies.sql (the function; EXECUTE for officers and partners) and
migrations/sql/casework.sql (EXECUTE for grid workers). Previous: sql/previous/0024/.

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

SQL_FILES = {"access_policies": "ce9ed57b23166a08", "casework": "c3989484c164218b"}


def upgrade() -> None:
    sql.apply_at(op.execute, revision, *SQL_FILES)


def downgrade() -> None:
    for name in SQL_FILES:
        for statement in sql.split(sql.previous(revision, name)):
            op.execute(statement)
    op.execute("DROP FUNCTION IF EXISTS anju_viewer_holds(text, text, text[], bigint)")
