"""a roster import locates its dwellings in one spatial join; household live events without a quadratic join

- ``anju_locate_each(points geometry[])`` (located_code.sql): the located code of many points in one statement, the
  polygons outside (each prepared once) and the points inside; ``anju_locate(g)`` is the same function for one point.
  ``anju_located_given()``: inside a transaction that ``SET LOCAL anju.located = 'given'`` (the roster import, which
  writes the located code it computed with ``anju_locate_each``) the household trigger keeps the code inserted. The
  per-row lookup cost ≈ 0.2–0.4 ms a dwelling (6–15 s of a 36,000-household import). ``anju_relocate_all`` (admin
  polygons changed) locates every point with it too.
- ``anju_live_households()`` (live_events.sql) runs with ``enable_nestloop = off``: its old/new join of an UPDATE's
  transition tables was a nested loop (the tables have no statistics), quadratic in the households updated — 34 s for
  the member counts of a 12,000-household import.

The files: migrations/sql/located_code.sql, live_events.sql (previous: sql/previous/0022/).

Revision ID: 0022
Revises: 0021
"""

from collections.abc import Sequence

from alembic import op

from migrations import sql

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL_FILES = {"located_code": "e5fa7d4932832ca1", "live_events": "c8024257f36a1748"}


def upgrade() -> None:
    sql.apply_at(op.execute, revision, *SQL_FILES)


def downgrade() -> None:
    for name in SQL_FILES:
        for statement in sql.split(sql.previous(revision, name)):
            op.execute(statement)
    op.execute("DROP FUNCTION IF EXISTS anju_located_given()")
    op.execute("DROP FUNCTION IF EXISTS anju_locate_each(geometry[])")
