"""a site's and a facility's location is never an empty point

``location`` is required (``RelocationSite.location`` and ``Facility.location`` are ``GeoJSON!``), so
``POINT EMPTY`` there would be a location that is not one: the API could only fail on it. Empty
geometries in optional columns (dwelling, boundary, footprint, workplace) stay possible and are
served as null.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("relocation_site", "facility")


def upgrade() -> None:
    for table in TABLES:
        op.create_check_constraint(op.f(f"ck_{table}_location_not_empty"), table, "NOT ST_IsEmpty(location)")


def downgrade() -> None:
    for table in TABLES:
        op.drop_constraint(op.f(f"ck_{table}_location_not_empty"), table, type_="check")
