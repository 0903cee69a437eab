"""Reading the decision log within what a principal may see: one decision, pages, its chain link, CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence

from sqlalchemy import (
    ColumnElement,
    Select,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session

from app.access import roles
from app.access.keys import Principal
from app.audit import chain
from app.db import Transaction, newest_first, where_all
from app.decisions.counts import CountTable
from app.errors import NotFound
from app.input_checks import is_decision_id
from app.models import (
    ChainLink,
    Decision,
    Role,
    WorklistItem,
)
from app.schemas import DecisionFilters, DecisionOut, DecisionQuery, decode_cursor

# The columns of a CSV export: the decision's main fields, the customer only as a pseudonym.
CSV_COLUMNS = (
    "decision_id",
    "event_id",
    "event_type",
    "occurred_at",
    "decided_at",
    "client",
    "customer_type",
    "customer_pseudonym",
    "home_municipality",
    "handler_unit",
    "provider_unit",
    "customership_unit",
    "customership_role",
    "cost_group",
    "rule_id",
    "ruleset_version",
    "ruleset_sha256",
)


# What makes a spreadsheet read a cell as a formula (OWASP, CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A value as a CSV cell no spreadsheet runs: text that could start a formula gets a leading quote."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def scope_conditions(
    principal: Principal, table: type[Decision] | CountTable, *, by_columns: bool = False
) -> list[ColumnElement[bool]]:
    """The conditions that keep to the decisions (or their counts) the principal may see.

    A unit's staff (a coach is the staff of its local unit) see the decisions that put an item
    on their unit's worklist — as handler, provider, a task's unit, either side of a handover —
    and those whose customership is their unit's; a local unit's also its municipality's customers'.
    The counts know no tasks nor handovers: a unit's stats count what its columns say, and a scan
    that stats fall back on does the same (`by_columns`), so both give one answer.
    """
    if principal.role is Role.integration:
        return [table.client == principal.name]
    if principal.role in roles.STAFF:
        unit = principal.unit
        either = [table.handler_unit == unit, table.provider_unit == unit, table.customership_unit == unit]
        if principal.municipality is not None:
            either.append(table.home_municipality == principal.municipality)
        if table is Decision and not by_columns:
            either.append(exists().where(WorklistItem.decision_seq == Decision.seq, WorklistItem.unit == unit))
        return [or_(*either)]
    return []


def may_see(principal: Principal, *, client: str, home_municipality: str, handler_unit: str) -> bool:
    """Whether the principal may route an event with these columns in the UI: its municipality's or its unit's."""
    if principal.role is Role.integration:
        return client == principal.name
    if principal.role in roles.STAFF:
        return principal.municipality == home_municipality or principal.unit == handler_unit
    return True


def _scoped(query: Select[Decision], principal: Principal, *, by_columns: bool = False) -> Select[Decision]:
    """Only the decisions the principal may see."""
    return query.where(*scope_conditions(principal, Decision, by_columns=by_columns))


def visible_decision(session: Session, principal: Principal, decision_id: str) -> Decision:
    """The decision row; 404 also when it exists but the principal may not see it."""
    # An id of another form names nothing: it is never sent to the database (a 37-character
    # or NUL-holding id would be an error there) nor repeated in the answer (it may be anything).
    row = None
    if is_decision_id(decision_id):
        row = session.scalar(_scoped(select(Decision).where(Decision.decision_id == decision_id), principal))
    if row is None:
        raise NotFound("No such decision that this key may see.")
    return row


def get_decision(session: Session, principal: Principal, decision_id: str) -> DecisionOut:
    """One decision; 404 also when it exists but the principal may not see it."""
    return DecisionOut.model_validate(visible_decision(session, principal, decision_id).decision)


def get_link(session: Session, principal: Principal, decision_id: str) -> tuple[ChainLink, str]:
    """A visible decision's link in the audit chain and the document it hashes."""
    visible_decision(session, principal, decision_id)
    found = chain.get_link(session, decision_id)
    if found is None:
        raise NotFound("The decision has no link in the audit chain: verify the chain.")
    return found


def _filtered(query: Select[Decision], filters: DecisionFilters) -> Select[Decision]:
    """Add the auditor's filters to a query; every one given must hold."""
    equal = {
        Decision.event_type: filters.event_type,
        Decision.handler_unit: filters.handler,
        Decision.provider_unit: filters.provider,
        Decision.customership_unit: filters.customership,
        Decision.home_municipality: filters.municipality,
        Decision.rule_id: filters.rule_id,
        Decision.ruleset_version: filters.ruleset,
        Decision.customer_pseudonym: filters.customer_pseudonym,
    }
    ranges = [
        (Decision.decided_at, filters.decided_after, filters.decided_before),
        (Decision.occurred_at, filters.occurred_after, filters.occurred_before),
    ]
    return where_all(query, equal, ranges)


def list_decisions(
    session: Session, principal: Principal, filters: DecisionQuery
) -> tuple[Sequence[DecisionOut], str | None]:
    """A page of decisions, newest first, and the cursor of the next page (None at the end)."""
    query = _filtered(_scoped(select(Decision), principal), filters)
    rows, next_cursor = newest_first(session, query, Decision.seq, cursor=filters.cursor, limit=filters.limit)
    return [DecisionOut.model_validate(row.decision) for row in rows], next_cursor


def selection(
    principal: Principal, filters: DecisionFilters, before: int | None, *, by_columns: bool = False
) -> Select[Decision]:
    query = _filtered(_scoped(select(Decision), principal, by_columns=by_columns), filters)
    return query if before is None else query.where(Decision.seq < before)


def export_start(session: Session, principal: Principal, filters: DecisionQuery) -> tuple[int, int]:
    """Where an export starts (its first row is below this seq) and how many rows it will send.

    The log only grows, and new rows come above a fixed start, so the count logged before
    the first byte is the count sent. Exactly so on SQLite, where seq is taken in commit
    order; on PostgreSQL a decision that took its seq before the export began but commits
    while it streams (a window of milliseconds) is sent without having been counted.
    """
    if filters.cursor is not None:
        start = decode_cursor(filters.cursor)
    else:
        start = (session.scalar(select(func.max(Decision.seq))) or 0) + 1
    count = session.scalar(
        selection(principal, filters, start).with_only_columns(func.count(), maintain_column_froms=True)
    )
    return start, count or 0


def export_csv(
    sessions: Transaction,
    principal: Principal,
    filters: DecisionFilters,
    *,
    start: int,
    batch: int = 1000,
) -> Iterator[str]:
    """The selection as CSV, newest first, read `batch` rows at a time, each batch in its own short transaction."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    columns = [getattr(Decision, name) for name in CSV_COLUMNS]
    while True:
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        query = selection(principal, filters, start).with_only_columns(*columns, Decision.seq)
        with sessions() as session:
            rows = session.execute(query.order_by(Decision.seq.desc()).limit(batch)).all()
        if not rows:
            return
        writer.writerows([csv_cell(chain.plain(value)) for value in row[:-1]] for row in rows)
        start = rows[-1].seq


def customers_of(session: Session, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Customer type and home municipality of decisions already read within scope (never the pseudonym)."""
    rows = session.execute(
        select(Decision.decision_id, Decision.customer_type, Decision.home_municipality).where(
            Decision.decision_id.in_(ids)
        )
    )
    return {decision_id: (kind, municipality) for decision_id, kind, municipality in rows}
