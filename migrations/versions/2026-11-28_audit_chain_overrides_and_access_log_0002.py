"""The audit chain, overrides and the access log; the decision log becomes append-only.

Every decision and every override gets a link in `audit_chain`: a gap-free sequence number
and `hash = sha256(prev_hash || canonical JSON of the record)` (app/audit/chain.py). Decisions
already in the log are chained here, in the order they were stored, with this migration's
time as their `chained_at`: the chain vouches for them as they are now, which is all that
anything can vouch for after the fact. Refusing to upgrade a log with rows would leave an
operator no way forward but to empty the log, which is worse.

The decision log's single-column indexes become (column, seq): a page of decisions
filtered by one of them, newest first, is then read in index order instead of by walking
the whole log backwards (central OEO in the oldest quarter of a million decisions on
PostgreSQL: 450 ms before, 13 ms after).

Triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) of the four log tables,
on both databases. They stop mistakes and casual edits; an owner who drops them is still
caught by the chain, and one who rewrites the chain by a checkpoint kept elsewhere.

Revision ID: 0002
Revises: 0001
Created: 2026-11-28
"""

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app.audit.chain import canonical_json, plain
from app.models import ChainLink, Decision

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEQUENCE_NUMBER = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)
APPEND_ONLY = ("decisions", "audit_chain", "overrides", "access_log")
# Written out, not imported from the models: this migration must not change when they do.
FILTERED = ("customer_pseudonym", "customership_unit", "event_type", "handler_unit")
FILTERED += ("home_municipality", "provider_unit", "rule_id", "ruleset_version")
BATCH = 1000
GENESIS = "0" * 64
# The decision's columns as this revision's links hashed them (0005 adds `seq` and a MAC):
# written out, so that this migration makes the links of its own time whatever the chain does now.
DECISION_FIELDS = ("decision_id", "client", "event_id", "request_sha256", "event_type", "customer_type")
DECISION_FIELDS += ("customer_pseudonym", "home_municipality", "occurred_at", "decided_at", "handler_unit")
DECISION_FIELDS += ("provider_unit", "customership_unit", "customership_role", "cost_group", "rule_id")
DECISION_FIELDS += ("ruleset_version", "ruleset_sha256", "decision", "event")


def upgrade() -> None:
    op.create_table(
        "audit_chain",
        sa.Column("seq", SEQUENCE_NUMBER, autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("record_id", sa.String(36), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("chained_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_chain"),
        sa.UniqueConstraint("record_id", name="uq_audit_chain_record_id"),
        sa.UniqueConstraint("prev_hash", name="uq_audit_chain_prev_hash"),
        sa.UniqueConstraint("hash", name="uq_audit_chain_hash"),
    )
    op.create_table(
        "overrides",
        sa.Column("seq", SEQUENCE_NUMBER, autoincrement=True, nullable=False),
        sa.Column("override_id", sa.String(36), nullable=False),
        sa.Column("decision_id", sa.String(36), nullable=False),
        sa.Column("handler_unit", sa.String(64), nullable=True),
        sa.Column("customership_unit", sa.String(64), nullable=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("text", sa.String(2000), nullable=False),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        sa.Column("recorded_by_key", SEQUENCE_NUMBER, nullable=False),
        sa.Column("recorded_role", sa.String(16), nullable=False),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_overrides"),
        sa.UniqueConstraint("override_id", name="uq_overrides_override_id"),
        sa.ForeignKeyConstraint(["decision_id"], ["decisions.decision_id"], name="fk_overrides_decision_id_decisions"),
    )
    op.create_index("ix_overrides_decision_id", "overrides", ["decision_id"])
    op.create_table(
        "access_log",
        sa.Column("seq", SEQUENCE_NUMBER, autoincrement=True, nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("key_id", SEQUENCE_NUMBER, nullable=False),
        sa.Column("key_name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("municipality", sa.String(3), nullable=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("decision_id", sa.String(36), nullable=True),
        sa.Column("filters", DOCUMENT, nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_access_log"),
    )
    for column in ("at", "key_name", "decision_id"):
        op.create_index(f"ix_access_log_{column}", "access_log", [column])
    for column in FILTERED:
        op.create_index(f"ix_decisions_{column}_seq", "decisions", [column, "seq"])
        op.drop_index(f"ix_decisions_{column}", "decisions")
    _chain_existing_decisions()
    if op.get_bind().dialect.name == "postgresql":
        _refuse_changes_postgresql()
    else:
        _refuse_changes_sqlite()


def _chain_existing_decisions() -> None:
    """Link the decisions already stored, oldest first, exactly as the service would have."""
    connection = op.get_bind()
    # The model's typed columns: timestamps and documents read back as the service reads them.
    decisions = Decision.__table__
    columns = [decisions.c[name] for name in DECISION_FIELDS]
    # The model's typed table; only the columns of this revision are given, so only they are written.
    chain_table = ChainLink.__table__
    seq, prev_hash = 0, GENESIS
    links: list[dict[str, object]] = []
    for row in connection.execute(sa.select(*columns).order_by(decisions.c.seq)).all():
        seq += 1
        link = _link(seq, prev_hash, row._mapping)
        prev_hash = str(link["hash"])
        links.append(link)
        if len(links) == BATCH:
            connection.execute(sa.insert(chain_table), links)
            links.clear()
    if links:
        connection.execute(sa.insert(chain_table), links)


def _link(seq: int, prev_hash: str, record: Mapping[str, object]) -> dict[str, object]:
    """A link as this revision made it: sha256(prev_hash || document), no MAC."""
    chained_at = datetime.now(UTC)
    document = canonical_json(
        {
            "seq": seq,
            "kind": "decision",
            "chained_at": plain(chained_at),
            "record": {name: plain(record[name]) for name in DECISION_FIELDS},
        }
    )
    digest = hashlib.sha256((prev_hash + document).encode("utf-8")).hexdigest()
    columns = {"seq": seq, "kind": "decision", "record_id": record["decision_id"], "prev_hash": prev_hash}
    return columns | {"hash": digest, "chained_at": chained_at}


def _refuse_changes_postgresql() -> None:
    op.execute(
        """
        CREATE FUNCTION reitti_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% of % is refused: the table is append-only', TG_OP, TG_TABLE_NAME
                USING ERRCODE = 'restrict_violation';
        END
        $$
        """
    )
    for table in APPEND_ONLY:
        # Statement level: refused even when no row would change, and TRUNCATE has no rows.
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION reitti_append_only()"
        )


def _refuse_changes_sqlite() -> None:
    # SQLite has no TRUNCATE; a DELETE without WHERE fires these triggers like any other.
    for table in APPEND_ONLY:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{operation} of {table} is refused: the table is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER decisions_append_only ON decisions")
    else:
        op.execute("DROP TRIGGER decisions_no_update")
        op.execute("DROP TRIGGER decisions_no_delete")
    for column in FILTERED:
        op.create_index(f"ix_decisions_{column}", "decisions", [column])
        op.drop_index(f"ix_decisions_{column}_seq", "decisions")
    # Dropping a table drops its triggers.
    op.drop_table("access_log")
    op.drop_table("overrides")
    op.drop_table("audit_chain")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION reitti_append_only()")
