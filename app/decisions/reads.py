"""Reading the decision log as the API and the UI both do, each read by a person logged first.

The surfaces call these and never the queries and the access log apart: the access log's
promise — every person's read of decisions recorded before the answer leaves, a refused one
too — is kept here once, not remembered by each surface.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.access.keys import Principal
from app.audit import access_log
from app.db import Transaction
from app.decisions import overrides, queries, stats
from app.input_checks import is_decision_id
from app.models import AccessAction, ChainLink, Override
from app.schemas import DecisionFilters, DecisionOut, DecisionQuery, DecisionStats

# What the access log holds for a read by an id that is not of a decision's form: the probe is
# logged, but not its text, which may be anything, a person's identity code too.
NOT_A_DECISION_ID = "not-a-decision-id"


def _logged_id(decision_id: str) -> str:
    """The id as the access log may keep it."""
    return decision_id if is_decision_id(decision_id) else NOT_A_DECISION_ID


@dataclass(frozen=True)
class Reader:
    """Who reads, in which read session, and how to open the write transaction that logs the read."""

    principal: Principal
    session: Session
    transaction: Transaction


def read_decision(reader: Reader, decision_id: str) -> DecisionOut:
    """One decision the reader may see (404 otherwise, logged as a probe)."""
    with access_log.logged_read(
        reader.transaction, reader.principal, AccessAction.decision, _logged_id(decision_id)
    ) as read:
        decision = queries.get_decision(reader.session, reader.principal, decision_id)
        read.rows = 1
    return decision


def read_link(reader: Reader, decision_id: str) -> tuple[ChainLink, str]:
    """A visible decision's link in the audit chain and the document it hashes."""
    with access_log.logged_read(
        reader.transaction, reader.principal, AccessAction.link, _logged_id(decision_id)
    ) as read:
        found = queries.get_link(reader.session, reader.principal, decision_id)
        read.rows = 1
    return found


def read_overrides(reader: Reader, decision_id: str) -> Sequence[tuple[Override, int]]:
    """A visible decision's overrides with their places in the chain."""
    with access_log.logged_read(
        reader.transaction, reader.principal, AccessAction.overrides, _logged_id(decision_id)
    ) as read:
        found = overrides.list_overrides(reader.session, reader.principal, decision_id)
        read.rows = len(found)
    return found


def read_page(reader: Reader, filters: DecisionQuery) -> tuple[Sequence[DecisionOut], str | None]:
    """A page of the decisions the reader may see, newest first, and the next page's cursor."""
    items, next_cursor = queries.list_decisions(reader.session, reader.principal, filters)
    access_log.log_read(reader.transaction, reader.principal, AccessAction.list, rows=len(items), filters=filters)
    return items, next_cursor


def read_stats(reader: Reader, filters: DecisionFilters) -> DecisionStats:
    """Counts of the selection by rule, unit, municipality and month, within the reader's scope."""
    counted = stats.decision_stats(reader.session, reader.principal, filters)
    access_log.log_read(reader.transaction, reader.principal, AccessAction.stats, rows=counted.total, filters=filters)
    return counted


def export(reader: Reader, filters: DecisionQuery, *, sessions: Transaction) -> Iterator[str]:
    """The whole selection as CSV lines, its row count logged before the first byte is made.

    The rows are read by `sessions`, a short transaction a batch, not the reader's session:
    the export streams after the request's own session has closed.
    """
    start, rows = queries.export_start(reader.session, reader.principal, filters)
    access_log.log_read(reader.transaction, reader.principal, AccessAction.export, rows=rows, filters=filters)
    return queries.export_csv(sessions, reader.principal, filters, start=start)
