"""map layers in Chinese basemap coordinates, built in PostgreSQL

``anju_from_wgs84(geometry, sys)`` (migrations/sql/coords.sql) expresses a stored WGS84 geometry in
GCJ-02 or BD-09, vertex by vertex, so ``featureCollection(coordSys:)`` and vector tiles with
``coordSys`` are built entirely in SQL (issue #12) instead of decoding the JSON in Python.

Revision ID: 0012
Revises: 0010
"""

from collections.abc import Sequence

from alembic import op

from migrations import sql

revision: str = "0012"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL_FILES = {"coords": "cd2a21b922fba289"}


def upgrade() -> None:
    sql.apply_at(op.execute, revision, *SQL_FILES)


def downgrade() -> None:
    for function in (
        "anju_from_wgs84(geometry, text)",
        "anju_position_from_wgs84(double precision, double precision, text)",
        "anju_wgs84_to_gcj02(double precision, double precision)",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
