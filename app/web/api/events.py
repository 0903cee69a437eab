"""POST /v1/events: route an event and store the decision once per (client, event_id).

Two doors to one path. The route below is what FastAPI documents and what answers every request
that goes wrong. `PostEventFastPath` answers the busy, valid case without FastAPI's dependency
machinery (issue 17): a remembered API key, a JSON body that validates, an event the rules take.
Whatever it cannot answer, it hands to the route with the body it read; both then prepare, store
and answer with the same functions (`_prepare`, `_store`, `decision_response`).
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

from fastapi import APIRouter, FastAPI, Request, Response
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from app.access import roles
from app.access.keys import Principal, bearer_key
from app.access.oidc import looks_like_jwt
from app.decisions import intake
from app.decisions.store import Submission
from app.errors import EventIdConflict, Unauthenticated
from app.models import NO_NUMBER
from app.schemas import DecisionOut, EventIn
from app.web.api import EVERY_OPERATION
from app.web.api.decisions import stamp_ruleset
from app.web.api.schemas import problem_responses
from app.web.deps import EventPosterDep, Services, XRoadDep, services, x_road_kept
from app.web.middleware import replaying, ruleset_in_force
from app.web.problems import error_problem

router = APIRouter(responses=EVERY_OPERATION)
PATH = "/v1/events"


@router.post(
    PATH,
    status_code=201,
    # Documents the answer; the endpoint serialises it itself (decision_response).
    response_model=DecisionOut,
    responses={
        200: {"model": DecisionOut, "description": "The same event again: the first decision"},
        **problem_responses(400, 409, 413),
    },
    tags=["events"],
)
async def post_event(body: EventIn, request: Request, principal: EventPosterDep, x_road: XRoadDep) -> Response:
    """Route an event: the decision the plan prescribes, stored once per (client, event_id)."""
    opened = services(request)
    submission = _prepare(opened, body, principal, x_road)
    return decision_response(*await _store(opened, principal, submission))


def _prepare(opened: Services, body: EventIn, principal: Principal, x_road: dict[str, str] | None) -> Submission:
    """The event read, decided and checked against the caller's scope; EventInvalid (422) names what is wrong.

    Computation only, on the event loop: reading the event and deciding take well under a
    millisecond (the engine's answers are a table), less than a trip to a worker thread.
    """
    submission = intake.prepare(
        body,
        client=principal.name,
        rules=opened.rules,
        engine=opened.engine,
        pseudonym_key=opened.pseudonym_key,
        future_tolerance=timedelta(seconds=opened.settings.future_tolerance_seconds),
        x_road=x_road,
    )
    intake.check_scope(principal, submission)  # the UI's rule too; an integration sees what it posts
    return submission


async def _store(opened: Services, principal: Principal, submission: Submission) -> tuple[DecisionOut, bool]:
    """The decision stored by the writer thread with the others that arrive meanwhile (app/decisions/writer.py).

    (decision, True) when new, (the first decision, False) for a repeat; a revoked key (401) and a
    used event id with another body (409) are raised.
    """
    key_id = principal.key_id if principal.key_id != NO_NUMBER else None  # an access token has no key to revoke
    stored = await opened.writer.store(submission, key_id=key_id)
    if isinstance(stored, Unauthenticated):
        opened.known_keys.forget(principal.key_id)
        raise stored
    if isinstance(stored, EventIdConflict):
        raise stored
    decision, created = stored
    if created:
        intake.log_new(submission, decision)
    return decision, created


def decision_response(decision: DecisionOut, created: bool) -> Response:
    """201 with a new decision, 200 with the first one for a repeat: its JSON, where it lives, its rule set.

    The decision was validated when it was built (a frozen DecisionOut): FastAPI would validate
    it again against the response model and encode it through json.dumps.
    """
    response = Response(
        decision.model_dump_json(),
        status_code=201 if created else 200,
        media_type="application/json",
        headers={"Location": f"/v1/decisions/{decision.decision_id}"},
    )
    stamp_ruleset(response, decision)
    return response


class PostEventFastPath:
    """ASGI middleware: a valid POST /v1/events from a remembered key, answered without FastAPI's machinery.

    Under load FastAPI's share of this endpoint (routing, solving five dependencies, the exit
    stack, its request and response objects) cost more CPU than reading, deciding and storing
    the event together (bench/RESULTS.md, issue 17). Here the request is checked exactly as the
    route checks it: the same key memory and role, the same model validating the same parsed
    JSON, the same X-Road reading, preparing and storing. Any request it would have to refuse
    goes to the route with the body it read, so every error is the route's own, with its
    re-check of a remembered key.

    It stands in front of the whole middleware stack, FastAPI's and ours (`Reitti` in app/main.py):
    each of the eight layers wraps the answer's `send` in a function of its own, and passing them
    came to about an eighth of a worker's CPU a request (1.02 against 0.89 ms, one worker on SQLite
    at 32 connections, issue 17). So the layers' work for the requests it answers is done here, with
    their own functions: a body is taken only when its Content-Length is within the limit
    (`BodyLimit` refuses the others), each answer is counted by its route (`CountRequests`), and an
    error names the rule set in force (`RulesetHeader`). The UI's security headers are not for the
    API; server errors are answered here as problems.
    """

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        # The request counts name the route by its template, as the router would have put it in the scope.
        self._route = next(route for route in router.routes if getattr(route, "path", None) == PATH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        opened: Services | None = self.fastapi_app.state.services if scope["type"] == "http" else None
        if (
            opened is None
            or scope["method"] != "POST"
            or scope["path"] != PATH
            or not _declared_within(headers := Headers(scope=scope), opened.settings.max_body_bytes)
        ):
            await self.app(scope, receive, send)
            return
        started, counted_here = time.monotonic(), True
        route, status = "unmatched", 500  # so counted when the client goes away, as `CountRequests` counts it
        try:
            body = await _whole_body(receive)
            if body is None:  # the client went away
                return
            ready = _ready(opened, headers, body)
            if ready is None:
                counted_here = False  # the app behind counts it
                await self.app(scope, replaying(body, receive), send)
                return
            scope["route"], route = self._route, PATH
            response = await self._answer(opened, *ready)
            status = response.status_code
            await response(scope, receive, send)
        finally:
            if counted_here:
                self.fastapi_app.state.metrics.answered("POST", route, status, time.monotonic() - started)

    async def _answer(self, opened: Services, principal: Principal, submission: Submission) -> Response:
        """The decision stored and answered; an error answered as the route's exception handlers answer it."""
        try:
            return decision_response(*await _store(opened, principal, submission))
        except Exception as error:
            problem = error_problem(error, "POST", PATH)
            problem.raw_headers.extend(ruleset_in_force(self.fastapi_app))
            return problem


