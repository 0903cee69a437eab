"""Routing an event, as the API and the UI both do: read it, decide it, make it ready to store.

Reading the event checks it against the rule set in force on its date and keeps only the
customer's pseudonym; deciding is the rules engine's. Nothing is stored here: the API hands
the submission to its writer thread, the UI stores it in its own transaction.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from app.access.keys import Principal
from app.config import FUTURE_TOLERANCE_SECONDS
from app.decisions.queries import may_see
from app.decisions.store import Submission, request_fingerprint
from app.errors import EventInvalid, FieldError
from app.rules.engine import RuleEngine
from app.rules.events import read_event
from app.rules.model import Rules
from app.rules.routing import decide
from app.schemas import DecisionOut, EventIn

log = logging.getLogger("reitti")


def prepare(
    body: EventIn,
    *,
    client: str,
    rules: Rules,
    engine: RuleEngine,
    pseudonym_key: bytes,
    future_tolerance: timedelta = timedelta(seconds=FUTURE_TOLERANCE_SECONDS),
    x_road: dict[str, str] | None = None,
) -> Submission:
    """The event read and decided for `client`; EventInvalid (422) names each field that is wrong.

    An event may not say it occurred more than `future_tolerance` ahead of now: it would be
    decided by rules not yet in force and sit at the top of the log by its time. `x_road` is
    the request's X-Road headers (the user's only as a pseudonym), kept with the stored event.
    """
    if body.occurred_at > datetime.now(UTC) + future_tolerance:
        seconds = int(future_tolerance.total_seconds())
        raise EventInvalid([FieldError(("body", "occurred_at"), f"is more than {seconds} s ahead of now")])
    event = read_event(body, rules, pseudonym_key=pseudonym_key)
    fingerprint = request_fingerprint(body, event.customer_pseudonym)
    decision = decide(event, engine=engine, registry=rules.registry)
    return Submission(client, event, fingerprint, decision, x_road)


OUTSIDE_SCOPE = "is outside the caller's municipality: route only customers whose decisions you may see"


def check_scope(principal: Principal, submission: Submission) -> None:
    """Refuse (422, at home_municipality) a decision the caller could not then see.

    A coach routes for the customers of their municipality, or those whose handler is its
    local unit: the scope in which they read and override decisions. A decision outside it
    would be written in another municipality's name by someone who cannot read it back.
    """
    home, handler = submission.event.home_municipality, submission.decision.handler.unit
    if not may_see(principal, client=submission.client, home_municipality=home, handler_unit=handler):
        raise EventInvalid([FieldError(("body", "customer", "home_municipality"), OUTSIDE_SCOPE)])


def log_new(submission: Submission, decision: DecisionOut) -> None:
    """One line for the operator per new decision: never the customer, only what routed it."""
    log.info(
        "decision %s: event_type=%s rule=%s ruleset=%s handler=%s client=%s",
        decision.decision_id,
        submission.event.event_type.code,
        decision.rule.id,
        decision.rule.ruleset,
        decision.handler.unit,
        submission.client,
    )
