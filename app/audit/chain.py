"""The audit chain: every decision and override a hash-linked record; checkpoints; verification."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, and_, func, insert, select
from sqlalchemy.orm import Session

from app.models import ChainLink, Decision, Override, RecordKind

GENESIS = "0" * 64

# The key of the PostgreSQL advisory lock that serialises appends; nothing else may use it.
CHAIN_LOCK = 0x52454954  # "REIT"

# The columns a link vouches for, named rather than read from the table: a column added
# later would otherwise enter the document of every old row and break the whole chain.
RECORD_FIELDS: Mapping[RecordKind, tuple[str, ...]] = {
    RecordKind.decision: (
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
}


RECORD_TABLES = {RecordKind.decision: Decision.__table__, RecordKind.override: Override.__table__}
RECORD_IDS = {RecordKind.decision: "decision_id", RecordKind.override: "override_id"}

# The walk reads each record's columns under these labels: (column, label) by kind.
_WALK_LABELS = {kind: tuple((name, f"{kind.value}__{name}") for name in names) for kind, names in RECORD_FIELDS.items()}


def canonical_json(document: Any) -> str:
    """JSON with sorted keys, no spaces and UTF-8 as it is: one text for one meaning."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def plain(value: Any) -> Any:
    """A column's value as JSON holds it: a timestamp in UTC, ISO 8601."""
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value


def record_of(kind: RecordKind, row: Any) -> dict[str, Any]:
    """The columns of a decision or override row (ORM object or result row) that a link vouches for."""
    return {name: getattr(row, name) for name in RECORD_FIELDS[kind]}


def link_document(*, seq: int, kind: RecordKind, chained_at: datetime, record: Mapping[str, Any]) -> str:
    """The canonical JSON that a link hashes: its place in the chain and its record."""
    return canonical_json(
        {
            "seq": seq,
            "kind": kind.value,
            "chained_at": plain(chained_at),
            "record": {name: plain(record[name]) for name in RECORD_FIELDS[kind]},
        }
    )


def link_hash(prev_hash: str, document: str) -> str:
    """sha256 of the previous hash (hex) followed by the document, as UTF-8: `printf %s%s | sha256sum`."""
    return hashlib.sha256((prev_hash + document).encode("utf-8")).hexdigest()


