"""The access log: every person's read of decisions, written before the answer leaves.

The log is a chain of its own, as the decisions' is: each entry has a gap-free `seq`, the
previous entry's hash, `hash = sha256(prev_hash || document)` and the chain key's MAC of
the hash, so that an entry edited, re-attributed, removed or added beside the service is
found by `verify_access_log`. It has its own lock: reads do not wait for decisions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from app.access import roles
from app.access.keys import Principal
from app.audit.chain import GENESIS, canonical_json, link_hash, plain
from app.audit.keys import keys_of
from app.db import Transaction, newest_first, where_all
from app.errors import NotFound
from app.models import AccessAction, AccessEntry
from app.schemas import AccessQuery, DecisionFilters


def reads_are_logged(principal: Principal, action: AccessAction) -> bool:
    """Whether this read goes to the access log: people's do, and anyone's of overrides' texts."""
    return principal.role in roles.LOGGED_READERS or action in roles.LOGGED_FOR_EVERYONE


# The key of the PostgreSQL advisory lock that serialises appends to the access log.
ACCESS_LOCK = 0x52454955  # "REIU"

# The columns an entry's hash vouches for, named: a column added later must not change old documents.
ENTRY_FIELDS = ("seq", "at", "key_id", "key_name", "role", "municipality", "action", "decision_id", "filters", "rows")


def entry_document(entry: Mapping[str, Any], mac_key: str | None) -> str:
    """The canonical JSON that an access-log entry's hash covers: every column but its chain's own."""
    return canonical_json({"mac_key": mac_key, **{name: plain(entry[name]) for name in ENTRY_FIELDS}})


def access_head(session: Session) -> tuple[int, str]:
    """The last entry's seq and hash; (0, GENESIS) for an empty log."""
    row = session.execute(select(AccessEntry.seq, AccessEntry.hash).order_by(AccessEntry.seq.desc()).limit(1)).first()
    return (row.seq, row.hash or GENESIS) if row else (0, GENESIS)


def _locked_access_head(session: Session) -> tuple[int, str]:
    """The head, under the lock that serialises appends to the access log (held to the commit)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(ACCESS_LOCK)))
    return access_head(session)


def record_access(
    session: Session,
    principal: Principal,
    *,
    action: AccessAction,
    rows: int,
    decision_id: str | None = None,
    filters: Mapping[str, Any] | None = None,
) -> None:
    """Log a read of decisions (who, when, which decision or filter, how many rows), in the caller's transaction.

    The entry is chained after the last one under the access log's lock, held to the commit.
    """
    keys = keys_of(session)
    seq, prev_hash = _locked_access_head(session)
    entry: dict[str, Any] = {
        "seq": seq + 1,
        "at": datetime.now(UTC),
        "key_id": principal.key_id,
        "key_name": principal.name,
        "role": principal.role.value,
        "municipality": principal.municipality,
        "action": action.value,
        "decision_id": decision_id,
        "filters": dict(filters) if filters is not None else None,
        "rows": rows,
    }
    entry["prev_hash"] = prev_hash
    entry["hash"] = link_hash(prev_hash, entry_document(entry, keys.current))
    entry["mac_key"], entry["mac"] = keys.sign(entry["hash"])
    session.connection().execute(insert(AccessEntry), [entry])


def log_read(
    transaction: Transaction,
    principal: Principal,
    action: AccessAction,
    *,
    rows: int,
    decision_id: str | None = None,
    filters: DecisionFilters | Mapping[str, Any] | None = None,
) -> None:
    """Record a person's read in its own write transaction: call it before the answer leaves.

    Every surface that shows decisions to people calls this (or `logged_read`): the API
    and any other. The read itself stays in its read session; only this writes.
    """
    if not reads_are_logged(principal, action):
        return
    asked = filters.model_dump(mode="json", exclude_none=True) if isinstance(filters, DecisionFilters) else filters
    with transaction() as session:
        record_access(session, principal, action=action, rows=rows, decision_id=decision_id, filters=asked)


@dataclass
class Read:
    """How many rows a logged read of one decision's data gave."""

    rows: int = 0


@contextmanager
def logged_read(
    transaction: Transaction,
    principal: Principal,
    action: AccessAction,
    decision_id: str,
) -> Iterator[Read]:
    """Log the read of one decision's data, a refused one too (no rows): it may be a probe."""
    read = Read()
    try:
        yield read
    except NotFound:
        log_read(transaction, principal, action, rows=0, decision_id=decision_id)
        raise
    log_read(transaction, principal, action, rows=read.rows, decision_id=decision_id)


def list_access(session: Session, query: AccessQuery) -> tuple[Sequence[AccessEntry], str | None]:
    """A page of the access log, newest first, and the cursor of the next page."""
    statement = select(AccessEntry)
    equal = {
        AccessEntry.key_name: query.who,
        AccessEntry.role: query.role,
        AccessEntry.municipality: query.municipality,
        AccessEntry.action: query.action,
        AccessEntry.decision_id: query.decision_id,
    }
    statement = where_all(statement, equal, [(AccessEntry.at, query.after, query.before)])
    return newest_first(session, statement, AccessEntry.seq, cursor=query.cursor, limit=query.limit)
