"""Storing decisions: once per (client, event_id), chained in the same transaction, many to a batch."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import (
    select,
)
from sqlalchemy.orm import Session

from app.audit import chain
from app.db import dialect_insert
from app.decisions.counts import count_new
from app.errors import EventIdConflict
from app.models import (
    Decision,
    RecordKind,
)
from app.register.routing import record_routing
from app.rules.events import ValidEvent
from app.schemas import DecisionOut, EventIn
from app.webhooks.outbox import announce, decision_announcements


def request_fingerprint(body: EventIn, pseudonym: str) -> str:
    """The SHA-256 of the request as it means, with the customer id as its pseudonym.

    Identity codes are few enough to guess from a plain hash, so the id is replaced
    before hashing; key order and whitespace do not change the fingerprint.
    """
    document = body.model_dump(mode="json")
    document["customer"]["id"] = pseudonym
    return hashlib.sha256(chain.canonical_json(document).encode("utf-8")).hexdigest()


class FirstStored(NamedTuple):
    """The first decision stored for a (client, event_id), as a repeat is answered from it."""

    event_id: str
    decision_id: str
    request_sha256: str
    decision: DecisionOut


def _replay(first: FirstStored, fingerprint: str) -> DecisionOut:
    """The first decision again, for a repeat with the same body; a different body is refused."""
    if first.request_sha256 != fingerprint:
        raise EventIdConflict(
            # Not the event id itself: it is the client's text, and the detail goes to logs.
            f"This event id was already used by this client with a different body (decision {first.decision_id})."
        )
    return first.decision


def decision_values(
    *,
    client: str,
    event: ValidEvent,
    fingerprint: str,
    decision: DecisionOut,
    x_road: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The columns of the decision log's row for a decision (its seq aside); the decision serialised, once.

    The X-Road headers of the request go into the stored event, so that its link vouches for them;
    an event without them is stored as before.
    """
    customership = decision.customership
    stored_event = event.normalised()
    if x_road:
        stored_event["x_road"] = x_road
    return {
        "decision_id": decision.decision_id,
        "client": client,
        "event_id": event.event_id,
        "request_sha256": fingerprint,
        "event_type": event.event_type.code,
        "customer_type": event.customer_type.value,
        "customer_pseudonym": event.customer_pseudonym,
        "home_municipality": event.home_municipality,
        "occurred_at": event.occurred_at,
        "decided_at": datetime.fromisoformat(decision.decided_at),
        "handler_unit": decision.handler.unit,
        "provider_unit": decision.provider.unit,
        "customership_unit": customership.unit if customership else None,
        "customership_role": customership.role if customership else None,
        "cost_group": decision.cost_group,
        "rule_id": decision.rule.id,
        "ruleset_version": decision.rule.ruleset,
        "ruleset_sha256": decision.rule.ruleset_sha256,
        "decision": decision.model_dump(mode="json"),
        "event": stored_event,
    }


@dataclass(frozen=True)
class Submission:
    """An event to store once: who sent it, the event, its fingerprint and the decision made for it.

    `x_road`: the request's X-Road headers, kept with the event; not part of the fingerprint, since
    a client's retry through X-Road carries a new request id.
    """

    client: str
    event: ValidEvent
    fingerprint: str
    decision: DecisionOut
    x_road: dict[str, str] | None = None

    @property
    def key(self) -> tuple[str, str]:
        """The idempotency key: (client, event_id)."""
        return self.client, self.event.event_id


# What storing one submission came to: (decision, True) when new, (the first decision, False)
# on a replay, or the error that refuses it (a different body under a used event id).
Stored = tuple[DecisionOut, bool] | EventIdConflict


def _insert_new(session: Session, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Insert the rows whose (client, event_id) is not in the log yet; the seq of each decision id inserted.

    One statement: a row whose key is taken is skipped by the database itself, so a
    concurrent writer (another worker) that stored the same event first is never an error.
    """
    # On the connection, not the session: a plain INSERT of these rows, no ORM objects.
    result = session.connection().execute(_insert_new_statement(dialect_insert(session)), list(rows))
    return {decision_id: seq for decision_id, seq in result}


@lru_cache(maxsize=2)
def _insert_new_statement(insert: Callable[..., Any]) -> Any:
    """The INSERT of `_insert_new`, built once per dialect rather than for every batch."""
    statement = insert(Decision).on_conflict_do_nothing(index_elements=["client", "event_id"])
    return statement.returning(Decision.decision_id, Decision.seq)


def _first_stored(session: Session, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], FirstStored]:
    """The decisions stored first under these (client, event_id) keys."""
    event_ids_by_client: dict[str, list[str]] = {}
    for client, event_id in keys:
        event_ids_by_client.setdefault(client, []).append(event_id)
    columns = [getattr(Decision, name) for name in FirstStored._fields]
    found: dict[tuple[str, str], FirstStored] = {}
    for client, event_ids in event_ids_by_client.items():
        query = select(*columns).where(Decision.client == client, Decision.event_id.in_(event_ids))
        for event_id, decision_id, request_sha256, decision in session.execute(query):
            first = FirstStored(event_id, decision_id, request_sha256, DecisionOut.model_validate(decision))
            found[(client, event_id)] = first
    return found


def store(session: Session, submissions: Sequence[Submission]) -> list[Stored]:
    """Store and chain each event once, in the caller's transaction; what each came to, in order.

    The first submission of a (client, event_id) that the log does not hold yet is inserted,
    chained, and put in the customership register and on the units' worklists; every other one
    is answered with the decision stored first, or refused when its body differs. Many
    submissions share one transaction: one BEGIN, one chain lock and one COMMIT (on
    PostgreSQL a flush to disk) for all of them.
    """
    if not submissions:
        return []
    first_here: dict[tuple[str, str], Submission] = {}
    for submission in submissions:
        first_here.setdefault(submission.key, submission)
    rows = [
        decision_values(client=s.client, event=s.event, fingerprint=s.fingerprint, decision=s.decision, x_road=s.x_road)
        for s in first_here.values()
    ]
    inserted = _insert_new(session, rows)
    # Each link vouches for its decision's seq too: swapping two rows' numbers breaks both links.
    new = [{**r, "seq": inserted[r["decision_id"]]} for r in rows if r["decision_id"] in inserted]
    chain.append_many(session, kind=RecordKind.decision, records=new)
    count_new(session, new)
    handovers = record_routing(session, new)
    # One call for the handovers and the decisions (in the order they were always written):
    # one read of the subscriptions a batch.
    announce(session, [*handovers, *decision_announcements(new)])
    taken = [key for key, s in first_here.items() if s.decision.decision_id not in inserted]
    earlier = _first_stored(session, taken) if taken else {}
    outcomes: list[Stored] = []
    for submission in submissions:
        first = first_here[submission.key]
        if first.decision.decision_id not in inserted:
            stored = earlier[submission.key]
        elif submission is first:
            outcomes.append((first.decision, True))
            continue
        else:  # the same event twice in this batch: the second is a repeat of the first
            stored = FirstStored(first.event.event_id, first.decision.decision_id, first.fingerprint, first.decision)
        try:
            outcomes.append((_replay(stored, submission.fingerprint), False))
        except EventIdConflict as conflict:
            outcomes.append(conflict)
    return outcomes


def submit(session: Session, submission: Submission) -> tuple[DecisionOut, bool]:
    """Store and chain one decided event: (decision, True) when new, (the first one, False) on replay."""
    (outcome,) = store(session, [submission])
    if isinstance(outcome, EventIdConflict):
        raise outcome
    return outcome
