"""Unit staff, the units' worklists, their acknowledgements and the customership register.

Keys and accounts get a `unit`: the central teams sign in as staff of their unit, and a coach
is staff of `local-<municipality>` (filled in here for the coaches already there). A decision
now also puts items on the worklists of the units it concerns (`worklist_items`, working state
that answers update) and, when it names a customership, a row in the register
(`customerships`, each customer's latest row kept in `customer_holders`). A unit's answer
to an item is an `acknowledgements` record, chained as overrides are and append-only as they are.

The decisions already in the log are put in the register here, in the order of their own
`occurred_at` (ties by `seq`), as the writer would have; they put nothing on worklists: they
were made before anyone had a worklist to answer.

Revision ID: 0007
Revises: 0006
Created: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEQUENCE_NUMBER = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    for table in ("api_keys", "users"):
        op.add_column(table, sa.Column("unit", sa.String(64), nullable=True))
        op.execute(f"UPDATE {table} SET unit = 'local-' || municipality WHERE role = 'coach'")
    op.create_table(
        "worklist_items",
        sa.Column("decision_seq", SEQUENCE_NUMBER, autoincrement=False, nullable=False),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("decision_id", sa.String(36), nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("decided_at", TIMESTAMP, nullable=False),
        sa.Column("other_unit", sa.String(64), nullable=True),
        sa.Column("anomaly", sa.String(32), nullable=True),
        sa.Column("answered_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("decision_seq", "unit", "kind", name="pk_worklist_items"),
    )
    op.create_index(
        "ix_worklist_items_unit_answered_at_decision_seq", "worklist_items", ["unit", "answered_at", "decision_seq"]
    )
    op.create_index("ix_worklist_items_decision_id", "worklist_items", ["decision_id"])
    op.create_table(
        "customerships",
        sa.Column("decision_seq", SEQUENCE_NUMBER, autoincrement=False, nullable=False),
        sa.Column("decision_id", sa.String(36), nullable=False),
        sa.Column("customer_pseudonym", sa.String(64), nullable=False),
        sa.Column("occurred_at", TIMESTAMP, nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("previous_unit", sa.String(64), nullable=True),
        sa.Column("anomaly", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("decision_seq", name="pk_customerships"),
        sa.UniqueConstraint("decision_id", name="uq_customerships_decision_id"),
    )
    op.create_index(
        "ix_customerships_customer_pseudonym_occurred_at_seq",
        "customerships",
        ["customer_pseudonym", "occurred_at", "decision_seq"],
    )
    op.create_index("ix_customerships_anomaly", "customerships", ["anomaly"])
    op.create_table(
        "customer_holders",
        sa.Column("customer_pseudonym", sa.String(64), nullable=False),
        sa.Column("occurred_at", TIMESTAMP, nullable=False),
        sa.Column("decision_seq", SEQUENCE_NUMBER, nullable=False),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("customer_pseudonym", name="pk_customer_holders"),
    )
    op.create_table(
        "acknowledgements",
        sa.Column("seq", SEQUENCE_NUMBER, autoincrement=True, nullable=False),
        sa.Column("acknowledgement_id", sa.String(36), nullable=False),
        sa.Column("decision_id", sa.String(36), nullable=False),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("text", sa.String(2000), nullable=False),
        sa.Column("returned_to", sa.String(64), nullable=True),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        sa.Column("recorded_by_key", SEQUENCE_NUMBER, nullable=False),
        sa.Column("recorded_role", sa.String(16), nullable=False),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_acknowledgements"),
        sa.UniqueConstraint("acknowledgement_id", name="uq_acknowledgements_acknowledgement_id"),
        sa.UniqueConstraint("decision_id", "unit", name="uq_acknowledgements_decision_id_unit"),
        sa.ForeignKeyConstraint(
            ["decision_id"], ["decisions.decision_id"], name="fk_acknowledgements_decision_id_decisions"
        ),
    )
    op.create_index("ix_acknowledgements_recorded_at", "acknowledgements", ["recorded_at"])
    _guard_acknowledgements()
    _register_existing_decisions()


def _guard_acknowledgements() -> None:
    """Append-only, as overrides are (0002, 0005): no UPDATE, DELETE, TRUNCATE nor REPLACE."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER acknowledgements_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON acknowledgements "
            "FOR EACH STATEMENT EXECUTE FUNCTION reitti_append_only()"
        )
        return
    for operation in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER acknowledgements_no_{operation.lower()} BEFORE {operation} ON acknowledgements "
            f"BEGIN SELECT RAISE(ABORT, '{operation} of acknowledgements is refused: the table is append-only'); END"
        )
    op.execute(
        "CREATE TRIGGER acknowledgements_no_replace BEFORE INSERT ON acknowledgements "
        "WHEN EXISTS (SELECT 1 FROM acknowledgements WHERE seq = NEW.seq "
        "OR acknowledgement_id = NEW.acknowledgement_id OR (decision_id = NEW.decision_id AND unit = NEW.unit)) "
        "BEGIN SELECT RAISE(ABORT, 'REPLACE of acknowledgements is refused: the table is append-only'); END"
    )


def _register_existing_decisions() -> None:
    """The register's rows of the decisions already logged: each holder from its event's own time on."""
    decisions = sa.table(
        "decisions",
        sa.column("seq"),
        sa.column("decision_id"),
        sa.column("customer_pseudonym"),
        sa.column("occurred_at"),
        sa.column("event_type"),
        sa.column("customership_unit"),
        sa.column("customership_role"),
    )
    connection = op.get_bind()
    query = (
        sa.select(decisions)
        .where(decisions.c.customership_unit.is_not(None))
        .order_by(decisions.c.occurred_at, decisions.c.seq)
    )
    holders: dict[str, dict[str, object]] = {}
    rows = []
    for row in connection.execute(query):
        rows.append(
            {
                "decision_seq": row.seq,
                "decision_id": row.decision_id,
                "customer_pseudonym": row.customer_pseudonym,
                "occurred_at": row.occurred_at,
                "event_type": row.event_type,
                "unit": row.customership_unit,
                "role": row.customership_role,
                "previous_unit": holders[row.customer_pseudonym]["unit"] if row.customer_pseudonym in holders else None,
                "anomaly": None,
            }
        )
        holders[row.customer_pseudonym] = {
            "customer_pseudonym": row.customer_pseudonym,
            "occurred_at": row.occurred_at,
            "decision_seq": row.seq,
            "unit": row.customership_unit,
        }
    for table, written in (("customerships", rows), ("customer_holders", list(holders.values()))):
        if written:
            op.bulk_insert(sa.table(table, *(sa.column(name) for name in written[0])), written)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER acknowledgements_append_only ON acknowledgements")
    else:
        for name in ("no_update", "no_delete", "no_replace"):
            op.execute(f"DROP TRIGGER acknowledgements_{name}")
    # The acknowledgements' links stay in the audit chain, naming records this revision no longer
    # has: a downgrade with acknowledgements in the log leaves a chain the older service calls broken.
    op.drop_table("acknowledgements")
    op.drop_table("customer_holders")
    op.drop_table("customerships")
    op.drop_table("worklist_items")
    for table in ("users", "api_keys"):
        op.drop_column(table, "unit")
