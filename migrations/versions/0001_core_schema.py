"""core schema: every table of DESIGN.md §4 except grid

Revision ID: 0001
Revises:
Create Date: 2026-11-29 12:38:41.834695
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The enum value lists below are this revision's snapshot (history): the definition is the Python
# enums in models, and tests/test_db_logic.py checks that every enum type at head holds exactly
# their values. A value added later comes with its own revision (ALTER TYPE … ADD VALUE).
ENUM_TYPES = (
    "admin_level",
    "assistance_tier",
    "site_kind",
    "facility_kind",
    "poverty_status",
    "monitoring_category",
    "gender",
    "relation",
    "employment_channel",
    "linkage_mechanism",
    "partner_kind",
)


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_geospatial_table(
        "admin_area",
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "level", sa.Enum("province", "prefecture", "county", "township", "village", name="admin_level"), nullable=False
        ),
        sa.Column("parent_code", sa.String(length=12), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column("assistance_tier", sa.Enum("national_key", "provincial_key", name="assistance_tier"), nullable=True),
        sa.CheckConstraint("code ~ '^[0-9]{6}([0-9]{3}([0-9]{3})?)?$'", name=op.f("ck_admin_area_code_digits")),
        sa.ForeignKeyConstraint(["parent_code"], ["admin_area.code"], name=op.f("fk_admin_area_parent_code_admin_area")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_admin_area")),
    )
    op.create_index(
        "ix_admin_area_code_pattern", "admin_area", ["code"], unique=False, postgresql_ops={"code": "text_pattern_ops"}
    )
    op.create_geospatial_index(
        "ix_admin_area_geom", "admin_area", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_index(op.f("ix_admin_area_parent_code"), "admin_area", ["parent_code"], unique=False)
    op.create_table(
        "cooperation_partner",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("region", sa.Text(), nullable=True),
        sa.Column("kind", sa.Enum("government", "enterprise", "social_organization", name="partner_kind"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cooperation_partner")),
        sa.UniqueConstraint("name", name=op.f("uq_cooperation_partner_name")),
    )
    op.create_table(
        "partner_county",
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("county_code", sa.String(length=12), nullable=False),
        sa.ForeignKeyConstraint(["county_code"], ["admin_area.code"], name=op.f("fk_partner_county_county_code_admin_area")),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["cooperation_partner.id"],
            name=op.f("fk_partner_county_partner_id_cooperation_partner"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("partner_id", "county_code", name=op.f("pk_partner_county")),
    )
    op.create_index(op.f("ix_partner_county_county_code"), "partner_county", ["county_code"], unique=False)
    op.create_geospatial_table(
        "relocation_site",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Enum("urban", "town", "central_village", "other", name="site_kind"), nullable=False),
        sa.Column("admin_code", sa.String(length=12), nullable=False),
        sa.Column(
            "location",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "boundary",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column("planned_households", sa.Integer(), nullable=True),
        sa.Column("planned_population", sa.Integer(), nullable=True),
        sa.Column("opened_on", sa.Date(), nullable=True),
        sa.CheckConstraint("planned_households >= 0", name=op.f("ck_relocation_site_planned_households_nonneg")),
        sa.CheckConstraint("planned_population >= 0", name=op.f("ck_relocation_site_planned_population_nonneg")),
        sa.ForeignKeyConstraint(["admin_code"], ["admin_area.code"], name=op.f("fk_relocation_site_admin_code_admin_area")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_relocation_site")),
    )
    op.create_index(op.f("ix_relocation_site_admin_code"), "relocation_site", ["admin_code"], unique=False)
    op.create_geospatial_index(
        "ix_relocation_site_boundary", "relocation_site", ["boundary"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_geospatial_index(
        "ix_relocation_site_location", "relocation_site", ["location"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_geospatial_table(
        "facility",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "industrial_park",
                "vegetable_base",
                "assistance_workshop",
                "community_factory",
                "training_base",
                "tea_plantation",
                "processing_plant",
                "cooperative",
                "school",
                "clinic",
                "water_supply",
                name="facility_kind",
            ),
            nullable=False,
        ),
        sa.Column("admin_code", sa.String(length=12), nullable=False),
        sa.Column(
            "location",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "footprint",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column("site_id", sa.BigInteger(), nullable=True),
        sa.Column("area_mu", sa.Float(), nullable=True),
        sa.Column("planned_jobs", sa.Integer(), nullable=True),
        sa.Column("operator", sa.Text(), nullable=True),
        sa.Column("opened_on", sa.Date(), nullable=True),
        sa.CheckConstraint("area_mu >= 0", name=op.f("ck_facility_area_mu_nonneg")),
        sa.CheckConstraint("planned_jobs >= 0", name=op.f("ck_facility_planned_jobs_nonneg")),
        sa.ForeignKeyConstraint(["admin_code"], ["admin_area.code"], name=op.f("fk_facility_admin_code_admin_area")),
        sa.ForeignKeyConstraint(["site_id"], ["relocation_site.id"], name=op.f("fk_facility_site_id_relocation_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_facility")),
    )
    op.create_index(op.f("ix_facility_admin_code"), "facility", ["admin_code"], unique=False)
    op.create_geospatial_index(
        "ix_facility_footprint", "facility", ["footprint"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_geospatial_index(
        "ix_facility_location", "facility", ["location"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_index(op.f("ix_facility_site_id"), "facility", ["site_id"], unique=False)
    op.create_geospatial_table(
        "household",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("admin_code", sa.String(length=12), nullable=False),
        sa.Column("county_code", sa.String(length=6), sa.Computed("left(admin_code, 6)", persisted=True), nullable=False),
        sa.Column("site_id", sa.BigInteger(), nullable=True),
        sa.Column("origin_admin_code", sa.String(length=12), nullable=True),
        sa.Column(
            "dwelling",
            Geometry(
                geometry_type="POINT", srid=4326, dimension=2, spatial_index=False, from_text="ST_GeomFromEWKT", name="geometry"
            ),
            nullable=True,
        ),
        sa.Column("relocated_on", sa.Date(), nullable=True),
        sa.Column("poverty_status", sa.Enum("poverty_alleviated", "non_poor", name="poverty_status"), nullable=False),
        sa.Column(
            "monitoring_category",
            sa.Enum("unstable_out_of_poverty", "marginal", "sudden_hardship", name="monitoring_category"),
            nullable=True,
        ),
        sa.Column("risk_eliminated", sa.Boolean(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.CheckConstraint(
            "(monitoring_category IS NULL) = (risk_eliminated IS NULL)", name=op.f("ck_household_monitoring_pair")
        ),
        sa.CheckConstraint("relocated_on IS NULL OR site_id IS NOT NULL", name=op.f("ck_household_relocated_needs_site")),
        sa.ForeignKeyConstraint(["admin_code"], ["admin_area.code"], name=op.f("fk_household_admin_code_admin_area")),
        sa.ForeignKeyConstraint(
            ["origin_admin_code"], ["admin_area.code"], name=op.f("fk_household_origin_admin_code_admin_area")
        ),
        sa.ForeignKeyConstraint(["site_id"], ["relocation_site.id"], name=op.f("fk_household_site_id_relocation_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_household")),
        sa.UniqueConstraint("code", name=op.f("uq_household_code")),
    )
    op.create_index(op.f("ix_household_admin_code"), "household", ["admin_code"], unique=False)
    op.create_index("ix_household_county_code", "household", ["county_code"], unique=False)
    op.create_geospatial_index(
        "ix_household_dwelling", "household", ["dwelling"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_index(op.f("ix_household_origin_admin_code"), "household", ["origin_admin_code"], unique=False)
    op.create_index(op.f("ix_household_site_id"), "household", ["site_id"], unique=False)
    op.create_table(
        "site_origin",
        sa.Column("site_id", sa.BigInteger(), nullable=False),
        sa.Column("origin_admin_code", sa.String(length=12), nullable=False),
        sa.ForeignKeyConstraint(
            ["origin_admin_code"], ["admin_area.code"], name=op.f("fk_site_origin_origin_admin_code_admin_area")
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["relocation_site.id"], name=op.f("fk_site_origin_site_id_relocation_site"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("site_id", "origin_admin_code", name=op.f("pk_site_origin")),
    )
    op.create_index(op.f("ix_site_origin_origin_admin_code"), "site_origin", ["origin_admin_code"], unique=False)
    op.create_table(
        "cooperation_project",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("county_code", sa.String(length=12), nullable=False),
        sa.Column("facility_id", sa.BigInteger(), nullable=True),
        sa.Column("site_id", sa.BigInteger(), nullable=True),
        sa.Column("year", sa.SmallInteger(), nullable=False),
        sa.Column("funds", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("households_benefited", sa.Integer(), nullable=True),
        sa.CheckConstraint("funds >= 0", name=op.f("ck_cooperation_project_funds_nonneg")),
        sa.CheckConstraint("households_benefited >= 0", name=op.f("ck_cooperation_project_households_benefited_nonneg")),
        sa.CheckConstraint("year BETWEEN 2000 AND 2100", name=op.f("ck_cooperation_project_year_range")),
        sa.ForeignKeyConstraint(["county_code"], ["admin_area.code"], name=op.f("fk_cooperation_project_county_code_admin_area")),
        sa.ForeignKeyConstraint(["facility_id"], ["facility.id"], name=op.f("fk_cooperation_project_facility_id_facility")),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["cooperation_partner.id"], name=op.f("fk_cooperation_project_partner_id_cooperation_partner")
        ),
        sa.ForeignKeyConstraint(["site_id"], ["relocation_site.id"], name=op.f("fk_cooperation_project_site_id_relocation_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cooperation_project")),
    )
    op.create_index(op.f("ix_cooperation_project_county_code"), "cooperation_project", ["county_code"], unique=False)
    op.create_index(op.f("ix_cooperation_project_facility_id"), "cooperation_project", ["facility_id"], unique=False)
    op.create_index(op.f("ix_cooperation_project_partner_id"), "cooperation_project", ["partner_id"], unique=False)
    op.create_index(op.f("ix_cooperation_project_site_id"), "cooperation_project", ["site_id"], unique=False)
    op.create_table(
        "household_income",
        sa.Column("household_id", sa.BigInteger(), nullable=False),
        sa.Column("year", sa.SmallInteger(), nullable=False),
        sa.Column("net_income", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.CheckConstraint("year BETWEEN 2000 AND 2100", name=op.f("ck_household_income_year_range")),
        sa.ForeignKeyConstraint(
            ["household_id"], ["household.id"], name=op.f("fk_household_income_household_id_household"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("household_id", "year", name=op.f("pk_household_income")),
    )
    op.create_table(
        "income_linkage",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("household_id", sa.BigInteger(), nullable=False),
        sa.Column("facility_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "mechanism",
            sa.Enum("wage", "dividend", "land_rent", "order_purchase", "asset_income", "other", name="linkage_mechanism"),
            nullable=False,
        ),
        sa.Column("year", sa.SmallInteger(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_income_linkage_amount_nonneg")),
        sa.CheckConstraint("year BETWEEN 2000 AND 2100", name=op.f("ck_income_linkage_year_range")),
        sa.ForeignKeyConstraint(["facility_id"], ["facility.id"], name=op.f("fk_income_linkage_facility_id_facility")),
        sa.ForeignKeyConstraint(
            ["household_id"], ["household.id"], name=op.f("fk_income_linkage_household_id_household"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_income_linkage")),
    )
    op.create_index(op.f("ix_income_linkage_facility_id"), "income_linkage", ["facility_id"], unique=False)
    op.create_index(op.f("ix_income_linkage_household_id"), "income_linkage", ["household_id"], unique=False)
    op.create_index("ix_income_linkage_year_household_id", "income_linkage", ["year", "household_id"], unique=False)
    op.create_table(
        "member",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("household_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("id_number_hash", sa.Text(), nullable=True),
        sa.Column("gender", sa.Enum("male", "female", name="gender"), nullable=False),
        sa.Column("birth_year", sa.SmallInteger(), nullable=False),
        sa.Column(
            "relation",
            sa.Enum("head", "spouse", "child", "child_in_law", "grandchild", "parent", "sibling", "other", name="relation"),
            nullable=False,
        ),
        sa.Column("labor_force", sa.Boolean(), nullable=False),
        sa.Column("skills", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.CheckConstraint("birth_year BETWEEN 1900 AND 2100", name=op.f("ck_member_birth_year_range")),
        sa.ForeignKeyConstraint(
            ["household_id"], ["household.id"], name=op.f("fk_member_household_id_household"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member")),
    )
    op.create_index(op.f("ix_member_household_id"), "member", ["household_id"], unique=False)
    op.create_geospatial_table(
        "employment",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "channel",
            sa.Enum(
                "labor_export",
                "workshop",
                "self_employment",
                "public_welfare_post",
                "local_enterprise",
                "flexible",
                name="employment_channel",
            ),
            nullable=False,
        ),
        sa.Column("facility_id", sa.BigInteger(), nullable=True),
        sa.Column("employer_name", sa.Text(), nullable=True),
        sa.Column(
            "workplace",
            Geometry(
                geometry_type="POINT", srid=4326, dimension=2, spatial_index=False, from_text="ST_GeomFromEWKT", name="geometry"
            ),
            nullable=True,
        ),
        sa.Column("outbound_region", sa.Text(), nullable=True),
        sa.Column("start_on", sa.Date(), nullable=False),
        sa.Column("end_on", sa.Date(), nullable=True),
        sa.Column("monthly_wage", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("stable", sa.Boolean(), nullable=False),
        sa.CheckConstraint("end_on IS NULL OR end_on >= start_on", name=op.f("ck_employment_dates_in_order")),
        sa.CheckConstraint("monthly_wage >= 0", name=op.f("ck_employment_monthly_wage_nonneg")),
        sa.ForeignKeyConstraint(["facility_id"], ["facility.id"], name=op.f("fk_employment_facility_id_facility")),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"], name=op.f("fk_employment_member_id_member"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_employment")),
    )
    op.create_index(op.f("ix_employment_facility_id"), "employment", ["facility_id"], unique=False)
    op.create_index(op.f("ix_employment_member_id"), "employment", ["member_id"], unique=False)
    op.create_geospatial_index(
        "ix_employment_workplace", "employment", ["workplace"], unique=False, postgresql_using="gist", postgresql_ops={}
    )


def downgrade() -> None:
    op.drop_geospatial_index("ix_employment_workplace", table_name="employment", postgresql_using="gist", column_name="workplace")
    op.drop_index(op.f("ix_employment_member_id"), table_name="employment")
    op.drop_index(op.f("ix_employment_facility_id"), table_name="employment")
    op.drop_geospatial_table("employment")
    op.drop_index(op.f("ix_member_household_id"), table_name="member")
    op.drop_table("member")
    op.drop_index("ix_income_linkage_year_household_id", table_name="income_linkage")
    op.drop_index(op.f("ix_income_linkage_household_id"), table_name="income_linkage")
    op.drop_index(op.f("ix_income_linkage_facility_id"), table_name="income_linkage")
    op.drop_table("income_linkage")
    op.drop_table("household_income")
    op.drop_index(op.f("ix_cooperation_project_site_id"), table_name="cooperation_project")
    op.drop_index(op.f("ix_cooperation_project_partner_id"), table_name="cooperation_project")
    op.drop_index(op.f("ix_cooperation_project_facility_id"), table_name="cooperation_project")
    op.drop_index(op.f("ix_cooperation_project_county_code"), table_name="cooperation_project")
    op.drop_table("cooperation_project")
    op.drop_index(op.f("ix_site_origin_origin_admin_code"), table_name="site_origin")
    op.drop_table("site_origin")
    op.drop_index(op.f("ix_household_site_id"), table_name="household")
    op.drop_index(op.f("ix_household_origin_admin_code"), table_name="household")
    op.drop_geospatial_index("ix_household_dwelling", table_name="household", postgresql_using="gist", column_name="dwelling")
    op.drop_index("ix_household_county_code", table_name="household")
    op.drop_index(op.f("ix_household_admin_code"), table_name="household")
    op.drop_geospatial_table("household")
    op.drop_index(op.f("ix_facility_site_id"), table_name="facility")
    op.drop_geospatial_index("ix_facility_location", table_name="facility", postgresql_using="gist", column_name="location")
    op.drop_geospatial_index("ix_facility_footprint", table_name="facility", postgresql_using="gist", column_name="footprint")
    op.drop_index(op.f("ix_facility_admin_code"), table_name="facility")
    op.drop_geospatial_table("facility")
    op.drop_geospatial_index(
        "ix_relocation_site_location", table_name="relocation_site", postgresql_using="gist", column_name="location"
    )
    op.drop_geospatial_index(
        "ix_relocation_site_boundary", table_name="relocation_site", postgresql_using="gist", column_name="boundary"
    )
    op.drop_index(op.f("ix_relocation_site_admin_code"), table_name="relocation_site")
    op.drop_geospatial_table("relocation_site")
    op.drop_index(op.f("ix_partner_county_county_code"), table_name="partner_county")
    op.drop_table("partner_county")
    op.drop_table("cooperation_partner")
    op.drop_index(op.f("ix_admin_area_parent_code"), table_name="admin_area")
    op.drop_geospatial_index("ix_admin_area_geom", table_name="admin_area", postgresql_using="gist", column_name="geom")
    op.drop_index("ix_admin_area_code_pattern", table_name="admin_area", postgresql_ops={"code": "text_pattern_ops"})
    op.drop_geospatial_table("admin_area")
    for name in ENUM_TYPES:
        op.execute(f"DROP TYPE IF EXISTS {name}")
