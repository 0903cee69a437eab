"""Overrides: a coach's record that a decision was changed in practice; the decision stays as it was."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import (
    select,
)
from sqlalchemy.orm import Session

from app.access.keys import Principal
from app.audit import chain
from app.decisions.counts import count_first_override
from app.decisions.queries import visible_decision
from app.errors import FieldError, InvalidBody
from app.models import (
    ChainLink,
    Override,
    RecordKind,
)
from app.register.items import close_override_requests
from app.rules.model import Registry
from app.rules.routing import new_decision_id
from app.schemas import OverrideIn
from app.webhooks.outbox import announce, override_announcement


def record_override(
    session: Session, principal: Principal, *, decision_id: str, body: OverrideIn, registry: Registry
) -> tuple[Override, int]:
    """Record that a visible decision was overridden in practice: a new chained record, never an edit.

    The override and its place in the chain.
    """
    decision = visible_decision(session, principal, decision_id)
    now = {"handler": decision.handler_unit, "customership": decision.customership_unit}
    errors = []
    for name, unit in (("handler", body.handler), ("customership", body.customership)):
        if unit is None:
            continue
        if unit not in registry.units:
            errors.append(FieldError(("body", name), "is not a unit id (GET /v1/units lists them)"))
        elif unit == now[name]:
            errors.append(FieldError(("body", name), f"is already the decision's {name}"))
    if errors:
        raise InvalidBody(errors)
    row = Override(
        override_id=new_decision_id(),
        decision_id=decision_id,
        handler_unit=body.handler,
        customership_unit=body.customership,
        reason=body.reason.value,
        text=body.text,
        recorded_by=principal.name,
        recorded_by_key=principal.key_id,
        recorded_role=principal.role.value,
        recorded_at=datetime.now(UTC),
    )
    session.add(row)
    session.flush()
    link = chain.append(session, kind=RecordKind.override, record=chain.record_of(RecordKind.override, row))
    count_first_override(session, decision)
    close_override_requests(session, decision_id=decision_id, at=row.recorded_at)
    announce(session, [override_announcement(row, decision)])
    return row, link["seq"]


def list_overrides(session: Session, principal: Principal, decision_id: str) -> Sequence[tuple[Override, int]]:
    """The overrides of a visible decision, oldest first, each with its place in the chain."""
    visible_decision(session, principal, decision_id)
    query = (
        select(Override, ChainLink.seq)
        .join(ChainLink, ChainLink.record_id == Override.override_id)
        .where(Override.decision_id == decision_id)
        .order_by(ChainLink.seq)
    )
    return [(row, seq) for row, seq in session.execute(query)]
