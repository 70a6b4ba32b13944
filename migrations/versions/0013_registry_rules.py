"""registry rules shared by single writes and the roster import

- ``anju_area_distance(area, lon, lat)``: the distance from a point to its admin area's polygon (or the
  nearest ancestor's that has one), the rule of a registered location; before, the same recursive query
  lived only in resolvers/admin_areas.py. The roster import applies it to all its rows in one statement.
- ``anju_recorded_household_codes(codes)`` / ``anju_recorded_id_hashes(hashes)``: which household codes and
  ID-number hashes are recorded, whoever may see them (owner rights): a county officer's import reports a
  code or ID number recorded outside its areas as a row problem instead of failing on the unique index.

The file: migrations/sql/registry_rules.sql.

Revision ID: 0013
Revises: 0010
"""

from collections.abc import Sequence

from alembic import op

from migrations import sql

revision: str = "0013"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL_FILES = {"registry_rules": "6c7a8f8e35f9e8b3"}


def upgrade() -> None:
    sql.apply_at(op.execute, revision, *SQL_FILES)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS anju_recorded_id_hashes(text[])")
    op.execute("DROP FUNCTION IF EXISTS anju_recorded_household_codes(text[])")
    op.execute("DROP FUNCTION IF EXISTS anju_area_distance(text, double precision, double precision)")