def _declared_within(headers: Headers, limit: int) -> bool:
    """Whether the request declares a body no longer than the limit; a body without a length goes to `BodyLimit`."""
    declared = headers.get("content-length", "")
    return declared.isdigit() and int(declared) <= limit


def _ready(opened: Services, headers: Headers, body: bytes) -> tuple[Principal, Submission] | None:
    """The caller and the submission when the route would store this request; None when it might refuse it."""
    principal = _remembered_poster(opened, headers.get("authorization"))
    media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
    if principal is None or media_type != "application/json":
        return None
    try:
        event = EventIn.model_validate(json.loads(body))  # as FastAPI validates a body: the parsed JSON
        return principal, _prepare(opened, event, principal, x_road_kept(headers, opened.pseudonym_key))
    except Exception:  # noqa: BLE001 - bad JSON, the model, the event, the scope: the route answers it its way
        return None


def _remembered_poster(opened: Services, authorization: str | None) -> Principal | None:
    """The principal of an API key this process already knows and that may post events; None otherwise.

    An access token is checked on every arrival, a key seen for the first time is looked up:
    both by the route (app/web/deps.py, `_event_poster`).
    """
    try:
        key = bearer_key(authorization)
    except Unauthenticated:
        return None
    if looks_like_jwt(key):
        return None
    principal = opened.known_keys.get(key)
    return principal if principal is not None and principal.role in roles.POST_EVENTS else None


async def _whole_body(receive: Receive) -> bytes | None:
    """The request's body, however many messages it comes in; None when the client disconnects."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
