"""The customership register as people and clients read it: a customer's holder now and the history."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access.keys import Principal
from app.decisions.queries import scope_conditions
from app.errors import NotFound
from app.models import Customership, Decision
from app.schemas import CustomerRegisterOut, HoldingOut

# The history shown: the newest rows (an employer's register may hold thousands).
HISTORY_LIMIT = 200


def _holding(row: Customership, visible: set[str]) -> HoldingOut:
    return HoldingOut(
        unit=row.unit,
        role=row.role,
        since=row.occurred_at,
        event_type=row.event_type,
        decision_id=row.decision_id if row.decision_id in visible else None,
        previous_unit=row.previous_unit,
        anomaly=row.anomaly,
    )


def customer_register(session: Session, principal: Principal, pseudonym: str) -> CustomerRegisterOut:
    """The customer's holder now, since when and by which decision, and the newest rows of the history.

    Scoped like the decisions: the history holds the rows of the decisions the principal may
    see, and a customer none of whose decisions it may see is a 404. The holder now is shown to
    whoever sees any of them (a unit must know who keeps its customer); the decision that made
    it only when that one is visible too.
    """
    ordered = (Customership.occurred_at.desc(), Customership.decision_seq.desc())
    query = select(Customership).where(Customership.customer_pseudonym == pseudonym).order_by(*ordered)
    rows = list(session.scalars(query.limit(HISTORY_LIMIT)))
    ids = [row.decision_id for row in rows]
    visible = (
        set(
            session.scalars(
                select(Decision.decision_id).where(
                    Decision.decision_id.in_(ids), *scope_conditions(principal, Decision)
                )
            )
        )
        if ids
        else set()
    )
    if not visible:
        raise NotFound("No customership of this customer that this key may see.")
    return CustomerRegisterOut(
        current=_holding(rows[0], visible),
        history=[_holding(row, visible) for row in rows if row.decision_id in visible],
    )
