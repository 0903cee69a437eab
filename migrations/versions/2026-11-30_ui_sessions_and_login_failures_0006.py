"""Server-side UI sessions and login failures shared by every worker.

A UI session was a signed, stateless cookie: logging out, disabling the user or changing
the password could not end it before its eight hours were up. `ui_sessions` keeps each
logged-in session as a row (only a SHA-256 of the random id the cookie carries), so that
deleting the row ends it at once in every worker; `expires_at` (absolute) and
`last_seen_at` (idle) let expired rows be found and removed by index. Anonymous visitors
keep a signed cookie and have no row.

`login_failures` counts failed logins per (name, address) pair and per address, keyed by a
SHA-256 of what is counted: the login throttle was per process, so with N workers it held
N times over, and it locked a name out for everyone. Both tables are working state, not
records: rows are deleted when they end, and no trigger guards them.

Revision ID: 0006
Revises: 0005
Created: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEQUENCE_NUMBER = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ui_sessions",
        sa.Column("id_sha256", sa.String(64), nullable=False),
        sa.Column("user_id", SEQUENCE_NUMBER, nullable=False),
        sa.Column("password", sa.String(16), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("last_seen_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id_sha256", name="pk_ui_sessions"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_ui_sessions_user_id_users", ondelete="CASCADE"),
    )
    for column in ("user_id", "last_seen_at", "expires_at"):
        op.create_index(f"ix_ui_sessions_{column}", "ui_sessions", [column])
    op.create_table(
        "login_failures",
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_at", TIMESTAMP, nullable=False),
        sa.Column("last_at", TIMESTAMP, nullable=False),
        sa.Column("blocked_until", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("subject", name="pk_login_failures"),
    )
    op.create_index("ix_login_failures_last_at", "login_failures", ["last_at"])


def downgrade() -> None:
    op.drop_table("login_failures")
    op.drop_table("ui_sessions")
