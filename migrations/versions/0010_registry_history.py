"""the registry keeps history: dated members and residences, income with its household size, versioned sites/facilities

- ``member.joined_on`` / ``join_reason`` and ``left_on`` / ``leave_reason``: a member belongs to the
  household on D when joined_on <= D < left_on (NULL bounds open). Existing members: joined_on NULL
  (a member since before the records begin), reason ``registered``.
- ``household_residence``: where a household lived from each date on (site, admin area, dwelling).
  Existing households get theirs from their columns: relocated ones lived in their origin village
  until ``relocated_on`` and at their site since; the others where they are, since always.
  The household's ``site_id``/``admin_code``/``dwelling``/``relocated_on`` follow its latest row.
- ``household_employment_status`` becomes ``household_status``: the residence and the members present
  join the employment counts in one step function of the date (migrations/sql/household_status.sql).
- ``household_income.household_size`` (and ``surveyed_on``): the size the per-capita figure of that
  year divides by, recorded with the income. Existing incomes: the members they count today.
- ``relocation_site`` / ``facility``: ``version`` (optimistic locking for their updates) and
  ``closed_on`` (a closed facility drops out of proximity after that date and stays in history:
  ``anju_open_on``). County officers write the sites and facilities (and site origins) under their
  own area codes only (row-level-security write policies); they still read every one.
- ``household``: ``relocated_on`` no longer needs a current site (a household may move out of one).

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

from migrations import sql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL_FILES = {
    "household_counts": "8807a03a7083d9f0",
    "household_status": "681125ce6c17d9c6",
    "access_policies": "2b5f03c9f4cacf94",
}
JOIN_REASONS = ("registered", "birth", "marriage", "moving_in", "other")  # models.JoinReason then (history)
LEAVE_REASONS = ("death", "marriage", "moving_out", "other")  # models.LeaveReason then (history)
PLACES = ("relocation_site", "facility")
# The name 0003's check constraint got from the naming convention (truncated to 63 characters with a hash).
OLD_SEGMENT_CHECK = "ck_household_employment_status_ck_household_employment__b290"


def upgrade() -> None:
    join_reason = postgresql.ENUM(*JOIN_REASONS, name="join_reason")
    leave_reason = postgresql.ENUM(*LEAVE_REASONS, name="leave_reason")
    join_reason.create(op.get_bind())
    leave_reason.create(op.get_bind())
    op.add_column("member", sa.Column("joined_on", sa.Date(), nullable=True))
    op.add_column(
        "member",
        sa.Column("join_reason", postgresql.ENUM(name="join_reason", create_type=False), server_default="registered"),
    )
    op.alter_column("member", "join_reason", nullable=False)
    op.add_column("member", sa.Column("left_on", sa.Date(), nullable=True))
    op.add_column("member", sa.Column("leave_reason", postgresql.ENUM(name="leave_reason", create_type=False), nullable=True))
    op.create_check_constraint(
        op.f("ck_member_left_after_joined"), "member", "left_on IS NULL OR joined_on IS NULL OR left_on > joined_on"
    )
    op.create_check_constraint(op.f("ck_member_leave_pair"), "member", "(left_on IS NULL) = (leave_reason IS NULL)")

    op.drop_constraint(op.f("ck_household_relocated_needs_site"), "household", type_="check")

    for table in PLACES:
        op.add_column(table, sa.Column("closed_on", sa.Date(), nullable=True))
        op.add_column(table, sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        op.create_check_constraint(
            op.f(f"ck_{table}_closed_after_opened"), table, "closed_on IS NULL OR opened_on IS NULL OR closed_on >= opened_on"
        )

    op.add_column("household_income", sa.Column("household_size", sa.SmallInteger(), nullable=True))
    op.add_column("household_income", sa.Column("surveyed_on", sa.Date(), nullable=True))
    op.create_check_constraint(op.f("ck_household_income_household_size_positive"), "household_income", "household_size > 0")
    op.execute(
        "UPDATE household_income hi SET household_size = nullif(h.member_count, 0) FROM household h WHERE h.id = hi.household_id"
    )

    op.create_table(
        "household_residence",
        sa.Column("household_id", sa.BigInteger(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("site_id", sa.BigInteger(), nullable=True),
        sa.Column("admin_code", sa.String(12), nullable=False),
        sa.Column("dwelling", Geometry("POINT", srid=4326, spatial_index=False), nullable=True),
        sa.ForeignKeyConstraint(
            ["household_id"], ["household.id"], name=op.f("fk_household_residence_household_id_household"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["site_id"], ["relocation_site.id"], name=op.f("fk_household_residence_site_id_relocation_site")),
        sa.ForeignKeyConstraint(["admin_code"], ["admin_area.code"], name=op.f("fk_household_residence_admin_code_admin_area")),
        sa.PrimaryKeyConstraint("household_id", "valid_from", name=op.f("pk_household_residence")),
    )
    op.create_index(op.f("ix_household_residence_site_id"), "household_residence", ["site_id"])
    op.create_index(op.f("ix_household_residence_admin_code"), "household_residence", ["admin_code"])
    op.create_index(op.f("ix_household_residence_dwelling"), "household_residence", ["dwelling"], postgresql_using="gist")

    op.execute("ALTER TABLE household_employment_status RENAME TO household_status")
    op.execute("ALTER TABLE household_status RENAME CONSTRAINT pk_household_employment_status TO pk_household_status")
    op.execute(f"ALTER TABLE household_status RENAME CONSTRAINT {OLD_SEGMENT_CHECK} TO ck_household_status_segment")
    op.execute(
        "ALTER TABLE household_status RENAME CONSTRAINT fk_household_employment_status_household_id_household "
        "TO fk_household_status_household_id_household"
    )
    op.add_column("household_status", sa.Column("site_id", sa.BigInteger(), nullable=True))
    op.add_column("household_status", sa.Column("admin_code", sa.String(12), nullable=True))
    op.add_column("household_status", sa.Column("county_code", sa.String(6), sa.Computed("left(admin_code, 6)", persisted=True)))
    op.add_column("household_status", sa.Column("members", sa.Integer(), server_default="0", nullable=False))
    op.add_column("household_status", sa.Column("labor_force", sa.Integer(), server_default="0", nullable=False))
    op.create_index(op.f("ix_household_status_site_id"), "household_status", ["site_id", "valid_from"])
    op.create_index(op.f("ix_household_status_county_code"), "household_status", ["county_code", "valid_from"])

    # 0003/0005's employment-status functions and triggers give way to household_status.sql's.
    for trigger, table in (
        ("employment_status_insert", "employment"),
        ("employment_status_update", "employment"),
        ("employment_status_delete", "employment"),
        ("employment_truncated", "employment"),
        ("household_status_insert", "household"),
    ):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
    for function in (
        "anju_employment_status_new()",
        "anju_employment_status_old()",
        "anju_employment_status_changed()",
        "anju_employment_truncated()",
        "anju_household_status_new()",
        "anju_refresh_employment_status(bigint[])",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
    sql.apply_at(op.execute, revision, *SQL_FILES)

    # Existing households: residence rows from their columns (what the insert trigger does for new ones),
    # which refreshes every household's status; the current counts follow the members who have not left.
    op.execute(
        "INSERT INTO household_residence (household_id, valid_from, site_id, admin_code, dwelling) "
        "SELECT id, date '-infinity', NULL, coalesce(origin_admin_code, admin_code), NULL FROM household "
        "WHERE relocated_on IS NOT NULL AND site_id IS NOT NULL "
        "UNION ALL SELECT id, relocated_on, site_id, admin_code, dwelling FROM household "
        "WHERE relocated_on IS NOT NULL AND site_id IS NOT NULL "
        "UNION ALL SELECT id, date '-infinity', site_id, admin_code, dwelling FROM household "
        "WHERE relocated_on IS NULL OR site_id IS NULL"
    )


def downgrade() -> None:
    op.drop_table("household_residence")
    for trigger, table in (
        ("employment_status_insert", "employment"),
        ("employment_status_update", "employment"),
        ("employment_status_delete", "employment"),
        ("employment_truncated", "employment"),
        ("member_status_insert", "member"),
        ("member_status_update", "member"),
        ("member_status_delete", "member"),
        ("member_status_truncated", "member"),
        ("household_residence_insert", "household"),
        ("income_household_size", "household_income"),
    ):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
    for function in (
        "anju_household_status_new()",
        "anju_household_status_old()",
        "anju_household_status_changed()",
        "anju_household_status_truncated()",
        "anju_residence_changed()",
        "anju_household_residence_new()",
        "anju_income_household_size()",
        "anju_refresh_household_status(bigint[])",
        "anju_open_on(date, date, date)",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
    op.drop_index(op.f("ix_household_status_county_code"), "household_status")
    op.drop_index(op.f("ix_household_status_site_id"), "household_status")
    for column in ("labor_force", "members", "county_code", "admin_code", "site_id"):
        op.drop_column("household_status", column)
    op.execute("ALTER TABLE household_status RENAME TO household_employment_status")
    op.execute("ALTER TABLE household_employment_status RENAME CONSTRAINT pk_household_status TO pk_household_employment_status")
    op.execute(f"ALTER TABLE household_employment_status RENAME CONSTRAINT ck_household_status_segment TO {OLD_SEGMENT_CHECK}")
    op.execute(
        "ALTER TABLE household_employment_status RENAME CONSTRAINT fk_household_status_household_id_household "
        "TO fk_household_employment_status_household_id_household"
    )
    op.drop_constraint(op.f("ck_household_income_household_size_positive"), "household_income", type_="check")
    op.drop_column("household_income", "surveyed_on")
    op.drop_column("household_income", "household_size")
    for table in PLACES:
        op.drop_constraint(op.f(f"ck_{table}_closed_after_opened"), table, type_="check")
        op.drop_column(table, "version")
        op.drop_column(table, "closed_on")
    # Members who left are gone from the older schema's point of view only as far as their rows allow:
    # the rows stay, their dates go.
    op.drop_constraint(op.f("ck_member_leave_pair"), "member", type_="check")
    op.drop_constraint(op.f("ck_member_left_after_joined"), "member", type_="check")
    for column in ("leave_reason", "left_on", "join_reason", "joined_on"):
        op.drop_column("member", column)
    op.execute("DROP TYPE leave_reason")
    op.execute("DROP TYPE join_reason")
    op.execute("UPDATE household SET relocated_on = NULL WHERE site_id IS NULL AND relocated_on IS NOT NULL")
    op.create_check_constraint(
        op.f("ck_household_relocated_needs_site"), "household", "relocated_on IS NULL OR site_id IS NOT NULL"
    )
    # The places' write policies and the site origins' row-level security, which 0008's policies do not know.
    for table in PLACES:
        for policy in ("anju_officer_insert", "anju_officer_update"):
            op.execute(f"DROP POLICY IF EXISTS {policy} ON {table}")
    for policy in ("anju_officer_scope", "anju_partner_scope", "anju_officer_insert", "anju_officer_delete"):
        op.execute(f"DROP POLICY IF EXISTS {policy} ON site_origin")
    op.execute("ALTER TABLE site_origin DISABLE ROW LEVEL SECURITY")
    op.execute("REVOKE INSERT, DELETE ON site_origin FROM anju_officer")
    # 0008's definitions (the files as they were before this revision), which rebuild the employment status.
    for name in ("household_counts", "employment_status", "access_policies"):
        for statement in sql.split(sql.previous(revision, name)):
            op.execute(statement)
    op.execute("SELECT anju_refresh_employment_status(ARRAY(SELECT id FROM household))")
    op.execute(
        "UPDATE household h SET member_count = c.n, labor_force_count = c.lf FROM (SELECT household_id, count(*) AS n, "
        "count(*) FILTER (WHERE labor_force) AS lf FROM member GROUP BY household_id) c WHERE h.id = c.household_id"
    )
