"""planning (issue #15): plan targets, training records (精培) and follow-up visits; their row-level security

- ``plan_target``: a target per area, facility or cooperation project, year and metric (``models.TargetMetric``); the
  actual is computed from rows on a date, never stored (resolvers/targets.py).
- ``training_record``: a member's training (course, provider, dates, completed, certificate).
- ``training_follow_up``: a visit to a trainee placed in work.
- migrations/sql/planning.sql: grants and policies of the three tables for the scoped roles.

Revision ID: 0018
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations import sql

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL_FILES = {"planning": "58ead18ad0f1d1c0"}


def upgrade() -> None:
    op.create_table(
        "plan_target",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("subject", sa.Enum("area", "facility", "project", name="target_subject"), nullable=False),
        sa.Column("admin_code", sa.String(length=12), nullable=True),
        sa.Column("facility_id", sa.BigInteger(), nullable=True),
        sa.Column("project_id", sa.BigInteger(), nullable=True),
        sa.Column("county_code", sa.String(length=6), nullable=False),
        sa.Column("year", sa.SmallInteger(), nullable=False),
        sa.Column(
            "metric",
            sa.Enum(
                "persons_employed",
                "coverage_rate",
                "households_linked",
                "average_linked_income",
                "yuan_per_household",
                "jobs",
                "households_benefited",
                name="target_metric",
            ),
            nullable=False,
        ),
        sa.Column("target", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.CheckConstraint(
            "(subject = 'area' AND metric IN ('persons_employed', 'coverage_rate', 'households_linked', 'average_linked_income')) OR (subject = 'facility' AND metric IN ('households_linked', 'yuan_per_household', 'jobs')) OR (subject = 'project' AND metric IN ('households_benefited', 'jobs'))",
            name=op.f("ck_plan_target_metric_of_subject"),
        ),
        sa.CheckConstraint(
            "(subject = 'area') = (admin_code IS NOT NULL) AND (subject = 'facility') = (facility_id IS NOT NULL) AND (subject = 'project') = (project_id IS NOT NULL)",
            name=op.f("ck_plan_target_one_subject"),
        ),
        sa.CheckConstraint("target >= 0", name=op.f("ck_plan_target_target_nonneg")),
        sa.CheckConstraint("year BETWEEN 2000 AND 2100", name=op.f("ck_plan_target_year_range")),
        sa.ForeignKeyConstraint(["admin_code"], ["admin_area.code"], name=op.f("fk_plan_target_admin_code_admin_area")),
        sa.ForeignKeyConstraint(
            ["facility_id"], ["facility.id"], name=op.f("fk_plan_target_facility_id_facility"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["cooperation_project.id"],
            name=op.f("fk_plan_target_project_id_cooperation_project"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_target")),
    )
    op.create_index(op.f("ix_plan_target_admin_code"), "plan_target", ["admin_code"], unique=False)
    op.create_index("ix_plan_target_county_code", "plan_target", ["county_code"], unique=False)
    op.create_index(op.f("ix_plan_target_facility_id"), "plan_target", ["facility_id"], unique=False)
    op.create_index(op.f("ix_plan_target_project_id"), "plan_target", ["project_id"], unique=False)
    op.create_index(
        "uq_plan_target_subject_year_metric",
        "plan_target",
        [
            "subject",
            sa.literal_column("coalesce(admin_code, '')"),
            sa.literal_column("coalesce(facility_id, 0)"),
            sa.literal_column("coalesce(project_id, 0)"),
            "year",
            "metric",
        ],
        unique=True,
    )
    op.create_table(
        "training_record",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("household_id", sa.BigInteger(), nullable=False),
        sa.Column("course", sa.Text(), nullable=False),
        sa.Column("provider_facility_id", sa.BigInteger(), nullable=True),
        sa.Column("provider_name", sa.Text(), nullable=True),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.Column("completed", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("certificate", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.CheckConstraint("NOT completed OR ended_on IS NOT NULL", name=op.f("ck_training_record_completed_has_end")),
        sa.CheckConstraint("ended_on IS NULL OR ended_on >= started_on", name=op.f("ck_training_record_dates_in_order")),
        sa.CheckConstraint(
            "provider_facility_id IS NOT NULL OR provider_name IS NOT NULL", name=op.f("ck_training_record_provider_known")
        ),
        sa.ForeignKeyConstraint(
            ["household_id"], ["household.id"], name=op.f("fk_training_record_household_id_household"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["member.id"], name=op.f("fk_training_record_member_id_member"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["provider_facility_id"], ["facility.id"], name=op.f("fk_training_record_provider_facility_id_facility")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_record")),
    )
    op.create_index(op.f("ix_training_record_household_id"), "training_record", ["household_id"], unique=False)
    op.create_index(op.f("ix_training_record_member_id"), "training_record", ["member_id"], unique=False)
    op.create_index(op.f("ix_training_record_provider_facility_id"), "training_record", ["provider_facility_id"], unique=False)
    op.create_table(
        "training_follow_up",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("training_id", sa.BigInteger(), nullable=False),
        sa.Column("household_id", sa.BigInteger(), nullable=False),
        sa.Column("visited_on", sa.Date(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["household_id"], ["household.id"], name=op.f("fk_training_follow_up_household_id_household"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["training_id"],
            ["training_record.id"],
            name=op.f("fk_training_follow_up_training_id_training_record"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_follow_up")),
    )
    op.create_index(op.f("ix_training_follow_up_household_id"), "training_follow_up", ["household_id"], unique=False)
    op.create_index(op.f("ix_training_follow_up_training_id"), "training_follow_up", ["training_id"], unique=False)
    sql.apply_at(op.execute, revision, *SQL_FILES)


def downgrade() -> None:
    op.drop_index(op.f("ix_training_follow_up_training_id"), table_name="training_follow_up")
    op.drop_index(op.f("ix_training_follow_up_household_id"), table_name="training_follow_up")
    op.drop_table("training_follow_up")
    op.drop_index(op.f("ix_training_record_provider_facility_id"), table_name="training_record")
    op.drop_index(op.f("ix_training_record_member_id"), table_name="training_record")
    op.drop_index(op.f("ix_training_record_household_id"), table_name="training_record")
    op.drop_table("training_record")
    op.drop_index("uq_plan_target_subject_year_metric", table_name="plan_target")
    op.drop_index(op.f("ix_plan_target_project_id"), table_name="plan_target")
    op.drop_index(op.f("ix_plan_target_facility_id"), table_name="plan_target")
    op.drop_index("ix_plan_target_county_code", table_name="plan_target")
    op.drop_index(op.f("ix_plan_target_admin_code"), table_name="plan_target")
    op.drop_table("plan_target")
    op.execute("DROP TYPE IF EXISTS target_metric")
    op.execute("DROP TYPE IF EXISTS target_subject")
