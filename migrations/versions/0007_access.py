"""Who sees what: users, audit log, personal-data columns and row-level security for scoped viewers

- ``app_user``: the people and portals holding tokens (role, area codes, partner).
- ``audit_log``: one row per mutation, written in the mutation's transaction.
- ``member.id_number_last4`` / ``member.phone``: the ID number itself is never stored
  (``id_number_hash`` = HMAC-SHA256 with a key from settings); phone numbers are stored and masked
  on the way out for roles without the right.
- ``cooperation_project.self_raised_share``: the share of a co-funded project's cost households
  raised themselves (the report's courtyard renovation: 0.7).
- Row-level security. County officers and partners run every statement as the NOLOGIN role
  ``anju_officer`` / ``anju_partner`` (``SET LOCAL ROLE`` at the start of each transaction, with the
  viewer's scope in ``anju.*`` settings); the policies below confine those roles to the viewer's
  rows (officers: households under their area codes, every site and facility; partners: no
  household record, sites and facilities of their paired counties, their own partner records; in
  aggregate transactions the households of their paired counties). Admins and
  planners see every row by definition and keep the login role (RLS would also stop PostgreSQL from
  using spatial indexes for their filters, because PostGIS operators are not leakproof). Policy
  quals are security barriers: a viewer's filter is never evaluated over rows it may not see.
- ``anju_mask_name`` / ``anju_mask_phone``: the masks shown to roles without the right to personal
  data (``张*``, ``138****5678``); ``anju_exists``: whether a row exists at all (a write outside the
  viewer's scope is FORBIDDEN, not NOT_FOUND).

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OFFICER, PARTNER = "anju_officer", "anju_partner"
ROLES = (OFFICER, PARTNER)
VIEWER_ROLES = ("admin", "county_officer", "planner", "partner")  # models.ViewerRole then (history)


def _array(name: str, kind: str) -> str:
    """A viewer setting as an array, read once per statement (an InitPlan); NULL when unset."""
    return f"CAST((SELECT nullif(current_setting('anju.{name}', true), '')::{kind}[]) AS {kind}[])"


# The functions, grants and policies below are this revision's text (history); as they are today
# they live in migrations/sql/masks.sql and migrations/sql/access_policies.sql.
# Every qual is a plain conjunction so ``county_code = ANY(…)`` / ``left(admin_code, 6) = ANY(…)`` can
# drive an index scan; PostGIS operators in the viewer's own filters are not leakproof and so are
# evaluated after these quals, never through a spatial index.
HOUSEHOLD_SCOPE = (
    "(SELECT current_setting('anju.households', true)) = 'areas' "
    f"AND county_code = ANY ({_array('counties', 'varchar')}) "
    f"AND admin_code LIKE ANY ({_array('patterns', 'text')})"
)
BY_HOUSEHOLD = "EXISTS (SELECT 1 FROM household h WHERE h.id = household_id)"
PAIRED_PLACES = f"left(admin_code, 6) = ANY ({_array('counties', 'text')}) AND admin_code LIKE ANY ({_array('patterns', 'text')})"
PARTNER_ID = "(SELECT nullif(current_setting('anju.partner_id', true), '')::bigint)"

# table -> {role: qual}; a role without a policy on a table with RLS reads no row of it.
POLICIES = {
    "household": {OFFICER: HOUSEHOLD_SCOPE, PARTNER: HOUSEHOLD_SCOPE},
    "member": {OFFICER: BY_HOUSEHOLD, PARTNER: BY_HOUSEHOLD},
    "employment": {OFFICER: BY_HOUSEHOLD, PARTNER: BY_HOUSEHOLD},
    "income_linkage": {OFFICER: BY_HOUSEHOLD, PARTNER: BY_HOUSEHOLD},
    "household_income": {OFFICER: BY_HOUSEHOLD, PARTNER: BY_HOUSEHOLD},
    "household_employment_status": {OFFICER: BY_HOUSEHOLD, PARTNER: BY_HOUSEHOLD},
    # officers: all public infrastructure (a constant-true qual keeps the spatial indexes usable)
    "relocation_site": {OFFICER: "true", PARTNER: PAIRED_PLACES},
    "facility": {OFFICER: "true", PARTNER: PAIRED_PLACES},
    "cooperation_partner": {PARTNER: f"id = {PARTNER_ID}"},
    "partner_county": {PARTNER: f"partner_id = {PARTNER_ID}"},
    "cooperation_project": {PARTNER: f"partner_id = {PARTNER_ID}"},
}
READ_ONLY = ("admin_area", "site_origin")

FUNCTIONS = [
    # 张三 → 张*, 阿西木呷 → 阿***; the first character stays, every other one becomes *.
    """CREATE FUNCTION anju_mask_name(v text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE WHEN v IS NULL THEN NULL
                    ELSE left(v, 1) || repeat('*', greatest(char_length(v) - 1, 1)) END $$""",
    # 13812345678 → 138****5678; shorter numbers keep only their last 4 characters.
    """CREATE FUNCTION anju_mask_phone(v text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE WHEN v IS NULL THEN NULL
                    WHEN char_length(v) >= 11 THEN left(v, 3) || repeat('*', char_length(v) - 7) || right(v, 4)
                    ELSE repeat('*', greatest(char_length(v) - 4, 0)) || right(v, 4) END $$""",
    # Existence regardless of the caller's row-level scope (owner rights), for FORBIDDEN vs NOT_FOUND.
    """CREATE FUNCTION anju_exists(kind text, key bigint) RETURNS boolean LANGUAGE sql STABLE
        SECURITY DEFINER SET search_path = public AS $$
        SELECT CASE kind
            WHEN 'household' THEN EXISTS (SELECT 1 FROM household WHERE id = key)
            WHEN 'member' THEN EXISTS (SELECT 1 FROM member WHERE id = key)
            WHEN 'employment' THEN EXISTS (SELECT 1 FROM employment WHERE id = key)
            WHEN 'facility' THEN EXISTS (SELECT 1 FROM facility WHERE id = key)
            WHEN 'relocation_site' THEN EXISTS (SELECT 1 FROM relocation_site WHERE id = key)
            ELSE NULL END $$""",
]


def upgrade() -> None:
    viewer_role = postgresql.ENUM(*VIEWER_ROLES, name="viewer_role", create_type=False)
    viewer_role.create(op.get_bind(), checkfirst=False)
    op.create_table(
        "app_user",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("role", viewer_role, nullable=False),
        sa.Column("area_codes", postgresql.ARRAY(sa.String(12)), nullable=False, server_default="{}"),
        sa.Column(
            "partner_id",
            sa.BigInteger,
            sa.ForeignKey("cooperation_partner.id", name=op.f("fk_app_user_partner_id_cooperation_partner")),
            nullable=True,
        ),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_user")),
        sa.UniqueConstraint("name", name=op.f("uq_app_user_name")),
        sa.CheckConstraint("name ~ '^[A-Za-z0-9_.@-]{1,64}$'", name=op.f("ck_app_user_name_form")),
        sa.CheckConstraint("(role = 'partner') = (partner_id IS NOT NULL)", name=op.f("ck_app_user_partner_role")),
        sa.CheckConstraint("role <> 'county_officer' OR cardinality(area_codes) > 0", name=op.f("ck_app_user_officer_areas")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column(
            "user_id",
            sa.BigInteger,
            sa.ForeignKey("app_user.id", name=op.f("fk_audit_log_user_id_app_user"), ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("user_name", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("entity", sa.Text, nullable=False),
        sa.Column("entity_id", sa.Text, nullable=False),
        sa.Column("before", postgresql.JSONB, nullable=True),
        sa.Column("after", postgresql.JSONB, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_entity_entity_id_id"), "audit_log", ["entity", "entity_id", "id"])
    op.add_column("member", sa.Column("id_number_last4", sa.String(4), nullable=True))
    op.add_column("member", sa.Column("phone", sa.Text, nullable=True))
    # one person, one ID number: a number recorded twice is refused (CONFLICT)
    op.create_index(
        op.f("uq_member_id_number_hash"),
        "member",
        ["id_number_hash"],
        unique=True,
        postgresql_where=sa.text("id_number_hash IS NOT NULL"),
    )
    op.add_column("cooperation_project", sa.Column("self_raised_share", sa.Numeric(4, 3), nullable=True))
    op.create_check_constraint(
        op.f("ck_cooperation_project_share_range"), "cooperation_project", "self_raised_share BETWEEN 0 AND 1"
    )
    for f in FUNCTIONS:
        op.execute(f)

    for table in ("relocation_site", "facility"):
        op.execute(f"CREATE INDEX ix_{table}_county ON {table} (left(admin_code, 6))")
    for role in ROLES:
        op.execute(f"""DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
                CREATE ROLE {role} NOLOGIN NOINHERIT;
            END IF; END $$""")
        op.execute(f"GRANT {role} TO CURRENT_USER")
        for table in POLICIES:
            op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {role}")
        for table in READ_ONLY:
            op.execute(f"GRANT SELECT ON {table} TO {role}")
        # Scoped viewers write audit rows but read none (the audit log is for admins, who are not scoped).
        op.execute(f"GRANT INSERT ON audit_log TO {role}")
        op.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")
        op.execute(f"GRANT EXECUTE ON FUNCTION anju_exists(text, bigint) TO {role}")
    for table, quals in POLICIES.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        for role, qual in quals.items():
            op.execute(f"CREATE POLICY {role}_scope ON {table} TO {role} USING ({qual})")
    op.execute("ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY viewer_writes ON audit_log FOR INSERT TO {OFFICER}, {PARTNER} WITH CHECK (true)")


def downgrade() -> None:
    # The roles are cluster-wide and other databases may use them: only this database's grants go.
    op.execute("DROP POLICY IF EXISTS viewer_writes ON audit_log")
    for table, quals in POLICIES.items():
        for role in quals:
            op.execute(f"DROP POLICY IF EXISTS {role}_scope ON {table}")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    for role in ROLES:
        for table in [*POLICIES, *READ_ONLY]:
            op.execute(f"REVOKE ALL ON {table} FROM {role}")
        op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role}")
    for table in ("relocation_site", "facility"):
        op.execute(f"DROP INDEX IF EXISTS ix_{table}_county")
    op.execute("DROP FUNCTION IF EXISTS anju_exists(text, bigint)")
    op.execute("DROP FUNCTION IF EXISTS anju_mask_phone(text)")
    op.execute("DROP FUNCTION IF EXISTS anju_mask_name(text)")
    op.drop_constraint("ck_cooperation_project_share_range", "cooperation_project")
    op.drop_column("cooperation_project", "self_raised_share")
    op.drop_index("uq_member_id_number_hash", "member")
    op.drop_column("member", "phone")
    op.drop_column("member", "id_number_last4")
    op.drop_index("ix_audit_log_entity_entity_id_id", "audit_log")
    op.drop_table("audit_log")
    op.drop_table("app_user")
    op.execute("DROP TYPE viewer_role")
