"""The audit chain: every decision and override a hash-linked record, MAC'd with the chain key.

Checkpoints are in `checkpoints.py`, the walk that verifies in `verification.py`, the keys in `keys.py`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from app.audit.keys import ChainKeys, keys_of
from app.db import insert_rows
from app.models import Acknowledgement, ChainLink, Decision, Override, RecordKind

GENESIS = "0" * 64

# The key of the PostgreSQL advisory lock that serialises appends; nothing else may use it.
CHAIN_LOCK = 0x52454954  # "REIT"

# The columns a link vouches for, named rather than read from the table: a column added
# later would otherwise enter the document of every old row and break the whole chain.
# `seq` is the record's own place in its table: swapping two rows' numbers breaks their links.
RECORD_FIELDS: Mapping[RecordKind, tuple[str, ...]] = {
    RecordKind.decision: (
        "seq",
        "decision_id",
        "client",
        "event_id",
        "request_sha256",
        "event_type",
        "customer_type",
        "customer_pseudonym",
        "home_municipality",
        "occurred_at",
        "decided_at",
        "handler_unit",
        "provider_unit",
        "customership_unit",
        "customership_role",
        "cost_group",
        "rule_id",
        "ruleset_version",
        "ruleset_sha256",
        "decision",
        "event",
    ),
    RecordKind.override: (
        "seq",
        "override_id",
        "decision_id",
        "handler_unit",
        "customership_unit",
        "reason",
        "text",
        "recorded_by",
        "recorded_by_key",
        "recorded_role",
        "recorded_at",
    ),
    RecordKind.acknowledgement: (
        "seq",
        "acknowledgement_id",
        "decision_id",
        "unit",
        "outcome",
        "reason",
        "text",
        "returned_to",
        "recorded_by",
        "recorded_by_key",
        "recorded_role",
        "recorded_at",
    ),
}


RECORD_TABLES = {
    RecordKind.decision: Decision.__table__,
    RecordKind.override: Override.__table__,
    RecordKind.acknowledgement: Acknowledgement.__table__,
}
RECORD_IDS = {
    RecordKind.decision: "decision_id",
    RecordKind.override: "override_id",
    RecordKind.acknowledgement: "acknowledgement_id",
}


def canonical_json(document: Any) -> str:
    """JSON with sorted keys, no spaces and UTF-8 as it is: one text for one meaning."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def plain(value: Any) -> Any:
    """A column's value as JSON holds it: a timestamp in UTC, ISO 8601."""
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value


def record_of(kind: RecordKind, row: Any) -> dict[str, Any]:
    """The columns of a decision or override row (ORM object or result row) that a link vouches for."""
    return {name: getattr(row, name) for name in RECORD_FIELDS[kind]}


def link_document(
    *, seq: int, kind: RecordKind, chained_at: datetime, record: Mapping[str, Any], mac_key: str | None
) -> str:
    """The canonical JSON that a link hashes: its place in the chain, the key that MACs it, and its record."""
    return canonical_json(
        {
            "seq": seq,
            "kind": kind.value,
            "chained_at": plain(chained_at),
            "mac_key": mac_key,
            "record": {name: plain(record[name]) for name in RECORD_FIELDS[kind]},
        }
    )


def link_hash(prev_hash: str, document: str) -> str:
    """sha256 of the previous hash (hex) followed by the document, as UTF-8: `printf %s%s | sha256sum`."""
    return hashlib.sha256((prev_hash + document).encode("utf-8")).hexdigest()


def new_link(
    keys: ChainKeys,
    seq: int,
    prev_hash: str,
    kind: RecordKind,
    record: Mapping[str, Any],
    chained_at: datetime | None = None,
) -> dict[str, Any]:
    """The columns of the link that chains `record` at `seq` after a link whose hash is `prev_hash`, MAC'd."""
    chained_at = chained_at or datetime.now(UTC)
    document = link_document(seq=seq, kind=kind, chained_at=chained_at, record=record, mac_key=keys.current)
    digest = link_hash(prev_hash, document)
    mac_key, mac = keys.sign(digest)
    return {
        "seq": seq,
        "kind": kind.value,
        "record_id": record[RECORD_IDS[kind]],
        "prev_hash": prev_hash,
        "hash": digest,
        "chained_at": chained_at,
        "mac_key": mac_key,
        "mac": mac,
    }


# Built once, as every writer's batch runs them: building these statements took longer than running them.
_HEAD = select(ChainLink.seq, ChainLink.hash).order_by(ChainLink.seq.desc()).limit(1)
_LOCK = select(func.pg_advisory_xact_lock(CHAIN_LOCK))
_INSERT_LINKS = insert(ChainLink)


def head(session: Session) -> tuple[int, str]:
    """The last link's sequence number and hash; (0, GENESIS) for an empty chain."""
    row = session.connection().execute(_HEAD).first()
    return (row.seq, row.hash) if row else (0, GENESIS)


def lock_chain(session: Session) -> None:
    """Take the lock that serialises appends (and what must not run beside them) for this transaction."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # Held until this transaction ends, so the next writer reads the head only after
        # this link is committed: several workers never fork the chain. Taken as late as
        # possible, so that it is held only for the head, the insert and the commit.
        connection.execute(_LOCK)


def append_many(session: Session, *, kind: RecordKind, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Chain records after the head, in order, in the caller's transaction: the links' columns.

    The records and their links commit together or not at all.
    """
    if not records:
        return []
    keys = keys_of(session)
    lock_chain(session)
    seq, prev_hash = head(session)
    links = []
    for record in records:
        seq += 1
        links.append(link := new_link(keys, seq, prev_hash, kind, record))
        prev_hash = link["hash"]
    insert_rows(session.connection(), _INSERT_LINKS, links)
    return links


def append(session: Session, *, kind: RecordKind, record: Mapping[str, Any]) -> dict[str, Any]:
    """Chain one record after the head, in the caller's transaction: the link's columns."""
    (link,) = append_many(session, kind=kind, records=[record])
    return link


def get_link(session: Session, record_id: str) -> tuple[ChainLink, str] | None:
    """The link of a record and the document it hashes; None when the record has no link."""
    link = session.scalar(select(ChainLink).where(ChainLink.record_id == record_id))
    if link is None:
        return None
    kind = RecordKind(link.kind)
    table = RECORD_TABLES[kind]
    row = session.execute(select(table).where(table.c[RECORD_IDS[kind]] == record_id)).one()
    record = record_of(kind, row)
    document = link_document(seq=link.seq, kind=kind, chained_at=link.chained_at, record=record, mac_key=link.mac_key)
    return link, document
