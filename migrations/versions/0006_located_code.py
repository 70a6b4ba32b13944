"""located_code: the admin area whose polygon contains a site, facility or household point

``areaCode`` filters match rows by their admin code *or* by lying inside the area's polygon. Testing
every candidate point against a county polygon (hundreds of vertices) costs ~70 ms per request at
Sichuan scale; instead each point carries ``located_code``, the code of the most specific admin area
whose polygon contains it (a county here; null outside every polygon), kept by a BEFORE trigger on
the point column, and recomputed for all rows when admin polygons change. Then "inside the area's
polygon" is ``located_code LIKE '<prefix>%'``, an index lookup.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# This revision's SQL is history; as it is today it lives in migrations/sql/located_code.sql.
TABLES = (("relocation_site", "location"), ("facility", "location"), ("household", "dwelling"))

LOCATE = """
CREATE FUNCTION anju_locate(g geometry) RETURNS varchar LANGUAGE sql STABLE AS $$
    SELECT code FROM admin_area WHERE geom IS NOT NULL AND g IS NOT NULL AND ST_Intersects(geom, g)
    ORDER BY ST_Area(geom), code LIMIT 1  -- the smallest polygon: the most specific area
$$"""


def _row_function(table: str, column: str) -> str:
    return f"""
CREATE FUNCTION anju_locate_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.located_code := anju_locate(NEW.{column});
    RETURN NEW;
END $$"""


RELOCATE_ALL = """
CREATE FUNCTION anju_relocate_all() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE relocation_site SET located_code = anju_locate(location);
    UPDATE facility SET located_code = anju_locate(location);
    UPDATE household SET located_code = anju_locate(dwelling)
        WHERE located_code IS DISTINCT FROM anju_locate(dwelling);
    RETURN NULL;
END $$"""


def upgrade() -> None:
    op.execute(LOCATE)
    for table, column in TABLES:
        op.add_column(table, sa.Column("located_code", sa.String(12), nullable=True))
        op.execute(f"UPDATE {table} SET located_code = anju_locate({column})")
        op.execute(f"CREATE INDEX ix_{table}_located_code ON {table} (located_code text_pattern_ops)")
        op.execute(_row_function(table, column))
        op.execute(
            f"CREATE TRIGGER {table}_locate BEFORE INSERT OR UPDATE OF {column} ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION anju_locate_{table}()"
        )
    op.execute(RELOCATE_ALL)
    op.execute(
        "CREATE TRIGGER admin_area_relocate AFTER INSERT OR DELETE OR UPDATE OF geom ON admin_area "
        "FOR EACH STATEMENT EXECUTE FUNCTION anju_relocate_all()"
    )
    op.execute("CREATE INDEX ix_household_admin_code_pattern ON household (admin_code text_pattern_ops)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_household_admin_code_pattern")
    op.execute("DROP TRIGGER IF EXISTS admin_area_relocate ON admin_area")
    op.execute("DROP FUNCTION IF EXISTS anju_relocate_all()")
    for table, _ in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_locate ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS anju_locate_{table}()")
        op.execute(f"DROP INDEX IF EXISTS ix_{table}_located_code")
        op.drop_column(table, "located_code")
    op.execute("DROP FUNCTION IF EXISTS anju_locate(geometry)")
