"""The chain key's MAC on every link and access-log entry; the access log chained; no REPLACE.

A link's hash had no secret: whoever could write to the database could append a decision
and a link computed as the README describes, and verification said "intact". Each link now
carries `mac_key` (the id of the chain key, REITTI_CHAIN_KEY) and `mac`, the HMAC-SHA256 of
its hash under that key, which is never in the database. The hashed document now also
names the record's own `seq` and the key id, so two rows' numbers cannot be swapped.

The links already there are checked against their old hashes and then re-hashed and MAC'd
in place, keeping their `chained_at`: the upgrade vouches for them as they are, and refuses
a chain that is already broken rather than launder it. The access log gets a chain of its
own (`prev_hash`, `hash`, `mac_key`, `mac`), its entries chained here in `seq` order. The
new columns are nullable: SQLite adds a NOT NULL column only by rebuilding the table, and
verification names a link or entry without a MAC anyway.

On SQLite, `INSERT OR REPLACE`/`REPLACE INTO` deleted the row in the way without firing the
DELETE triggers: a BEFORE INSERT trigger on each guarded table now refuses a row whose key
is taken. A decision whose (client, event_id) is taken is skipped instead (RAISE(IGNORE)):
that is what the service's own INSERT ... ON CONFLICT DO NOTHING asks for, and it replaces
nothing. On PostgreSQL, ON CONFLICT DO UPDATE and MERGE fire the UPDATE triggers already.

The chain key comes from the alembic config's `chain_key` attribute or the settings
(REITTI_CHAIN_KEY, or the key file beside a SQLite database); it is needed only when there
are links or entries to MAC.

Revision ID: 0005
Revises: 0004
Created: 2026-11-30
"""

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from app.audit.access_log import entry_document
from app.audit.chain import GENESIS, RECORD_FIELDS, canonical_json, link_hash, new_link, plain
from app.audit.keys import ChainKeys
from app.audit.verification import WALK_LABELS, walk_query
from app.config import Settings
from app.models import AccessEntry, ChainLink, RecordKind

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GUARDED = ("decisions", "audit_chain", "overrides", "access_log")
# The columns whose values identify a row of each guarded table: a new row may take none of them.
# A decision's decision_id is handled apart: see _refuse_replace_sqlite.
KEYS = {
    "decisions": ("seq",),
    "audit_chain": ("seq", "record_id", "prev_hash", "hash"),
    "overrides": ("seq", "override_id"),
    "access_log": ("seq",),
}


# The records the chain held at this revision (acknowledgements came with 0007).
KINDS_HERE = (RecordKind.decision, RecordKind.override)

NEW_COLUMNS = (("audit_chain", ("mac_key", "mac")), ("access_log", ("prev_hash", "hash", "mac_key", "mac")))


def upgrade() -> None:
    for table, columns in (
        ("audit_chain", ("mac_key", "mac")),
        ("access_log", ("prev_hash", "hash", "mac_key", "mac")),
    ):
        for column in columns:
            op.add_column(table, sa.Column(column, sa.String(16 if column == "mac_key" else 64), nullable=True))
    keys: list[ChainKeys] = []  # made when first needed: an empty log needs no key
    _lift_guards()
    _mac_links(keys)
    _chain_access_log(keys)
    _restore_guards()
    if op.get_bind().dialect.name == "sqlite":
        _refuse_replace_sqlite()


def _chain_keys(keys: list[ChainKeys]) -> ChainKeys:
    if not keys:
        given = context.config.attributes.get("chain_key")
        url = op.get_bind().engine.url.render_as_string(hide_password=False)
        key = given.encode("utf-8") if given else replace(Settings.from_env(), database_url=url).resolve_chain_key()
        keys.append(ChainKeys.of(key))
    return keys[0]


def _old_hash(prev_hash: str, kind: RecordKind, row: Any, record: Mapping[str, Any]) -> str:
    """A link's hash as revisions 0002-0004 made it: no record seq, no key id."""
    fields = [name for name in RECORD_FIELDS[kind] if name != "seq"]
    document = {"seq": row.seq, "kind": kind.value, "chained_at": plain(row.chained_at)}
    document["record"] = {name: plain(record[name]) for name in fields}
    return hashlib.sha256((prev_hash + canonical_json(document)).encode("utf-8")).hexdigest()


def _mac_links(keys: list[ChainKeys]) -> None:
    """Check each link against its old hash, then hash it anew and MAC it, oldest first."""
    connection = op.get_bind()
    links = ChainLink.__table__
    old_prev, new_prev = GENESIS, GENESIS
    for row in connection.execute(walk_query(KINDS_HERE)).all():
        kind = RecordKind(row.kind)
        record = {name: row._mapping[label] for name, label in WALK_LABELS[kind]}
        if row.prev_hash != old_prev or _old_hash(old_prev, kind, row, record) != row.hash:
            raise RuntimeError(f"the audit chain is broken at sequence {row.seq}: run `reitti audit verify` first")
        link = new_link(_chain_keys(keys), row.seq, new_prev, kind, record, chained_at=row.chained_at)
        values = {name: link[name] for name in ("prev_hash", "hash", "mac_key", "mac")}
        connection.execute(sa.update(links).where(links.c.seq == row.seq).values(**values))
        old_prev, new_prev = row.hash, link["hash"]


