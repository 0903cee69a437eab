"""POST /v1/events: route an event and store the decision once per (client, event_id)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, Response

from app.decisions import intake
from app.errors import EventIdConflict, Unauthenticated
from app.models import NO_NUMBER
from app.schemas import DecisionOut, EventIn
from app.web.api import EVERY_OPERATION
from app.web.api.decisions import stamp_ruleset
from app.web.api.schemas import problem_responses
from app.web.deps import EngineDep, EventPosterDep, RulesDep, XRoadDep, services

router = APIRouter(responses=EVERY_OPERATION)


@router.post(
    "/v1/events",
    status_code=201,
    # Documents the answer; the endpoint serialises it itself (see the end of post_event).
    response_model=DecisionOut,
    responses={
        200: {"model": DecisionOut, "description": "The same event again: the first decision"},
        **problem_responses(400, 409, 413),
    },
    tags=["events"],
)
async def post_event(
    body: EventIn,
    request: Request,
    principal: EventPosterDep,
    rules: RulesDep,
    engine: EngineDep,
    x_road: XRoadDep,
) -> Response:
    """Route an event: the decision the plan prescribes, stored once per (client, event_id)."""
    # The busiest path stays on the event loop until it stores: the key is remembered
    # (event_poster), reading the event and deciding are computation only (the engine's
    # answers are mostly remembered; a new one takes about 0.1 ms), and the writer thread
    # stores it with the others that arrive meanwhile (app/decisions/writer.py). Each trip to a
    # worker thread cost about 0.3 ms of CPU here, more than deciding.
    opened = services(request)
    submission = intake.prepare(
        body,
        client=principal.name,
        rules=rules,
        engine=engine,
        pseudonym_key=opened.pseudonym_key,
        future_tolerance=timedelta(seconds=opened.settings.future_tolerance_seconds),
        x_road=x_road,
    )
    intake.check_scope(principal, submission)  # the UI's rule too; an integration sees what it posts
    key_id = principal.key_id if principal.key_id != NO_NUMBER else None  # an access token has no key to revoke
    stored = await services(request).writer.store(submission, key_id=key_id)
    if isinstance(stored, Unauthenticated):
        services(request).known_keys.forget(principal.key_id)
        raise stored
    if isinstance(stored, EventIdConflict):
        raise stored
    decision, created = stored
    if created:
        intake.log_new(submission, decision)
    # The decision was validated when it was built (a frozen DecisionOut): FastAPI would
    # validate it again against the response model and encode it through json.dumps.
    response = Response(
        decision.model_dump_json(),
        status_code=201 if created else 200,
        media_type="application/json",
        headers={"Location": f"/v1/decisions/{decision.decision_id}"},
    )
    stamp_ruleset(response, decision)
    return response
