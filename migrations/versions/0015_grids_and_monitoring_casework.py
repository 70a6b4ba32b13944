"""grids and monitoring casework (issue #17): 三级网格, 监测对象 and their stages, 帮扶措施, 走访, 三保障和饮水安全, 巡回指导

- ``grid``: three nested levels under a county (township, village or community, group or building), optional
  polygons, a responsible grid worker; ``household.grid_id`` its bottom-level grid.
- ``viewer_role`` gains ``grid_worker``: the households of its grids only (row-level security, migrations/sql/casework.sql).
- ``monitoring_case`` / ``case_step`` (append-only history, never deleted) / ``case_transition`` (the stage order),
  ``assistance_measure``, ``follow_up_visit``, ``guarantee_check``, ``hardship_report``.
- ``inspection`` / ``spot_check`` / ``finding`` (dated states open → rectifying → rectified → verified).

The file: migrations/sql/casework.sql (new).

Revision ID: 0015
Revises: 0013
"""

from collections.abc import Sequence
from itertools import pairwise

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

from migrations import sql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL_FILES = {"casework": "be57022d65b9894a"}
# The enums as they are in this revision (history: models holds the present)
CASE_STAGE = (
    "application",
    "home_verification",
    "village_appraisal",
    "public_notice",
    "township_review",
    "county_approval",
    "elimination_proposal",
    "elimination_verification",
    "elimination_appraisal",
    "elimination_notice",
    "elimination_review",
    "elimination_confirmation",
    "not_included",
)
INSPECTION_KIND = ("tour", "unannounced")
FINDING_KIND = (
    "missed_monitoring",
    "measures_not_in_place",
    "guarantee_gap",
    "income_not_stable",
    "data_quality",
    "funds",
    "other",
)
FINDING_STATE = ("open", "rectifying", "rectified", "verified")
RISK_TYPE = (
    "illness",
    "disability",
    "schooling_costs",
    "disaster",
    "accident",
    "failed_industry",
    "unstable_employment",
    "lack_of_labor",
    "unsafe_housing",
    "unsafe_drinking_water",
    "other",
)
CASE_SOURCE = ("application", "grid_visit", "data_comparison", "hotline")
MEASURE_TYPE = (
    "industry",
    "employment",
    "skills_training",
    "public_welfare_post",
    "education",
    "medical",
    "housing",
    "drinking_water",
    "social_assistance",
    "micro_credit",
    "other",
)
MEASURE_STATUS = ("planned", "in_progress", "completed", "cancelled")
STAGE_ORDER = CASE_STAGE[:12]  # not_included ends a refused identification: no transition leads there