def new_link(seq: int, prev_hash: str, kind: RecordKind, record: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of the link that chains `record` at `seq` after a link whose hash is `prev_hash`."""
    chained_at = datetime.now(UTC)
    document = link_document(seq=seq, kind=kind, chained_at=chained_at, record=record)
    return {
        "seq": seq,
        "kind": kind.value,
        "record_id": record[RECORD_IDS[kind]],
        "prev_hash": prev_hash,
        "hash": link_hash(prev_hash, document),
        "chained_at": chained_at,
    }


def head(session: Session) -> tuple[int, str]:
    """The last link's sequence number and hash; (0, GENESIS) for an empty chain."""
    row = session.execute(select(ChainLink.seq, ChainLink.hash).order_by(ChainLink.seq.desc()).limit(1)).first()
    return (row.seq, row.hash) if row else (0, GENESIS)


def lock_chain(session: Session) -> None:
    """Take the lock that serialises appends (and what must not run beside them) for this transaction."""
    if session.get_bind().dialect.name == "postgresql":
        # Held until this transaction ends, so the next writer reads the head only after
        # this link is committed: several workers never fork the chain. Taken as late as
        # possible, so that it is held only for the head, the insert and the commit.
        session.execute(select(func.pg_advisory_xact_lock(CHAIN_LOCK)))


def append_many(session: Session, *, kind: RecordKind, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Chain records after the head, in order, in the caller's transaction: the links' columns.

    The records and their links commit together or not at all.
    """
    if not records:
        return []
    lock_chain(session)
    seq, prev_hash = head(session)
    links = []
    for record in records:
        seq += 1
        links.append(link := new_link(seq, prev_hash, kind, record))
        prev_hash = link["hash"]
    session.connection().execute(insert(ChainLink), links)
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
    document = link_document(seq=link.seq, kind=kind, chained_at=link.chained_at, record=record_of(kind, row))
    return link, document


@dataclass(frozen=True)
class Checkpoint:
    """The head of the chain at a moment, signed with a key the database does not hold."""

    seq: int
    hash: str
    at: str
    signature: str

    @classmethod
    def signed(cls, key: bytes, *, seq: int, hash: str, at: str) -> Checkpoint:
        """A checkpoint of (seq, hash, at) with its HMAC-SHA256 under `key`."""
        return cls(seq, hash, at, _signature(key, seq, hash, at))

    def signed_with(self, key: bytes) -> bool:
        """Whether this checkpoint was signed with `key` and not changed since."""
        return hmac.compare_digest(self.signature, _signature(key, self.seq, self.hash, self.at))

    def as_json(self) -> dict[str, Any]:
        """The checkpoint as the auditor keeps it."""
        return {"seq": self.seq, "hash": self.hash, "at": self.at, "signature": self.signature}


def _signature(key: bytes, seq: int, hash: str, at: str) -> str:
    payload = canonical_json({"seq": seq, "hash": hash, "at": at})
    return hmac.new(key, payload.encode("utf-8"), hashlib.sha256).hexdigest()


def checkpoint(session: Session, key: bytes) -> Checkpoint:
    """The head now, signed; the auditor keeps it elsewhere to find rows later deleted from the end."""
    seq, hash = head(session)
    at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return Checkpoint.signed(key, seq=seq, hash=hash, at=at)


@dataclass(frozen=True)
class Finding:
    """Something that breaks the chain's proof: where, which record, and what is wrong."""

    seq: int | None
    record_id: str | None
    problem: str


@dataclass(frozen=True)
class Verification:
    """What a walk of the chain found: how far it holds, and the first thing that does not."""

    links: int
    intact_up_to: int
    head_hash: str
    findings: Sequence[Finding] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        """Nothing found: every record is linked and every link holds."""
        return not self.findings

    def summary(self) -> str:
        """One line for an operator, then one line per finding."""
        holds = f"intact up to sequence {self.intact_up_to}, head {self.head_hash}"
        if self.intact:
            return holds
        lines = [f"NOT intact: {len(self.findings)} finding(s); the chain is {holds}"]
        for finding in self.findings:
            where = f"sequence {finding.seq}" if finding.seq is not None else "outside the chain"
            lines.append(f"  {where}: {finding.problem}")
        return "\n".join(lines)


def _walk_query() -> Select[*tuple[Any, ...]]:
    """Every link in order with its record's columns, labelled `<kind>__<column>`."""
    query = select(ChainLink.seq, ChainLink.kind, ChainLink.record_id, ChainLink.prev_hash, ChainLink.hash)
    query = query.add_columns(ChainLink.chained_at)
    for kind, table in RECORD_TABLES.items():
        key = table.c[RECORD_IDS[kind]]
        query = query.outerjoin(table, and_(ChainLink.kind == kind.value, key == ChainLink.record_id))
        query = query.add_columns(*(table.c[name].label(label) for name, label in _WALK_LABELS[kind]))
    return query.order_by(ChainLink.seq)


def _check_link(row: Any, seq: int, prev_hash: str) -> str | None:
    """Why the link `row` does not follow (seq, prev_hash), or None when it holds."""
    if row.seq != seq + 1:
        return f"sequence {seq + 1} is missing (the next link is {row.seq}): a link was deleted"
    if row.prev_hash != prev_hash:
        return f"its previous hash is not the hash of sequence {seq}: a link was replaced"
    if row.kind not in _WALK_LABELS:
        return f"its kind {row.kind!r} is not one this service writes: the link was edited"
    kind = RecordKind(row.kind)
    values = row._mapping
    record = {name: values[label] for name, label in _WALK_LABELS[kind]}
    if record[RECORD_IDS[kind]] is None:
        return f"its {kind.value} {row.record_id} is not in the log: the row was deleted"
    document = link_document(seq=row.seq, kind=kind, chained_at=row.chained_at, record=record)
    if link_hash(row.prev_hash, document) != row.hash:
        return f"{kind.value} {row.record_id} does not match its hash: the row or its link was edited"
    return None


def _unlinked(session: Session, limit: int) -> Iterable[Finding]:
    """Records that no link vouches for: inserted beside the service."""
    for kind, table in RECORD_TABLES.items():
        key = table.c[RECORD_IDS[kind]]
        query = select(key).outerjoin(ChainLink, ChainLink.record_id == key).where(ChainLink.seq.is_(None))
        for record_id in session.scalars(query.limit(limit)):
            yield Finding(None, record_id, f"{kind.value} {record_id} has no link: it was written outside the service")


def _check_checkpoint(session: Session, kept: Checkpoint, key: bytes, last_seq: int) -> Finding | None:
    """Whether the chain still holds the head that the checkpoint recorded."""
    if not kept.signed_with(key):
        return Finding(kept.seq, None, "the checkpoint's signature does not match: not made with this key, or changed")
    if kept.seq == 0:
        return None
    stored = session.scalar(select(ChainLink.hash).where(ChainLink.seq == kept.seq))
    if stored is None and kept.seq > last_seq:
        return Finding(
            kept.seq,
            None,
            f"the checkpoint of {kept.at} names sequence {kept.seq}, but the chain ends at {last_seq}: "
            "links were deleted from the end",
        )
    if stored != kept.hash:
        return Finding(
            kept.seq,
            None,
            f"the hash at sequence {kept.seq} is not the one the checkpoint of {kept.at} "
            "recorded: the chain was rewritten",
        )
    return None


def verify(
    session: Session, *, checkpoint: Checkpoint | None = None, key: bytes | None = None, batch: int = 5000
) -> Verification:
    """Walk the chain from the first link; name the first broken link and any record outside the chain.

    With a checkpoint (and the key it was signed with), also check that the chain still
    holds the head it recorded: that finds links deleted from the end.
    """
    findings: list[Finding] = []
    seq, prev_hash, links = 0, GENESIS, 0
    for row in session.execute(_walk_query(), execution_options={"yield_per": batch}):
        links += 1
        if findings:
            continue  # past the first break, only count
        problem = _check_link(row, seq, prev_hash)
        if problem is not None:
            findings.append(Finding(row.seq, row.record_id, problem))
            continue
        seq, prev_hash = row.seq, row.hash
    findings.extend(_unlinked(session, limit=10))
    if checkpoint is not None:
        if key is None:
            raise ValueError("a checkpoint needs the key it was signed with")
        last_seq, _ = head(session)
        if (finding := _check_checkpoint(session, checkpoint, key, last_seq)) is not None:
            findings.append(finding)
    return Verification(links=links, intact_up_to=seq, head_hash=prev_hash, findings=findings)
