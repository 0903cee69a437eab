"""Verification: walk the audit chain and the access log's chain; check a checkpoint kept elsewhere."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, and_, select
from sqlalchemy.orm import Session

from app.audit.access_log import entry_document
from app.audit.chain import GENESIS, RECORD_FIELDS, RECORD_IDS, RECORD_TABLES, head, link_document, link_hash
from app.audit.checkpoints import Checkpoint
from app.audit.keys import ChainKeys, keys_of
from app.models import AccessEntry, ChainLink, RecordKind

# The walk reads each record's columns under these labels: (column, label) by kind.
WALK_LABELS = {kind: tuple((name, f"{kind.value}__{name}") for name in names) for kind, names in RECORD_FIELDS.items()}


@dataclass(frozen=True)
class Finding:
    """Something that breaks the chain's proof: where, which record, and what is wrong."""

    seq: int | None
    record_id: str | None
    problem: str
    log: str = "decisions"  # or "access": which chain the finding is in


@dataclass(frozen=True)
class Verification:
    """What a walk of the chains found: how far each holds, and the first thing that does not."""

    links: int
    intact_up_to: int
    head_hash: str
    findings: Sequence[Finding] = field(default_factory=list)
    access_entries: int = 0
    access_intact_up_to: int = 0

    @property
    def intact(self) -> bool:
        """Nothing found: every record is linked and every link holds."""
        return not self.findings

    def summary(self) -> str:
        """One line for an operator, then one line per finding."""
        holds = f"intact up to sequence {self.intact_up_to}, head {self.head_hash}"
        access = f"access log intact up to entry {self.access_intact_up_to}"
        if self.intact:
            return f"{holds}; {access}"
        lines = [f"NOT intact: {len(self.findings)} finding(s); the chain is {holds}; {access}"]
        for finding in self.findings:
            where = f"sequence {finding.seq}" if finding.seq is not None else "outside the chain"
            if finding.log == "access":
                where = f"access log entry {finding.seq}"
            lines.append(f"  {where}: {finding.problem}")
        return "\n".join(lines)


def walk_query(kinds: Collection[RecordKind] = tuple(RecordKind)) -> Select[*tuple[Any, ...]]:
    """Every link in order with its record's columns, labelled `<kind>__<column>`.

    `kinds` are the records joined: a migration names those its revision has.
    """
    query = select(ChainLink.seq, ChainLink.kind, ChainLink.record_id, ChainLink.prev_hash, ChainLink.hash)
    query = query.add_columns(ChainLink.chained_at, ChainLink.mac_key, ChainLink.mac)
    for kind, table in RECORD_TABLES.items():
        if kind not in kinds:
            continue
        key = table.c[RECORD_IDS[kind]]
        query = query.outerjoin(table, and_(ChainLink.kind == kind.value, key == ChainLink.record_id))
        query = query.add_columns(*(table.c[name].label(label) for name, label in WALK_LABELS[kind]))
    return query.order_by(ChainLink.seq)


def _check_link(row: Any, seq: int, prev_hash: str, keys: ChainKeys) -> str | None:
    """Why the link `row` does not follow (seq, prev_hash), or None when it holds."""
    if row.seq != seq + 1:
        return f"sequence {seq + 1} is missing (the next link is {row.seq}): a link was deleted"
    if row.prev_hash != prev_hash:
        return f"its previous hash is not the hash of sequence {seq}: a link was replaced"
    if row.kind not in WALK_LABELS:
        return f"its kind {row.kind!r} is not one this service writes: the link was edited"
    kind = RecordKind(row.kind)
    values = row._mapping
    record = {name: values[label] for name, label in WALK_LABELS[kind]}
    if record[RECORD_IDS[kind]] is None:
        return f"its {kind.value} {row.record_id} is not in the log: the row was deleted"
    document = link_document(seq=row.seq, kind=kind, chained_at=row.chained_at, record=record, mac_key=row.mac_key)
    if link_hash(row.prev_hash, document) != row.hash:
        return f"{kind.value} {row.record_id} does not match its hash: the row or its link was edited"
    if (problem := keys.problem(row.mac_key, row.mac, row.hash)) is not None:
        return f"{kind.value} {row.record_id}: {problem}"
    return None