def upgrade() -> None:
    op.execute("ALTER TYPE viewer_role ADD VALUE IF NOT EXISTS 'grid_worker'")
    for name, values in {
        "case_stage": CASE_STAGE,
        "inspection_kind": INSPECTION_KIND,
        "finding_kind": FINDING_KIND,
        "finding_state": FINDING_STATE,
        "risk_type": RISK_TYPE,
        "case_source": CASE_SOURCE,
        "measure_type": MEASURE_TYPE,
        "measure_status": MEASURE_STATUS,
    }.items():
        postgresql.ENUM(*values, name=name).create(op.get_bind())
    op.create_table(
        "case_transition",
        sa.Column("from_stage", postgresql.ENUM(name="case_stage", create_type=False), nullable=False),
        sa.Column("to_stage", postgresql.ENUM(name="case_stage", create_type=False), nullable=False),
        sa.PrimaryKeyConstraint("from_stage", name=op.f("pk_case_transition")),
    )
    op.create_table(
        "inspection",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("county_code", sa.String(length=12), nullable=False),
        sa.Column("kind", postgresql.ENUM(name="inspection_kind", create_type=False), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("team", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.CheckConstraint("ends_on >= starts_on", name=op.f("ck_inspection_dates_in_order")),
        sa.ForeignKeyConstraint(["county_code"], ["admin_area.code"], name=op.f("fk_inspection_county_code_admin_area")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection")),
    )
    op.create_index(op.f("ix_inspection_county_code"), "inspection", ["county_code"], unique=False)
    op.create_table(
        "finding",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("inspection_id", sa.BigInteger(), nullable=False),
        sa.Column("county_code", sa.String(length=6), nullable=False),
        sa.Column("kind", postgresql.ENUM(name="finding_kind", create_type=False), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("unit", sa.Text(), nullable=False),
        sa.Column("found_on", sa.Date(), nullable=False),
        sa.Column("deadline", sa.Date(), nullable=False),
        sa.Column("state", postgresql.ENUM(name="finding_state", create_type=False), nullable=False),
        sa.Column("rectifying_on", sa.Date(), nullable=True),
        sa.Column("rectified_on", sa.Date(), nullable=True),
        sa.Column("verified_on", sa.Date(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.CheckConstraint(
            "(rectifying_on IS NULL OR rectifying_on >= found_on) AND (rectified_on IS NULL OR rectified_on >= rectifying_on) AND (verified_on IS NULL OR verified_on >= rectified_on)",
            name=op.f("ck_finding_states_in_order"),
        ),
        sa.CheckConstraint("deadline >= found_on", name=op.f("ck_finding_deadline_after_found")),
        sa.ForeignKeyConstraint(["inspection_id"], ["inspection.id"], name=op.f("fk_finding_inspection_id_inspection")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_finding")),
    )
    op.create_index(op.f("ix_finding_county_code"), "finding", ["county_code"], unique=False)
    op.create_index(op.f("ix_finding_inspection_id"), "finding", ["inspection_id"], unique=False)
    op.create_geospatial_table(
        "grid",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("county_code", sa.String(length=12), nullable=False),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "area",
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
        sa.Column("worker_user_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("(level = 1) = (parent_id IS NULL)", name=op.f("ck_grid_parent_level")),
        sa.CheckConstraint("level BETWEEN 1 AND 3", name=op.f("ck_grid_level_range")),
        sa.ForeignKeyConstraint(["county_code"], ["admin_area.code"], name=op.f("fk_grid_county_code_admin_area")),
        sa.ForeignKeyConstraint(["parent_id"], ["grid.id"], name=op.f("fk_grid_parent_id_grid")),
        sa.ForeignKeyConstraint(["worker_user_id"], ["app_user.id"], name=op.f("fk_grid_worker_user_id_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grid")),
    )
    op.create_geospatial_index("ix_grid_area", "grid", ["area"], unique=False, postgresql_using="gist", postgresql_ops={})
    op.create_index(op.f("ix_grid_county_code"), "grid", ["county_code"], unique=False)
    op.create_index(op.f("ix_grid_parent_id"), "grid", ["parent_id"], unique=False)
    op.create_index(op.f("ix_grid_worker_user_id"), "grid", ["worker_user_id"], unique=False)
    op.create_index("uq_grid_county_code_code", "grid", ["county_code", "code"], unique=True)
    op.create_table(
        "hardship_report",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("household_id", sa.BigInteger(), nullable=False),
        sa.Column("reported_on", sa.Date(), nullable=False),
        sa.Column("risk_type", postgresql.ENUM(name="risk_type", create_type=False), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["household_id"], ["household.id"], name=op.f("fk_hardship_report_household_id_household")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hardship_report")),
    )
    op.create_index(op.f("ix_hardship_report_household_id"), "hardship_report", ["household_id"], unique=False)
    op.create_table(
        "monitoring_case",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("household_id", sa.BigInteger(), nullable=False),
        sa.Column("county_code", sa.String(length=6), nullable=False),
        sa.Column("category", postgresql.ENUM(name="monitoring_category", create_type=False), nullable=False),
        sa.Column("risk_types", postgresql.ARRAY(postgresql.ENUM(name="risk_type", create_type=False)), nullable=False),
        sa.Column("source", postgresql.ENUM(name="case_source", create_type=False), nullable=False),
        sa.Column("opened_on", sa.Date(), nullable=False),
        sa.Column("stage", postgresql.ENUM(name="case_stage", create_type=False), nullable=False),
        sa.Column("stage_on", sa.Date(), nullable=False),
        sa.Column("included_on", sa.Date(), nullable=True),
        sa.Column("closed_on", sa.Date(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("cardinality(risk_types) > 0", name=op.f("ck_monitoring_case_risk_types_given")),
        sa.CheckConstraint("closed_on IS NULL OR closed_on >= opened_on", name=op.f("ck_monitoring_case_closed_after_opened")),
        sa.ForeignKeyConstraint(["household_id"], ["household.id"], name=op.f("fk_monitoring_case_household_id_household")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_case")),
    )
    op.create_index("ix_monitoring_case_county_code_opened_on", "monitoring_case", ["county_code", "opened_on"], unique=False)
    op.create_index(op.f("ix_monitoring_case_household_id"), "monitoring_case", ["household_id"], unique=False)
    op.create_table(
        "spot_check",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("inspection_id", sa.BigInteger(), nullable=False),
        sa.Column("household_id", sa.BigInteger(), nullable=True),
        sa.Column("site_id", sa.BigInteger(), nullable=True),
        sa.Column("visited_on", sa.Date(), nullable=False),
        sa.CheckConstraint("(household_id IS NULL) <> (site_id IS NULL)", name=op.f("ck_spot_check_one_target")),
        sa.ForeignKeyConstraint(["household_id"], ["household.id"], name=op.f("fk_spot_check_household_id_household")),
        sa.ForeignKeyConstraint(["inspection_id"], ["inspection.id"], name=op.f("fk_spot_check_inspection_id_inspection")),
        sa.ForeignKeyConstraint(["site_id"], ["relocation_site.id"], name=op.f("fk_spot_check_site_id_relocation_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spot_check")),
    )
    op.create_index(op.f("ix_spot_check_inspection_id"), "spot_check", ["inspection_id"], unique=False)
    op.create_table(
        "assistance_measure",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("household_id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=True),
        sa.Column("type", postgresql.ENUM(name="measure_type", create_type=False), nullable=False),
        sa.Column("responsible", sa.Text(), nullable=False),
        sa.Column("funds", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("start_on", sa.Date(), nullable=False),
        sa.Column("end_on", sa.Date(), nullable=True),
        sa.Column("status", postgresql.ENUM(name="measure_status", create_type=False), nullable=False),
        sa.Column("facility_id", sa.BigInteger(), nullable=True),
        sa.Column("project_id", sa.BigInteger(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.CheckConstraint("end_on IS NULL OR end_on >= start_on", name=op.f("ck_assistance_measure_dates_in_order")),
        sa.CheckConstraint("funds >= 0", name=op.f("ck_assistance_measure_funds_nonneg")),
        sa.ForeignKeyConstraint(["case_id"], ["monitoring_case.id"], name=op.f("fk_assistance_measure_case_id_monitoring_case")),
        sa.ForeignKeyConstraint(["facility_id"], ["facility.id"], name=op.f("fk_assistance_measure_facility_id_facility")),
        sa.ForeignKeyConstraint(["household_id"], ["household.id"], name=op.f("fk_assistance_measure_household_id_household")),
        sa.ForeignKeyConstraint(
            ["project_id"], ["cooperation_project.id"], name=op.f("fk_assistance_measure_project_id_cooperation_project")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assistance_measure")),
    )
    op.create_index(op.f("ix_assistance_measure_case_id"), "assistance_measure", ["case_id"], unique=False)
    op.create_index(op.f("ix_assistance_measure_household_id"), "assistance_measure", ["household_id"], unique=False)
    op.create_table(
        "case_step",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("stage", postgresql.ENUM(name="case_stage", create_type=False), nullable=False),
        sa.Column("approved", sa.Boolean(), nullable=False),
        sa.Column("stage_after", postgresql.ENUM(name="case_stage", create_type=False), nullable=False),
        sa.Column("acted_on", sa.Date(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("user_name", sa.Text(), nullable=False),
        sa.Column("actor_level", sa.Text(), nullable=False),
        sa.Column("participants", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("notice_from", sa.Date(), nullable=True),
        sa.Column("notice_to", sa.Date(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("notice_to IS NULL OR notice_to >= notice_from", name=op.f("ck_case_step_notice_in_order")),
        sa.ForeignKeyConstraint(["case_id"], ["monitoring_case.id"], name=op.f("fk_case_step_case_id_monitoring_case")),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name=op.f("fk_case_step_user_id_app_user"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_step")),
    )
    op.create_index(op.f("ix_case_step_case_id"), "case_step", ["case_id"], unique=False)
    op.create_index("ix_case_step_case_id_acted_on", "case_step", ["case_id", "acted_on", "id"], unique=False)
    op.create_table(
        "follow_up_visit",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("household_id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=True),
        sa.Column("visited_on", sa.Date(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("user_name", sa.Text(), nullable=False),
        sa.Column("findings", sa.Text(), nullable=False),
        sa.Column("per_capita_income", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["monitoring_case.id"], name=op.f("fk_follow_up_visit_case_id_monitoring_case")),
        sa.ForeignKeyConstraint(["household_id"], ["household.id"], name=op.f("fk_follow_up_visit_household_id_household")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_follow_up_visit_user_id_app_user"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follow_up_visit")),
    )
    op.create_index(op.f("ix_follow_up_visit_case_id"), "follow_up_visit", ["case_id"], unique=False)
    op.create_index(op.f("ix_follow_up_visit_household_id"), "follow_up_visit", ["household_id"], unique=False)
    op.create_table(
        "guarantee_check",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("household_id", sa.BigInteger(), nullable=False),
        sa.Column("checked_on", sa.Date(), nullable=False),
        sa.Column("visit_id", sa.BigInteger(), nullable=True),
        sa.Column("education", sa.Boolean(), nullable=True),
        sa.Column("medical", sa.Boolean(), nullable=True),
        sa.Column("housing", sa.Boolean(), nullable=True),
        sa.Column("drinking_water", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(["household_id"], ["household.id"], name=op.f("fk_guarantee_check_household_id_household")),
        sa.ForeignKeyConstraint(["visit_id"], ["follow_up_visit.id"], name=op.f("fk_guarantee_check_visit_id_follow_up_visit")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guarantee_check")),
    )
    op.create_index(op.f("ix_guarantee_check_household_id"), "guarantee_check", ["household_id"], unique=False)
    op.create_index("ix_guarantee_check_household_id_checked_on", "guarantee_check", ["household_id", "checked_on"], unique=False)
    op.add_column("household", sa.Column("grid_id", sa.BigInteger(), nullable=True))
    op.create_index(op.f("ix_household_grid_id"), "household", ["grid_id"], unique=False)
    op.create_foreign_key(op.f("fk_household_grid_id_grid"), "household", "grid", ["grid_id"], ["id"])
    transitions = sa.table("case_transition", sa.column("from_stage"), sa.column("to_stage"))
    op.bulk_insert(transitions, [{"from_stage": a, "to_stage": b} for a, b in pairwise(STAGE_ORDER)])
    # The role here, not only in casework.sql: a later revision applies that file last (apply_at skips it here), and the
    # revisions between grant to the role (0016's live_events.sql, 0017) — on a cluster that never held it, too.
    op.execute("""DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anju_grid_worker') THEN
            CREATE ROLE anju_grid_worker NOLOGIN NOINHERIT;
        END IF; END $$""")
    op.execute("GRANT anju_grid_worker TO CURRENT_USER")
    sql.apply_at(op.execute, revision, *SQL_FILES)


def downgrade() -> None:
    for table in (
        "household",
        "member",
        "employment",
        "income_linkage",
        "household_income",
        "household_status",
        "household_residence",
        "relocation_site",
        "facility",
        "site_origin",
    ):
        op.execute(f"DROP POLICY IF EXISTS anju_grid_worker_scope ON {table}")
    op.execute("DROP POLICY IF EXISTS anju_grid_worker_writes ON audit_log")
    op.drop_constraint(op.f("fk_household_grid_id_grid"), "household", type_="foreignkey")
    op.drop_index(op.f("ix_household_grid_id"), table_name="household")
    op.drop_column("household", "grid_id")
    op.drop_index("ix_guarantee_check_household_id_checked_on", table_name="guarantee_check")
    op.drop_index(op.f("ix_guarantee_check_household_id"), table_name="guarantee_check")
    op.drop_table("guarantee_check")
    op.drop_index(op.f("ix_follow_up_visit_household_id"), table_name="follow_up_visit")
    op.drop_index(op.f("ix_follow_up_visit_case_id"), table_name="follow_up_visit")
    op.drop_table("follow_up_visit")
    op.drop_index("ix_case_step_case_id_acted_on", table_name="case_step")
    op.drop_index(op.f("ix_case_step_case_id"), table_name="case_step")
    op.drop_table("case_step")
    op.drop_index(op.f("ix_assistance_measure_household_id"), table_name="assistance_measure")
    op.drop_index(op.f("ix_assistance_measure_case_id"), table_name="assistance_measure")
    op.drop_table("assistance_measure")
    op.drop_index(op.f("ix_spot_check_inspection_id"), table_name="spot_check")
    op.drop_table("spot_check")
    op.drop_index(op.f("ix_monitoring_case_household_id"), table_name="monitoring_case")
    op.drop_index("ix_monitoring_case_county_code_opened_on", table_name="monitoring_case")
    op.drop_table("monitoring_case")
    op.drop_index(op.f("ix_hardship_report_household_id"), table_name="hardship_report")
    op.drop_table("hardship_report")
    op.drop_index("uq_grid_county_code_code", table_name="grid")
    op.drop_index(op.f("ix_grid_worker_user_id"), table_name="grid")
    op.drop_index(op.f("ix_grid_parent_id"), table_name="grid")
    op.drop_index(op.f("ix_grid_county_code"), table_name="grid")
    op.drop_geospatial_index("ix_grid_area", table_name="grid", postgresql_using="gist", column_name="area")
    op.drop_geospatial_table("grid")
    op.drop_index(op.f("ix_finding_inspection_id"), table_name="finding")
    op.drop_index(op.f("ix_finding_county_code"), table_name="finding")
    op.drop_table("finding")
    op.drop_index(op.f("ix_inspection_county_code"), table_name="inspection")
    op.drop_table("inspection")
    op.drop_table("case_transition")
    for name in (
        "anju_viewer_grid_tree()",
        "anju_viewer_grids()",
        "anju_case_open_on(date, date, date)",
        "anju_case_stage_on(bigint, date)",
        "anju_casework_exists(text, bigint)",
        "anju_user_by_name(text)",
        "anju_user_name(bigint)",
        "anju_case_step_in_order()",
        "anju_never_deleted()",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS {name}")
    for name in (
        "case_stage",
        "inspection_kind",
        "finding_kind",
        "finding_state",
        "risk_type",
        "case_source",
        "measure_type",
        "measure_status",
    ):
        op.execute(f"DROP TYPE IF EXISTS {name}")
    op.execute("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM anju_grid_worker")
    op.execute("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM anju_grid_worker")
    # viewer_role keeps the label grid_worker (PostgreSQL cannot drop an enum label); no user may hold it:
    op.execute("DELETE FROM app_user WHERE role = 'grid_worker'")
