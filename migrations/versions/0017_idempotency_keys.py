"""idempotency keys of create mutations (issue #16)

``idempotency_key``: a create mutation given ``idempotencyKey`` records (viewer, key, mutation, SHA-256 of its input,
the ids it wrote) in the same transaction as the record, so a client that retries after losing the answer gets the
first result instead of a duplicate. The scope roles read and write it (every viewer's rows are keyed by its name in the
service; the table holds ids and hashes only, no personal data).

Revision ID: 0017
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLES = ("anju_officer", "anju_partner", "anju_grid_worker")


def upgrade() -> None:
    op.create_table(
        "idempotency_key",
        sa.Column("viewer_name", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("operation", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.LargeBinary(), nullable=False),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("viewer_name", "key", name=op.f("pk_idempotency_key")),
    )
    for role in ROLES:
        op.execute(f"GRANT SELECT, INSERT, UPDATE ON idempotency_key TO {role}")


def downgrade() -> None:
    op.drop_table("idempotency_key")
