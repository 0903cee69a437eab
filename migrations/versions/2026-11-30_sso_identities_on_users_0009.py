"""People signed in through the identity provider have rows of `users`, found by issuer and subject.

Their sessions are rows of `ui_sessions` as a local account's are, so logout and `reitti users
disable` end them the same way; the row keeps the role and municipality their claims gave at
their last sign-in, and no password. The unique index makes one row per (issuer, subject);
local accounts have neither (NULLs are never equal).

Revision ID: 0009
Revises: 0008
Created: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("issuer", sa.String(255), nullable=True))
    op.add_column("users", sa.Column("subject", sa.String(255), nullable=True))
    op.create_index("ix_users_issuer_subject", "users", ["issuer", "subject"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_users_issuer_subject", table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("subject")
        batch.drop_column("issuer")
