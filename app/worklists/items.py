"""A unit's worklist, and its answers to it: an item taken (acknowledged) or returned."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.access import roles
from app.access.keys import LOCAL_UNIT_PREFIX, Principal
from app.audit import chain
from app.decisions.queries import visible_decision
from app.errors import AlreadyAnswered, FieldError, InvalidBody, NotFound
from app.models import (
    Acknowledgement,
    AcknowledgementOutcome,
    ChainLink,
    Decision,
    ItemKind,
    RecordKind,
    ReturnReason,
    WorklistItem,
)
from app.register.items import close_items, open_items, open_return
from app.rules.routing import new_decision_id
from app.schemas import WorklistItemOut, WorklistPage, WorklistQuery, decode_cursor, encode_cursor
from app.webhooks.outbox import acknowledgement_announcement, announce


def check_worklist_reader(principal: Principal, unit: str, known_units: Collection[str]) -> None:
    """Refuse (404) a unit that does not exist, or whose worklist is not the principal's to read.

    A unit's staff read their own unit's; auditors and admins any unit's.
    """
    if unit not in known_units or (principal.role in roles.STAFF and principal.unit != unit):
        raise NotFound("No such unit whose worklist this key may read.")


def open_count(session: Session, unit: str) -> int:
    """How many items the unit has open: the number in the navigation."""
    query = select(func.count()).where(WorklistItem.unit == unit, WorklistItem.answered_at.is_(None))
    return session.scalar(query) or 0


def worklist(
    session: Session, principal: Principal, unit: str, query: WorklistQuery, *, known_units: Collection[str]
) -> WorklistPage:
    """A page of the unit's open items, oldest first, each with its age."""
    check_worklist_reader(principal, unit, known_units)
    statement = select(WorklistItem).where(WorklistItem.unit == unit, WorklistItem.answered_at.is_(None))
    if query.event_type is not None:
        statement = statement.where(WorklistItem.event_type == query.event_type)
    if query.kind is not None:
        statement = statement.where(WorklistItem.kind == query.kind)
    if query.cursor is not None:
        statement = statement.where(WorklistItem.decision_seq > decode_cursor(query.cursor))
    statement = statement.order_by(WorklistItem.decision_seq, WorklistItem.kind).limit(query.limit + 1)
    rows = list(session.scalars(statement))
    next_cursor = None
    if len(rows) > query.limit:
        rows = rows[: query.limit]
        # A decision's items stay on one page: the next page begins after its decision.
        last = rows[-1].decision_seq
        rows += session.scalars(
            select(WorklistItem).where(
                WorklistItem.unit == unit,
                WorklistItem.answered_at.is_(None),
                WorklistItem.decision_seq == last,
                WorklistItem.kind.not_in([row.kind for row in rows if row.decision_seq == last]),
            )
        ).all()
        next_cursor = encode_cursor(last)
    now = datetime.now(UTC)
    items = [
        WorklistItemOut(
            decision_id=row.decision_id,
            unit=row.unit,
            kind=ItemKind(row.kind),
            event_type=row.event_type,
            decided_at=row.decided_at,
            age_seconds=max(0, int((now - row.decided_at).total_seconds())),
            other_unit=row.other_unit,
            anomaly=row.anomaly,
        )
        for row in rows
    ]
    return WorklistPage(unit=unit, open_items=open_count(session, unit), items=items, next_cursor=next_cursor)


def _answering(session: Session, principal: Principal, decision_id: str, unit: str) -> Acknowledgement | None:
    """Check that the principal may answer for `unit` on a visible decision; the unit's earlier answer, if any.

    Takes the chain lock first: answers of one decision by one unit are then made one at a time.
    """
    visible_decision(session, principal, decision_id)
    if principal.unit != unit:
        raise InvalidBody([FieldError(("body", "unit"), "is not the unit whose staff this key is")])
    chain.lock_chain(session)
    query = select(Acknowledgement).where(Acknowledgement.decision_id == decision_id, Acknowledgement.unit == unit)
    return session.scalar(query)


