"""browser login: passwords (Argon2id), failed-login lockout and rotating refresh tokens

- ``app_user.password_hash``: argon2-cffi's PHC string (Argon2id), null for users who hold only ``anju token`` tokens;
  ``failed_logins`` (failures in a row) and ``locked_until`` (set when they reach ``auth.max_failed_logins``).
- ``refresh_token``: refresh tokens of browser logins, as SHA-256 hashes; a ``family`` per login, rotated on every use,
  revoked whole on logout or when a rotated token is presented again.

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("app_user", sa.Column("password_hash", sa.Text(), nullable=True))
    op.add_column("app_user", sa.Column("failed_logins", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.add_column("app_user", sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "refresh_token",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("family", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name=op.f("fk_refresh_token_user_id_app_user"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_refresh_token_token_hash")),
    )
    # access_policies.sql grants USAGE on every sequence to the scoped roles; say it for this one too, so the migrated
    # database is what the files describe (tests/test_db_logic.py). They get no privilege on the table itself.
    op.execute("GRANT USAGE ON SEQUENCE refresh_token_id_seq TO anju_officer, anju_partner")
    op.create_index(op.f("ix_refresh_token_family"), "refresh_token", ["family"])
    op.create_index(op.f("ix_refresh_token_user_id"), "refresh_token", ["user_id"])


def downgrade() -> None:
    op.drop_table("refresh_token")
    op.drop_column("app_user", "locked_until")
    op.drop_column("app_user", "failed_logins")
    op.drop_column("app_user", "password_hash")
