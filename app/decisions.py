"""The decision log: storing a decision once per event, reading it back within scope."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.auth import Principal
from app.engine import RuleEngine
from app.errors import EventIdConflict, FieldError, InvalidQuery, NotFound
from app.events import ValidEvent
from app.models import Decision, Role
from app.routing import decide
from app.ruleset import Registry
from app.schemas import DecisionQuery, EventIn


def request_fingerprint(body: EventIn, pseudonym: str) -> str:
    """The SHA-256 of the request as it means, with the customer id as its pseudonym.

    Identity codes are few enough to guess from a plain hash, so the id is replaced
    before hashing; key order and whitespace do not change the fingerprint.
    """
    document = body.model_dump(mode="json")
    document["customer"]["id"] = pseudonym
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _existing(session: Session, client: str, event_id: str) -> Decision | None:
    return session.scalar(select(Decision).where(Decision.client == client, Decision.event_id == event_id))


def _replay(row: Decision, fingerprint: str) -> dict[str, Any]:
    if row.request_sha256 != fingerprint:
        raise EventIdConflict(
            f"Event id {row.event_id} was already used by this client with a different body "
            f"(decision {row.decision_id})."
        )
    return row.decision


def submit(
    session: Session,
    *,
    client: str,
    event: ValidEvent,
    fingerprint: str,
    engine: RuleEngine,
    registry: Registry,
) -> tuple[dict[str, Any], bool]:
    """Decide and store the event once: (decision, True) when new, (the first one, False) on replay."""
    if (row := _existing(session, client, event.event_id)) is not None:
        return _replay(row, fingerprint), False
    decision = decide(event, engine=engine, registry=registry)
    row = Decision(
        decision_id=decision["decision_id"],
        client=client,
        event_id=event.event_id,
        request_sha256=fingerprint,
        event_type=event.event_type.code,
        customer_type=event.customer_type.value,
        customer_pseudonym=event.customer_pseudonym,
        home_municipality=event.home_municipality,
        occurred_at=event.occurred_at,
        decided_at=datetime.fromisoformat(decision["decided_at"]),
        handler_unit=decision["handler"]["unit"],
        provider_unit=decision["provider"]["unit"],
        customership_unit=(decision["customership"] or {}).get("unit"),
        customership_role=(decision["customership"] or {}).get("role"),
        cost_group=decision["cost_group"],
        rule_id=decision["rule"]["id"],
        ruleset_version=decision["rule"]["ruleset"],
        ruleset_sha256=decision["rule"]["ruleset_sha256"],
        decision=decision,
        event=event.normalised(),
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # Another request stored the same (client, event_id) first: answer with its decision.
        if (first := _existing(session, client, event.event_id)) is None:
            raise
        return _replay(first, fingerprint), False
    return decision, True


def _scoped(query: Select[Decision], principal: Principal) -> Select[Decision]:
    """Only the decisions the principal may see."""
    if principal.role is Role.integration:
        return query.where(Decision.client == principal.name)
    if principal.role is Role.coach:
        municipality = principal.municipality
        return query.where(
            or_(Decision.home_municipality == municipality, Decision.handler_unit == f"local-{municipality}")
        )
    return query


def get_decision(session: Session, principal: Principal, decision_id: str) -> dict[str, Any]:
    """One decision; 404 also when it exists but the principal may not see it."""
    query = _scoped(select(Decision).where(Decision.decision_id == decision_id), principal)
    row = session.scalar(query)
    if row is None:
        raise NotFound(f"No decision {decision_id} that this key may see.")
    return row.decision


def _filtered(query: Select[Decision], filters: DecisionQuery) -> Select[Decision]:
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
    for column, value in equal.items():
        if value is not None:
            query = query.where(column == value)
    if filters.decided_after is not None:
        query = query.where(Decision.decided_at >= filters.decided_after)
    if filters.decided_before is not None:
        query = query.where(Decision.decided_at < filters.decided_before)
    if filters.occurred_after is not None:
        query = query.where(Decision.occurred_at >= filters.occurred_after)
    if filters.occurred_before is not None:
        query = query.where(Decision.occurred_at < filters.occurred_before)
    return query


def encode_cursor(seq: int) -> str:
    """An opaque cursor for the page after the decision with sequence number `seq`."""
    return base64.urlsafe_b64encode(f"s{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The sequence number inside a cursor; 422 naming `cursor` when it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith("s"):
            raise ValueError(cursor)
        seq = int(text[1:])
        if not 0 < seq < 2**63:  # a sequence number the databases can hold
            raise ValueError(cursor)
        return seq
    except ValueError:
        raise InvalidQuery([FieldError(("query", "cursor"), "not a cursor this service gave")]) from None


def list_decisions(
    session: Session, principal: Principal, filters: DecisionQuery
) -> tuple[Sequence[dict[str, Any]], str | None]:
    """A page of decisions, newest first, and the cursor of the next page (None at the end)."""
    query = _filtered(_scoped(select(Decision), principal), filters)
    if filters.cursor is not None:
        query = query.where(Decision.seq < decode_cursor(filters.cursor))
    limit = filters.limit
    rows = session.scalars(query.order_by(Decision.seq.desc()).limit(limit + 1)).all()
    next_cursor = encode_cursor(rows[limit - 1].seq) if len(rows) > limit else None
    return [row.decision for row in rows[:limit]], next_cursor
