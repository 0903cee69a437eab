"""Answering worklist items: what an acknowledgement or an override closes, what a return opens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.db import dialect_insert
from app.models import ItemKind, WorklistItem


def open_items(session: Session, *, decision_id: str, unit: str) -> list[WorklistItem]:
    """The unit's open items on a decision that the unit itself answers (a returned item is the overrider's)."""
    query = select(WorklistItem).where(
        WorklistItem.decision_id == decision_id,
        WorklistItem.unit == unit,
        WorklistItem.kind != ItemKind.returned,
    )
    return list(session.scalars(query))


def close_items(session: Session, *, decision_id: str, unit: str, at: datetime) -> None:
    """Close the unit's own items on the decision: the unit has answered them."""
    session.execute(
        update(WorklistItem)
        .where(
            WorklistItem.decision_id == decision_id,
            WorklistItem.unit == unit,
            WorklistItem.kind != ItemKind.returned,
            WorklistItem.answered_at.is_(None),
        )
        .values(answered_at=at)
    )


def open_return(session: Session, item: WorklistItem, *, to_unit: str) -> None:
    """Put a returned item on the sending side's worklist: a request to override the decision."""
    row = {
        "decision_seq": item.decision_seq,
        "unit": to_unit,
        "kind": ItemKind.returned,
        "decision_id": item.decision_id,
        "event_type": item.event_type,
        "decided_at": item.decided_at,
        "other_unit": item.unit,
        "anomaly": item.anomaly,
        "answered_at": None,
    }
    # Two units returning the same decision to one unit make one request of it.
    statement = dialect_insert(session)(WorklistItem).values(row).on_conflict_do_nothing()
    session.execute(statement)


def close_override_requests(session: Session, *, decision_id: str, at: datetime) -> None:
    """An override answers every return of the decision."""
    session.execute(
        update(WorklistItem)
        .where(
            WorklistItem.decision_id == decision_id,
            WorklistItem.kind == ItemKind.returned,
            WorklistItem.answered_at.is_(None),
        )
        .values(answered_at=at)
    )