def _chain_access_log(keys: list[ChainKeys]) -> None:
    """Chain the access log's entries in seq order."""
    connection = op.get_bind()
    entries = AccessEntry.__table__
    prev_hash = GENESIS
    for entry in connection.execute(sa.select(entries).order_by(entries.c.seq)).all():
        chain_keys = _chain_keys(keys)
        digest = link_hash(prev_hash, entry_document(entry._mapping, chain_keys.current))
        mac_key, mac = chain_keys.sign(digest)
        values = {"prev_hash": prev_hash, "hash": digest, "mac_key": mac_key, "mac": mac}
        connection.execute(sa.update(entries).where(entries.c.seq == entry.seq).values(**values))
        prev_hash = digest


def _lift_guards() -> None:
    """Let this migration update the chain's columns; the guards are back before it commits."""
    for table in ("audit_chain", "access_log"):
        if op.get_bind().dialect.name == "postgresql":
            op.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only")
        else:
            op.execute(f"DROP TRIGGER {table}_no_update")


def _restore_guards() -> None:
    for table in ("audit_chain", "access_log"):
        if op.get_bind().dialect.name == "postgresql":
            op.execute(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only")
        else:
            op.execute(
                f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'UPDATE of {table} is refused: the table is append-only'); END"
            )


def _refuse_replace_sqlite() -> None:
    # REPLACE deletes the rows in its way without firing DELETE triggers (unless a connection
    # turns recursive_triggers on, which a writer need not): refuse the insert before that.
    for table in GUARDED:
        taken = " OR ".join(f"{column} = NEW.{column}" for column in KEYS[table])
        op.execute(
            f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} "
            f"WHEN EXISTS (SELECT 1 FROM {table} WHERE {taken}) "
            f"BEGIN SELECT RAISE(ABORT, 'REPLACE of {table} is refused: the table is append-only'); END"
        )
    # The service inserts decisions with ON CONFLICT (client, event_id) DO NOTHING, a repeat
    # possibly under a decision_id already stored: a taken (client, event_id) skips the row, as
    # DO NOTHING would (when its seq is not taken: then the trigger above refuses it, loudly);
    # a taken decision_id under another (client, event_id) is refused.
    taken_event = "EXISTS (SELECT 1 FROM decisions WHERE client = NEW.client AND event_id = NEW.event_id)"
    op.execute(
        "CREATE TRIGGER decisions_no_replace_event BEFORE INSERT ON decisions "
        f"WHEN {taken_event} AND NOT EXISTS (SELECT 1 FROM decisions WHERE seq = NEW.seq) "
        "BEGIN SELECT RAISE(IGNORE); END"
    )
    op.execute(
        "CREATE TRIGGER decisions_no_replace_id BEFORE INSERT ON decisions "
        f"WHEN NOT {taken_event} AND EXISTS (SELECT 1 FROM decisions WHERE decision_id = NEW.decision_id) "
        "BEGIN SELECT RAISE(ABORT, 'REPLACE of decisions is refused: the table is append-only'); END"
    )


def downgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "sqlite":
        for table in GUARDED:
            op.execute(f"DROP TRIGGER {table}_no_replace")
        op.execute("DROP TRIGGER decisions_no_replace_event")
        op.execute("DROP TRIGGER decisions_no_replace_id")
    _lift_guards()
    _unmac_links()
    _restore_guards()
    for table, columns in (
        ("audit_chain", ("mac_key", "mac")),
        ("access_log", ("prev_hash", "hash", "mac_key", "mac")),
    ):
        for column in columns:
            op.drop_column(table, column)
    if connection.dialect.name == "postgresql":
        # The service gave access-log entries their seq itself; the old one takes it from the sequence.
        op.execute(
            "SELECT setval(pg_get_serial_sequence('access_log', 'seq'), coalesce(max(seq), 0) + 1, false) "
            "FROM access_log"
        )


def _unmac_links() -> None:
    """Hash each link again as 0004 did, so that the chain verifies under the older service."""
    connection = op.get_bind()
    links = ChainLink.__table__
    prev_hash = GENESIS
    for row in connection.execute(walk_query(KINDS_HERE)).all():
        kind = RecordKind(row.kind)
        record = {name: row._mapping[label] for name, label in WALK_LABELS[kind]}
        digest = _old_hash(prev_hash, kind, row, record)
        connection.execute(sa.update(links).where(links.c.seq == row.seq).values(prev_hash=prev_hash, hash=digest))
        prev_hash = digest
