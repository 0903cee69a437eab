"""POST /v1/events: route an event and store the decision once per (client, event_id)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from app.access.keys import Principal
from app.decisions import store
from app.errors import EventIdConflict, Unauthenticated
from app.models import Role
from app.rules.engine import RuleEngine
from app.rules.events import read_event
from app.rules.model import Rules
from app.rules.routing import decide
from app.schemas import (
    DecisionOut,
    EventIn,
    problem_responses,
)
from app.web.api.decisions import stamp_ruleset
from app.web.deps import EngineDep, RulesDep, event_poster

log = logging.getLogger("reitti")


# Every API operation may answer these; each endpoint adds its own.
router = APIRouter(responses=problem_responses(401, 403, 422, 500, 503))


@router.post(
    "/v1/events",
    status_code=201,
    responses={
        200: {"model": DecisionOut, "description": "The same event again: the first decision"},
        **problem_responses(400, 409, 413),
    },
    tags=["events"],
)
async def post_event(
    body: EventIn,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(event_poster)],
    rules: RulesDep,
    engine: EngineDep,
) -> DecisionOut:
    """Route an event: the decision the plan prescribes, stored once per (client, event_id)."""
    # The busiest path stays on the event loop until it stores: the key is remembered
    # (event_poster), reading the event and deciding are computation only (the engine's
    # answers are mostly remembered; a new one takes about 0.1 ms), and the writer thread
    # stores it with the others that arrive meanwhile (app/decisions/writer.py). Each trip to a
    # worker thread cost about 0.3 ms of CPU here, more than deciding.
    principal.require(Role.integration)
    submission = _submission(request, principal, body, rules, engine)
    stored = await request.app.state.writer.store(submission, key_id=principal.key_id)
    if isinstance(stored, Unauthenticated):
        request.app.state.known_keys.forget(principal.key_id)
        raise stored
    if isinstance(stored, EventIdConflict):
        raise stored
    decision, created = stored
    if created:
        log.info(
            "decision %s: event_type=%s rule=%s ruleset=%s handler=%s client=%s",
            decision["decision_id"],
            submission.event.event_type.code,
            decision["rule"]["id"],
            decision["rule"]["ruleset"],
            decision["handler"]["unit"],
            principal.name,
        )
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/v1/decisions/{decision['decision_id']}"
    stamp_ruleset(response, decision)
    return DecisionOut.model_validate(decision)


def _submission(
    request: Request, principal: Principal, body: EventIn, rules: Rules, engine: RuleEngine
) -> store.Submission:
    """The event with the decision made for it, ready to store."""
    event = read_event(body, rules, pseudonym_key=request.app.state.pseudonym_key)
    fingerprint = store.request_fingerprint(body, event.customer_pseudonym)
    decision = decide(event, engine=engine, registry=rules.registry)
    return store.Submission(principal.name, event, fingerprint, decision)