def _chain_seq(session: Session, row: Acknowledgement) -> int:
    seq = session.scalar(select(ChainLink.seq).where(ChainLink.record_id == row.acknowledgement_id))
    assert seq is not None, "every acknowledgement is chained in the transaction that records it"
    return seq


def record_acknowledgement(
    session: Session,
    principal: Principal,
    *,
    item: WorklistItem,
    outcome: AcknowledgementOutcome,
    reason: ReturnReason | None = None,
    text: str = "",
    returned_to: str | None = None,
) -> tuple[Acknowledgement, int]:
    """An acknowledgement was recorded: the unit's answer, chained, and the unit's items on the decision closed.

    The one place where answers come into being, and so where other systems are told of them
    (the webhooks' outbox, in the same transaction).
    """
    row = Acknowledgement(
        acknowledgement_id=new_decision_id(),
        decision_id=item.decision_id,
        unit=item.unit,
        outcome=outcome.value,
        reason=reason.value if reason else None,
        text=text,
        returned_to=returned_to,
        recorded_by=principal.name,
        recorded_by_key=principal.key_id,
        recorded_role=principal.role.value,
        recorded_at=datetime.now(UTC),
    )
    session.add(row)
    session.flush()
    link = chain.append(
        session, kind=RecordKind.acknowledgement, record=chain.record_of(RecordKind.acknowledgement, row)
    )
    close_items(session, decision_id=item.decision_id, unit=item.unit, at=row.recorded_at)
    decision = session.scalars(select(Decision).where(Decision.decision_id == item.decision_id)).one()
    announce(session, [acknowledgement_announcement(row, decision)])
    return row, link["seq"]


def _the_item(session: Session, decision_id: str, unit: str) -> WorklistItem:
    items = open_items(session, decision_id=decision_id, unit=unit)
    if not items:
        raise InvalidBody([FieldError(("body", "unit"), "has no item of this decision on its worklist")])
    return items[0]


def acknowledge(
    session: Session, principal: Principal, *, decision_id: str, unit: str
) -> tuple[Acknowledgement, int, bool]:
    """The unit has taken the item: (the acknowledgement, its place in the chain, whether it is new).

    The same unit again gets the first answer; an item the unit returned cannot be taken (409).
    """
    earlier = _answering(session, principal, decision_id, unit)
    if earlier is not None:
        if earlier.outcome != AcknowledgementOutcome.taken:
            raise AlreadyAnswered(f"The unit returned this item at {earlier.recorded_at.isoformat()}.")
        return earlier, _chain_seq(session, earlier), False
    item = _the_item(session, decision_id, unit)
    row, seq = record_acknowledgement(session, principal, item=item, outcome=AcknowledgementOutcome.taken)
    return row, seq, True


def return_item(
    session: Session, principal: Principal, *, decision_id: str, unit: str, reason: ReturnReason, text: str
) -> tuple[Acknowledgement, int, bool]:
    """The unit returns an item that is not its own: it goes back to the sending side as a request to override.

    The sending side of an incoming handover is the unit the customer came from; of new work, the
    customer's home local unit, whose coaches routed it or keep the customer.
    """
    earlier = _answering(session, principal, decision_id, unit)
    if earlier is not None:
        if earlier.outcome != AcknowledgementOutcome.returned:
            raise AlreadyAnswered(f"The unit took this item at {earlier.recorded_at.isoformat()}.")
        return earlier, _chain_seq(session, earlier), False
    item = _the_item(session, decision_id, unit)
    if item.kind == ItemKind.handover_out:
        raise InvalidBody(
            [FieldError(("body", "unit"), "gives this customer away: the unit that receives them may return it")]
        )
    decision = visible_decision(session, principal, decision_id)
    sender = (
        item.other_unit if item.kind == ItemKind.handover_in else f"{LOCAL_UNIT_PREFIX}{decision.home_municipality}"
    )
    if sender is None or sender == unit:
        raise InvalidBody([FieldError(("body", "unit"), "is the sending side itself: record an override instead")])
    row, seq = record_acknowledgement(
        session,
        principal,
        item=item,
        outcome=AcknowledgementOutcome.returned,
        reason=reason,
        text=text,
        returned_to=sender,
    )
    open_return(session, item, to_unit=sender)
    return row, seq, True