def _unlinked(session: Session, limit: int) -> Iterable[Finding]:
    """Records that no link vouches for: inserted beside the service."""
    for kind, table in RECORD_TABLES.items():
        key = table.c[RECORD_IDS[kind]]
        query = select(key).outerjoin(ChainLink, ChainLink.record_id == key).where(ChainLink.seq.is_(None))
        for record_id in session.scalars(query.limit(limit)):
            yield Finding(None, record_id, f"{kind.value} {record_id} has no link: it was written outside the service")


def _check_access_checkpoint(session: Session, kept: Checkpoint) -> Finding | None:
    """Whether the access log still holds the entry that the checkpoint recorded as its head."""
    if not kept.access_seq:
        return None
    stored = session.scalar(select(AccessEntry.hash).where(AccessEntry.seq == kept.access_seq))
    if stored == kept.access_hash:
        return None
    what = "deleted from the end" if stored is None else "rewritten"
    problem = (
        f"the checkpoint of {kept.at} names entry {kept.access_seq} with another hash, or none: entries were {what}"
    )
    return Finding(kept.access_seq, None, problem, log="access")


def _check_checkpoint(session: Session, kept: Checkpoint, key: bytes, last_seq: int) -> Finding | None:
    """Whether the chain still holds the head that the checkpoint recorded."""
    if not kept.signed_with(key):
        return Finding(kept.seq, None, "the checkpoint's signature does not match: not made with this key, or changed")
    if (finding := _check_access_checkpoint(session, kept)) is not None:
        return finding
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


def _check_entry(entry: AccessEntry, seq: int, prev_hash: str, keys: ChainKeys) -> str | None:
    """Why an access-log entry does not follow (seq, prev_hash), or None when it holds."""
    if entry.seq != seq + 1:
        return f"entry {seq + 1} is missing (the next is {entry.seq}): an entry was deleted"
    if entry.prev_hash != prev_hash:
        return f"its previous hash is not the hash of entry {seq}: an entry was replaced or inserted"
    values = {column: getattr(entry, column) for column in ("seq", "at", "key_id", "key_name", "role")}
    values |= {column: getattr(entry, column) for column in ("municipality", "action", "decision_id", "filters")}
    values["rows"] = entry.rows
    if entry.hash is None or link_hash(prev_hash, entry_document(values, entry.mac_key)) != entry.hash:
        return "it does not match its hash: the entry was edited"
    return keys.problem(entry.mac_key, entry.mac, entry.hash)


def verify_access_log(session: Session, keys: ChainKeys, batch: int = 5000) -> tuple[int, int, Finding | None]:
    """Walk the access log's chain: (entries, intact up to, the first finding or None)."""
    seq, prev_hash, entries, finding = 0, GENESIS, 0, None
    for entry in session.scalars(select(AccessEntry).order_by(AccessEntry.seq), execution_options={"yield_per": batch}):
        entries += 1
        if finding is not None:
            continue
        if (problem := _check_entry(entry, seq, prev_hash, keys)) is not None:
            finding = Finding(entry.seq, None, problem, log="access")
            continue
        seq, prev_hash = entry.seq, entry.hash or GENESIS
    return entries, seq, finding


def verify(
    session: Session, *, checkpoint: Checkpoint | None = None, key: bytes | None = None, batch: int = 5000
) -> Verification:
    """Walk the chain from the first link; name the first broken link and any record outside the chain.

    Each link's MAC is checked with the session's chain keys. The access log's chain is
    walked too. With a checkpoint (and the key it was signed with), also check that the
    chain still holds the head it recorded: that finds links deleted from the end.
    """
    keys = keys_of(session)
    findings: list[Finding] = []
    seq, prev_hash, links = 0, GENESIS, 0
    for row in session.execute(walk_query(), execution_options={"yield_per": batch}):
        links += 1
        if findings:
            continue  # past the first break, only count
        problem = _check_link(row, seq, prev_hash, keys)
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
    entries, access_up_to, access_finding = verify_access_log(session, keys, batch)
    if access_finding is not None:
        findings.append(access_finding)
    return Verification(links, seq, prev_hash, findings, entries, access_up_to)
