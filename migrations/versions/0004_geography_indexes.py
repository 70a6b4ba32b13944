"""GiST indexes on the geography casts of point columns, for radius search in metres

``ST_DWithin(location::geography, :point::geography, :metres)`` can only use an index built on the
same expression; the geometry GiST indexes of 0001 serve bbox/intersects/KNN in degrees.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_relocation_site_location_geog", "relocation_site", "location"),
    ("ix_facility_location_geog", "facility", "location"),
    ("ix_household_dwelling_geog", "household", "dwelling"),
)


def upgrade() -> None:
    for name, table, column in INDEXES:
        op.execute(f"CREATE INDEX {name} ON {table} USING gist ((CAST({column} AS geography)))")
    op.create_index("ix_facility_kind", "facility", ["kind"])


def downgrade() -> None:
    op.drop_index("ix_facility_kind", table_name="facility")
    for name, _, _ in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
