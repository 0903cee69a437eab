"""API keys and the decision log.

The decision log keeps each decision with the normalised event it answered (the
customer's id only as a pseudonym) and the columns auditors filter on. `(client,
event_id)` is unique: the idempotency key is a constraint, not a check-then-insert.

Revision ID: 0001
Revises:
Created: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEQUENCE_NUMBER = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)
INDEXED = (
    "customer_pseudonym",
    "customership_unit",
    "event_type",
    "handler_unit",
    "home_municipality",
    "occurred_at",
    "provider_unit",
    "rule_id",
    "ruleset_version",
)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", SEQUENCE_NUMBER, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("municipality", sa.String(3), nullable=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_sha256", name="uq_api_keys_key_sha256"),
    )
    op.create_table(
        "decisions",
        sa.Column("seq", SEQUENCE_NUMBER, autoincrement=True, nullable=False),
        sa.Column("decision_id", sa.String(36), nullable=False),
        sa.Column("client", sa.String(128), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("customer_type", sa.String(16), nullable=False),
        sa.Column("customer_pseudonym", sa.String(64), nullable=False),
        sa.Column("home_municipality", sa.String(3), nullable=False),
        sa.Column("occurred_at", TIMESTAMP, nullable=False),
        sa.Column("decided_at", TIMESTAMP, nullable=False),
        sa.Column("handler_unit", sa.String(64), nullable=False),
        sa.Column("provider_unit", sa.String(64), nullable=False),
        sa.Column("customership_unit", sa.String(64), nullable=True),
        sa.Column("customership_role", sa.String(32), nullable=True),
        sa.Column("cost_group", sa.String(32), nullable=False),
        sa.Column("rule_id", sa.String(128), nullable=False),
        sa.Column("ruleset_version", sa.String(32), nullable=False),
        sa.Column("ruleset_sha256", sa.String(64), nullable=False),
        sa.Column("decision", DOCUMENT, nullable=False),
        sa.Column("event", DOCUMENT, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_decisions"),
        sa.UniqueConstraint("client", "event_id", name="uq_decisions_client_event_id"),
        sa.UniqueConstraint("decision_id", name="uq_decisions_decision_id"),
    )
    for column in INDEXED:
        op.create_index(f"ix_decisions_{column}", "decisions", [column])
    op.create_index("ix_decisions_decided_at_seq", "decisions", ["decided_at", "seq"])


def downgrade() -> None:
    op.drop_table("decisions")
    op.drop_table("api_keys")
